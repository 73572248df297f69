"""Interaction weights: kinds, quantity scales, refunds undoing orders, time decay, input checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pytest

from services.recommend.weights import InteractionWeights, check_interactions, weigh
from tests.unit.recommend.model_data import frame


def _by_pair(table: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {(row.customer_id, row.sku): row for row in table.itertuples()}


def test_orders_weigh_more_than_carts_and_carts_more_than_views() -> None:
    rows = frame([
        ("a", "viewed", "view", 1, "2024-01-01"),
        ("a", "carted", "cart", 1, "2024-01-01"),
        ("a", "ordered", "order", 1, "2024-01-01"),
    ])
    pairs = _by_pair(weigh(rows, InteractionWeights(quantity="binary")))
    assert pairs[("a", "viewed")].weight == 1.0
    assert pairs[("a", "carted")].weight == 2.0
    assert pairs[("a", "ordered")].weight == 4.0
    assert [pairs[("a", s)].bought for s in ("viewed", "carted", "ordered")] == [False, False, True]


def test_refund_undoes_the_order_weight_of_the_refunded_quantity() -> None:
    rows = frame([
        ("a", "x", "order", 3, "2024-01-01"),
        ("a", "x", "refund", 2, "2024-01-05"),
        ("a", "y", "order", 2, "2024-01-01"),
        ("a", "y", "refund", 2, "2024-01-05"),
        ("a", "y", "view", 1, "2024-01-02"),
        ("a", "z", "order", 1, "2024-01-01"),
        ("a", "z", "refund", 5, "2024-01-05"),
    ])
    pairs = _by_pair(weigh(rows, InteractionWeights(quantity="linear", view=1.0, order=4.0)))
    assert pairs[("a", "x")].ordered == 1 and pairs[("a", "x")].weight == 4.0
    # Fully refunded: only the view is left, but the customer did buy it once.
    assert pairs[("a", "y")].ordered == 0 and pairs[("a", "y")].weight == 1.0 and pairs[("a", "y")].bought
    # Refunding more than was ordered never goes negative.
    assert pairs[("a", "z")].weight == 0.0


def test_log_scale_dampens_large_quantities() -> None:
    rows = frame([("a", "x", "order", 1, "2024-01-01"), ("a", "y", "order", 99, "2024-01-01")])
    pairs = _by_pair(weigh(rows, InteractionWeights(order=1.0, quantity="log")))
    assert pairs[("a", "x")].weight == pytest.approx(math.log(2))
    assert pairs[("a", "y")].weight == pytest.approx(math.log(100))


def test_quantity_zero_counts_as_one_unit() -> None:
    rows = frame([("a", "x", "view", 0, "2024-01-01")])
    assert weigh(rows, InteractionWeights(quantity="linear"))["weight"].tolist() == [1.0]


def test_time_decay_halves_per_half_life_from_the_last_interaction() -> None:
    rows = frame([
        ("a", "old", "order", 1, "2024-01-01"),
        ("a", "new", "order", 1, "2024-01-31"),
        ("a", "both", "order", 1, "2024-01-01"),
        ("a", "both", "view", 1, "2024-01-31"),
    ])
    weights = InteractionWeights(order=1.0, view=0.0, quantity="binary", half_life_days=30)
    pairs = _by_pair(weigh(rows, weights, as_of=pd.Timestamp("2024-01-31", tz="UTC")))
    assert pairs[("a", "new")].weight == pytest.approx(1.0)
    assert pairs[("a", "old")].weight == pytest.approx(0.5)
    assert pairs[("a", "both")].weight == pytest.approx(1.0)


def test_weights_round_trip_and_refuse_nonsense() -> None:
    weights = InteractionWeights(view=0.5, half_life_days=90)
    assert InteractionWeights.from_dict(weights.to_dict()) == weights
    with pytest.raises(ValueError, match="negative"):
        InteractionWeights(view=-1)
    with pytest.raises(ValueError, match="quantity scale"):
        InteractionWeights(quantity="square")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="half_life_days"):
        InteractionWeights(half_life_days=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["kind"]), "lack columns"),
        (lambda f: f.assign(kind="like"), "unknown interaction kinds"),
        (lambda f: f.assign(quantity=-1), "must not be negative"),
        (lambda f: f.assign(occurred_at=f["occurred_at"].dt.tz_localize(None)), "time-zone-aware"),
        (lambda f: f.assign(sku=""), "empty sku"),
    ],
)
def test_malformed_interactions_are_refused_with_the_reason(
    change: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    rows = frame([("a", "x", "order", 1, "2024-01-01")])
    with pytest.raises(ValueError, match=message):
        check_interactions(change(rows))
