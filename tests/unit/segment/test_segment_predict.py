"""Predictive audiences: exact features on tiny frames, no leakage past the cutoff, metrics, chance flag, audiences."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from services.segment import predict
from services.segment.predict_metrics import quality, top_lift

CUTOFF = pd.Timestamp("2011-03-01")


def _lines(rows: list[tuple[str, str, str, int, str, bool]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(predict.LINE_COLUMNS))
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    return frame


TINY = _lines([
    # a: three orders (one with two lines), one refund, one order after the cutoff.
    ("a", "o1", "2011-01-01", 1000, "Home", False),
    ("a", "o1", "2011-01-01", 500, "Toys", False),
    ("a", "o2", "2011-02-10", 2000, "Home", False),
    ("a", "c1", "2011-02-12", -500, "Home", True),
    ("a", "o3", "2011-02-25", 300, "Bags", False),
    ("a", "o9", "2011-03-05", 9999, "Garden", False),
    # b: one order long ago.
    ("b", "o4", "2010-10-02", 700, "Home", False),
    # c: only after the cutoff.
    ("c", "o5", "2011-03-02", 100, "Home", False),
])


def test_features_hand_computed() -> None:
    feats = predict.features(TINY, CUTOFF)
    assert list(feats.index) == ["a", "b"]
    a = feats.loc["a"]
    assert a["recency_days"] == 4.0
    assert a["frequency"] == 3.0
    assert a["monetary"] == 3300.0
    assert a["avg_order_value"] == pytest.approx(3800 / 3)
    assert a["tenure_days"] == 59.0
    assert a["mean_gap_days"] == 27.5  # (Feb 25 - Jan 1) / 2
    assert a["orders_30d"] == 2.0
    assert a["orders_90d"] == 3.0
    assert a["spend_90d"] == 3800.0
    assert a["distinct_categories"] == 3.0
    assert a["lines_per_order"] == pytest.approx(4 / 3)
    assert a["refunds"] == 1.0
    assert a["refund_share"] == pytest.approx(500 / 3800)
    b = feats.loc["b"]
    assert b["recency_days"] == 150.0 and b["tenure_days"] == 150.0
    assert b["frequency"] == 1.0 and b["monetary"] == 700.0
    assert pd.isna(b["mean_gap_days"])
    assert b["orders_30d"] == 0.0 and b["orders_90d"] == 0.0 and b["refunds"] == 0.0


def test_tz_aware_lines_give_the_same_features() -> None:
    aware = TINY.assign(occurred_at=TINY["occurred_at"].dt.tz_localize("UTC"))
    pd.testing.assert_frame_equal(predict.features(aware, CUTOFF), predict.features(TINY, CUTOFF))


def test_lines_after_cutoff_never_change_features() -> None:
    base = predict.features(TINY, CUTOFF)
    extra = _lines([
        ("a", "x1", "2011-03-01", 123456, "Party", False),  # exactly at the cutoff: not before it
        ("b", "x2", "2011-04-01", 5, "Bags", False),
        ("b", "x3", "2011-05-01", -5, "Bags", True),
        ("d", "x4", "2011-06-01", 50, "Home", False),
    ])
    later = predict.features(pd.concat([TINY, extra], ignore_index=True), CUTOFF)
    pd.testing.assert_frame_equal(base, later)


def test_labels_come_from_the_window_only() -> None:
    horizon = timedelta(days=30)
    _, label = predict.labelled(predict.GROWTH, TINY, CUTOFF, horizon)
    assert label.to_dict() == {"a": 1, "b": 0}  # c has no history, so it is not in the population
    _, churn = predict.labelled(predict.RETENTION, TINY, CUTOFF, horizon)
    assert churn.to_dict() == {"a": 0}  # b is not active
    _, wakes = predict.labelled(predict.ACTIVATION, TINY, CUTOFF, horizon)
    assert wakes.to_dict() == {"b": 0}
    _, fresh = predict.labelled(predict.GROWTH_CATEGORY, TINY, CUTOFF, horizon)
    assert fresh.to_dict() == {"a": 1, "b": 0}  # Garden is new for a
    # An order before the cutoff never counts as a label; one past the window neither.
    _, short = predict.labelled(predict.GROWTH, TINY, CUTOFF, timedelta(days=4))
    assert short.to_dict() == {"a": 0, "b": 0}


def _planted(customers: int, seed: int) -> pd.DataFrame:
    """Customers with a steady personal order rate, which decides whether they order in the next window."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2011-01-01")
    rows: list[tuple[str, str, pd.Timestamp, int, str, bool]] = []
    for c in range(customers):
        rate = rng.uniform(0.5, 8.0)  # orders per 30 days
        day = float(rng.uniform(0, 30))
        n = 0
        while day < 300:
            rows.append((f"c{c}", f"c{c}-{n}", start + pd.Timedelta(days=day), 1000, "Home", False))
            n += 1
            day += float(rng.exponential(30 / rate))
    return pd.DataFrame(rows, columns=list(predict.LINE_COLUMNS))


def test_planted_signal_is_found() -> None:
    lines = _planted(600, seed=1)
    model = predict.train_time_split(predict.GROWTH, lines, horizon=timedelta(days=30))
    assert model.quality.auc > 0.7
    assert model.quality.better_than_chance
    assert model.quality.top_decile_lift >= 1.0


def test_random_labels_are_flagged() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 2000)
    scores = rng.random(2000)
    q = quality(labels, scores)
    assert abs(q.auc - 0.5) < 0.05
    assert not q.better_than_chance


def test_quality_and_lift_exact() -> None:
    labels = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05])
    assert top_lift(labels, scores) == pytest.approx(1.0 / 0.2)
    q = quality(labels, scores)
    assert q.auc == pytest.approx(15 / 16)
    assert q.base_rate == pytest.approx(0.2) and q.size == 10 and q.positives == 2
    assert not quality([1, 1], [0.1, 0.2]).better_than_chance  # one class: no AUC, never "better"


def test_lookalike_scores_prospects() -> None:
    rng = np.random.default_rng(5)
    n = 400
    feats = pd.DataFrame({column: rng.random(n) for column in predict.FEATURE_COLUMNS},
                         index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"))
    feats["frequency"] = np.where(np.arange(n) < 100, 1.0, 3.0)
    feats["monetary"] = feats["avg_order_value"] * 10 + rng.random(n) * 0.5
    model = predict.train_lookalike(feats)
    assert model.goal == predict.ACQUISITION and model.quality.auc > 0.7
    scores = model.score(predict.prospects(feats))
    assert len(scores) == 100 and scores.between(0, 1).all()
    with pytest.raises(ValueError):
        predict.train_lookalike(feats, seed_ids=[])


def test_audience_top_k_and_threshold() -> None:
    scores = pd.Series([0.2, 0.9, 0.5, 0.7], index=["a", "b", "c", "d"])
    assert list(predict.audience(scores, top_k=2).index) == ["b", "d"]
    assert list(predict.audience(scores, threshold=0.5).index) == ["b", "d", "c"]
    assert list(predict.audience(scores, top_k=1, threshold=0.5).index) == ["b"]
    assert list(predict.audience(scores).index) == ["b", "d", "c", "a"]
    assert predict.audience(scores, top_k=0).empty
    with pytest.raises(ValueError):
        predict.audience(scores, top_k=-1)
