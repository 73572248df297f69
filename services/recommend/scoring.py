"""Serving math: top-k for a customer and similar items, with business filters as numpy masks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.recommend.features import band_number
from services.recommend.recommender import Recommender, unit_rows

FALLBACK_NONE = ""
FALLBACK_SEGMENT = "popular_in_segment"
FALLBACK_OVERALL = "popular_overall"
FALLBACK_FEATURES = "item_features"


class UnknownItem(LookupError):
    """similar_items was asked about a sku the model does not know, with no features to place it."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Business filters; max_price_band ("p1".."p5") keeps items at or below it (items without a band pass);
    brands_in keeps items of those brands only (an item without a brand is left out)."""

    exclude_bought: bool = True
    only_in_stock: bool = False
    categories_in: frozenset[str] = frozenset()
    categories_not_in: frozenset[str] = frozenset()
    max_price_band: str = ""
    exclude_skus: frozenset[str] = frozenset()
    brands_in: frozenset[str] = frozenset()
    brands_not_in: frozenset[str] = frozenset()


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
    """The k best items for a customer by the model, fewer when the filters leave fewer.

    An unknown customer gets the popular items of `segment` ("rfm_segment=champions", a user feature
    value seen in training), else the popular items overall; the fallback says which.
    """
    filters = filters or Filters()
    row = recommender.user_index.get(customer_id)
    # Costs are negated scores in a fresh array, so masking and argpartition work in place, lowest first.
    if row is not None:
        cost = recommender.item_vectors @ -recommender.user_vectors[row]
        fallback = FALLBACK_NONE
    elif segment is not None and segment in recommender.segment_index:
        cost = -recommender.segment_popularity[recommender.segment_index[segment]]
        fallback = FALLBACK_SEGMENT
    else:
        cost = -recommender.popularity
        fallback = FALLBACK_OVERALL
    return _best(recommender, cost, blocked_items(recommender, filters, row), k, fallback)


def blocked_items(
    recommender: Recommender, filters: Filters, user_row: int | None = None
) -> npt.NDArray[np.bool_] | None:
    """A boolean mask over the item axis, True where the filters hide the item; None when no filter applies."""
    bought = recommender.bought(user_row) if filters.exclude_bought and user_row is not None else None
    if not (
        (bought is not None and bought.size) or filters.only_in_stock or filters.categories_in
        or filters.categories_not_in or filters.max_price_band or filters.exclude_skus
        or filters.brands_in or filters.brands_not_in
    ):
        return None
    blocked = ~recommender.in_stock if filters.only_in_stock else np.zeros(len(recommender.skus), dtype=bool)
    if bought is not None:
        blocked[bought] = True
    if filters.categories_in:
        blocked |= ~_category_lookup(recommender, filters.categories_in)[recommender.category_codes]
    if filters.categories_not_in:
        blocked |= _category_lookup(recommender, filters.categories_not_in)[recommender.category_codes]
    if filters.brands_in:
        blocked |= ~_lookup(recommender.brand_index, filters.brands_in)[recommender.brand_codes]
    if filters.brands_not_in:
        blocked |= _lookup(recommender.brand_index, filters.brands_not_in)[recommender.brand_codes]
    if filters.max_price_band:
        ceiling = band_number(filters.max_price_band)
        if ceiling == 0:
            raise ValueError(f"max_price_band must look like p1..p5, not {filters.max_price_band!r}")
        # Items without a band (0) pass.
        blocked |= recommender.item_bands > ceiling
    rows = [recommender.item_index[sku] for sku in filters.exclude_skus if sku in recommender.item_index]
    blocked[rows] = True
    return blocked


def _category_lookup(recommender: Recommender, categories: frozenset[str]) -> npt.NDArray[np.bool_]:
    return _lookup(recommender.category_index, categories)


def _lookup(index: Mapping[str, int], names: frozenset[str]) -> npt.NDArray[np.bool_]:
    """True at the code of each name present in `index` (a category's or a brand's)."""
    lookup = np.zeros(len(index), dtype=bool)
    for name in names:
        code = index.get(name)
        if code is not None:
            lookup[code] = True
    return lookup


def _best(
    recommender: Recommender,
    cost: npt.NDArray[np.float32],
    blocked: npt.NDArray[np.bool_] | None,
    k: int,
    fallback: str,
) -> Ranked:
    """The k allowed items of lowest cost (a fresh array, changed here), best first: argpartition, then a sort of k."""
    if k <= 0:
        raise ValueError("k must be positive")
    count = len(cost)
    if blocked is not None:
        np.copyto(cost, np.inf, where=blocked)
        count -= int(np.count_nonzero(blocked))
    take = min(k, count)
    if take == 0:
        return Ranked(skus=(), scores=(), fallback=fallback)
    chosen = np.argpartition(cost, take - 1)[:take] if take < len(cost) else np.arange(len(cost))
    chosen = chosen[np.argsort(cost[chosen], kind="stable")]
    return Ranked(
        skus=tuple(recommender.skus[chosen].tolist()),
        scores=tuple((-cost[chosen]).astype(float).tolist()),
        fallback=fallback,
    )


def similar_items(
    recommender: Recommender,
    sku: str,
    k: int,
    filters: Filters | None = None,
    features: Mapping[str, Any] | None = None,
) -> Ranked:
    """The k items nearest to `sku` by the cosine of their representations, the item itself left out.

    A sku unknown to the model is placed by `features` (category, brand, price_band, tags; fallback
    "item_features"), else UnknownItem is raised. exclude_bought is ignored (there is no customer).
    """
    filters = filters or Filters()
    row = recommender.item_index.get(sku)
    if row is not None:
        direction = recommender.item_unit[row]
        fallback = FALLBACK_NONE
    else:
        vector = recommender.represent_item(features) if features else None
        if vector is None:
            raise UnknownItem(f"sku {sku!r} is not in the model and no known feature describes it")
        direction = unit_rows(vector[None, :-2])[0]
        fallback = FALLBACK_FEATURES
    cost = recommender.item_unit @ -direction
    blocked = blocked_items(recommender, filters)
    if row is not None:
        blocked = np.zeros(len(cost), dtype=bool) if blocked is None else blocked
        blocked[row] = True
    return _best(recommender, cost, blocked, k, fallback)
