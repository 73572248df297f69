"""Time-split evaluation: no leakage past the cutoff, new purchases only, popularity on the same split."""

from __future__ import annotations

import pandas as pd
import pytest

from services.recommend.model import TrainParams, evaluate
from tests.unit.recommend.model_data import CUTOFF, frame, planted

FAST = TrainParams(no_components=8, epochs=5, threads=1)


def test_split_counts_and_skips() -> None:
    rows = frame([
        ("a", "x", "order", 1, "2024-01-05"),
        ("a", "y", "order", 1, "2024-03-05"),       # a new purchase: evaluated
        ("b", "x", "order", 1, "2024-01-05"),
        ("b", "x", "order", 2, "2024-03-05"),       # b only re-buys: skipped, no new purchase
        ("c", "y", "order", 1, "2024-03-05"),       # c unknown before the cutoff: skipped
        ("d", "z", "order", 1, "2024-01-05"),
        ("d", "x", "view", 1, "2024-03-05"),        # a later view is not a purchase
        ("e", "new-sku", "order", 1, "2024-01-05"),
        ("e", "late-sku", "order", 1, "2024-03-05"),  # a sku the model never saw: e is skipped too
    ])
    catalogue = pd.DataFrame({"sku": ["x", "y", "z"]})
    report = evaluate(rows, catalogue, None, CUTOFF, k=2, params=FAST)
    assert report.train_interactions == 4
    assert report.users_evaluated == 1
    assert report.users_skipped_no_new_purchase == 2
    assert report.users_skipped_not_in_train == 1
    assert report.test_purchases == 1
    assert report.test_purchases_unknown_items == 1
    assert report.cutoff == "2024-03-01T00:00:00+00:00"


def test_events_after_the_cutoff_do_not_reach_training() -> None:
    interactions, items, users = planted(customers=60, per_cluster=8, before=4, after=2)
    base = evaluate(interactions, items, users, CUTOFF, params=FAST)
    # Heavy later views and carts on every item: if they leaked into training the model would change.
    later = frame(
        (customer, sku, kind, 3, "2024-03-20")
        for customer in interactions["customer_id"].unique()[:30]
        for sku in items["sku"][:10]
        for kind in ("view", "cart")
    )
    noisy = evaluate(pd.concat([interactions, later], ignore_index=True), items, users, CUTOFF, params=FAST)
    assert noisy.model == base.model and noisy.popularity == base.popularity
    assert noisy.train_interactions == base.train_interactions


def test_popularity_baseline_ranks_by_distinct_buyers_without_bought_items() -> None:
    rows = frame([
        ("a", "x", "order", 1, "2024-01-05"),
        ("a", "y", "order", 9, "2024-01-05"),
        ("b", "x", "order", 1, "2024-01-05"),
        ("b", "z", "order", 1, "2024-01-05"),
        ("c", "x", "order", 1, "2024-01-05"),
        ("c", "w", "order", 1, "2024-01-05"),
        ("d", "w", "order", 1, "2024-01-05"),
        ("c", "y", "order", 1, "2024-03-05"),
    ])
    # For c: x and w are bought already; y and z have one buyer each, y more units (the tie-breaker).
    report = evaluate(rows, None, None, CUTOFF, k=1, params=FAST)
    assert report.users_evaluated == 1
    assert report.popularity.precision == 1.0 and report.popularity.recall == 1.0
    assert report.popularity.auc == 1.0
    assert report.popularity.coverage == pytest.approx(1 / 4)


def test_the_model_beats_popularity_on_planted_tastes() -> None:
    interactions, items, users = planted(seed=3)
    report = evaluate(interactions, items, users, CUTOFF, k=5,
                      params=TrainParams(no_components=16, epochs=15, threads=1))
    assert report.users_evaluated == 240
    # Popularity cannot tell the six taste clusters apart: about 3 / (6 * 14) right in its top 5.
    assert report.popularity.precision < 0.1
    assert report.model.precision > 2 * report.popularity.precision + 0.05
    assert report.model.auc > 0.8 > report.popularity.auc
