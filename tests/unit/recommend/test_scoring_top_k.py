"""top_k: the customer's own scores, every business filter, and the cold-start fallbacks."""

from __future__ import annotations

from typing import Any

import pytest

from services.recommend.scoring import FALLBACK_OVERALL, FALLBACK_SEGMENT, Filters, top_k
from tests.unit.recommend.scoring_data import recommender

MODEL = recommender()


def _skus(k: int, **filters: Any) -> tuple[str, ...]:
    return top_k(MODEL, "u0", k, Filters(**filters)).skus


def test_known_customer_gets_model_scores_best_first_without_bought_items() -> None:
    ranked = top_k(MODEL, "u0", 3)
    assert ranked.skus == ("s1", "s2", "s3")
    assert ranked.scores == (5.0, 4.0, 3.0)
    assert ranked.fallback == ""
    assert _skus(3, exclude_bought=False) == ("s0", "s1", "s2")


def test_each_filter() -> None:
    assert _skus(3, only_in_stock=True) == ("s1", "s3", "s4")
    assert _skus(9, categories_in=frozenset({"B"})) == ("s2", "s3")
    assert _skus(9, categories_not_in=frozenset({"A", "C"})) == ("s2", "s3", "s5")
    assert _skus(9, categories_in=frozenset({"nowhere"})) == ()
    # At or below p3, and items without a band pass.
    assert _skus(9, max_price_band="p3") == ("s1", "s2", "s5")
    assert _skus(2, exclude_skus=frozenset({"s1", "not-a-sku"})) == ("s2", "s3")
    # Only the own brand (s0 is bought): an item without a brand never passes brands_in.
    assert _skus(9, brands_in=frozenset({"Own"})) == ("s1", "s4")
    assert _skus(9, brands_in=frozenset({"Own", "nobody"}), only_in_stock=True) == ("s1", "s4")
    assert _skus(9, brands_not_in=frozenset({"Own"})) == ("s2", "s3", "s5")
    assert _skus(9, brands_in=frozenset({"nobody"})) == ()


def test_filters_combine() -> None:
    chosen = _skus(9, only_in_stock=True, categories_not_in=frozenset({"C"}), max_price_band="p4",
                   exclude_skus=frozenset({"s1"}))
    assert chosen == ("s3", "s5")


def test_fewer_than_k_is_fine_and_k_must_be_positive() -> None:
    assert _skus(100) == ("s1", "s2", "s3", "s4", "s5")
    with pytest.raises(ValueError, match="k must be positive"):
        top_k(MODEL, "u0", 0)
    with pytest.raises(ValueError, match="max_price_band"):
        top_k(MODEL, "u0", 3, Filters(max_price_band="gold"))


def test_unknown_customer_gets_popular_items_of_their_segment_or_overall() -> None:
    overall = top_k(MODEL, "stranger", 3)
    assert overall.skus == ("s5", "s4", "s3") and overall.fallback == FALLBACK_OVERALL
    segment = top_k(MODEL, "stranger", 1, segment="region=r1")
    assert segment.skus == ("s2",) and segment.fallback == FALLBACK_SEGMENT
    unknown_segment = top_k(MODEL, "stranger", 1, segment="region=mars")
    assert unknown_segment.fallback == FALLBACK_OVERALL
    # Filters still apply to fallbacks.
    filtered = top_k(MODEL, "stranger", 3, Filters(categories_in=frozenset({"A"})))
    assert filtered.skus == ("s1", "s0")


def test_a_known_customer_ignores_the_segment() -> None:
    assert top_k(MODEL, "u1", 1, segment="region=r1").skus == ("s0",)
