"""Serving math: top-k for a customer and similar items, with business filters as numpy masks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.recommend.recommender import Recommender

FALLBACK_NONE = ""
FALLBACK_SEGMENT = "popular_in_segment"
FALLBACK_OVERALL = "popular_overall"
FALLBACK_FEATURES = "item_features"


class UnknownItem(LookupError):
    """similar_items was asked about a sku the model does not know, with no features to place it."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Business filters; max_price_band ("p1".."p5") keeps items at or below it (items without a band pass)."""

    exclude_bought: bool = True
    only_in_stock: bool = False
    categories_in: frozenset[str] = frozenset()
    categories_not_in: frozenset[str] = frozenset()
    max_price_band: str = ""
    exclude_skus: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Ranked:
    """Best first; fallback names what produced the list when it was not the customer's own model row."""

    skus: tuple[str, ...]
    scores: tuple[float, ...]
    fallback: str = FALLBACK_NONE


def top_k(
    recommender: Recommender,
    customer_id: str,
    k: int,
    filters: Filters | None = None,
    segment: str | None = None,
) -> Ranked:
    """The k best items for a customer; an unknown customer gets the popular items of `segment`

    ("rfm_segment=champions", a user feature seen in training) or overall. Fewer than k when filters bite.
    """
    raise NotImplementedError


def similar_items(
    recommender: Recommender,
    sku: str,
    k: int,
    filters: Filters | None = None,
    features: Mapping[str, Any] | None = None,
) -> Ranked:
    """Items nearest by cosine of their representations; a sku unknown to the model is placed by `features`

    (category, brand, price_band, tags; fallback "item_features"), else UnknownItem. exclude_bought is ignored.
    """
    raise NotImplementedError
