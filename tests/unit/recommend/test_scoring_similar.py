"""similar_items: cosine neighbours, filters, and a new item placed by its features."""

from __future__ import annotations

import pytest

from services.recommend.scoring import FALLBACK_FEATURES, Filters, UnknownItem, similar_items
from tests.unit.recommend.scoring_data import recommender

MODEL = recommender()


def test_nearest_by_cosine_without_the_item_itself() -> None:
    ranked = similar_items(MODEL, "s0", 5)
    assert ranked.skus == ("s1", "s5", "s3", "s2", "s4")
    assert ranked.scores[0] == pytest.approx(0.9 / (0.9**2 + 0.1**2) ** 0.5, rel=1e-6)
    assert ranked.scores[-1] == pytest.approx(-1.0)
    assert ranked.fallback == ""


def test_filters_apply_and_exclude_bought_is_ignored() -> None:
    assert similar_items(MODEL, "s0", 3, Filters(only_in_stock=True)).skus == ("s1", "s5", "s3")
    assert similar_items(MODEL, "s3", 2, Filters(categories_not_in=frozenset({"B"}))).skus == ("s5", "s1")
    assert similar_items(MODEL, "s0", 2, Filters(exclude_bought=True)).skus == ("s1", "s5")


def test_a_new_item_is_placed_by_its_features() -> None:
    ranked = similar_items(MODEL, "brand-new", 3, features={"category": "B", "brand": "unknown"})
    assert ranked.skus == ("s2", "s3", "s5") and ranked.fallback == FALLBACK_FEATURES


def test_an_item_nobody_can_place_is_an_error() -> None:
    with pytest.raises(UnknownItem, match="brand-new"):
        similar_items(MODEL, "brand-new", 3)
    with pytest.raises(UnknownItem):
        similar_items(MODEL, "brand-new", 3, features={"category": "never-seen"})
