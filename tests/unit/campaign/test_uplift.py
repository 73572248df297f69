"""The uplift interval against Newcombe's published examples (1998, Table II, method 10) and Wald by hand."""

from __future__ import annotations

import math

import pytest

from services.campaign.uplift import uplift


@pytest.mark.parametrize(("a", "m", "b", "n", "low", "high"), [
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
])
def test_newcombe_hybrid_score_interval_matches_the_paper(a: int, m: int, b: int, n: int, low: float,
                                                          high: float) -> None:
    result = uplift(a, m, b, n)
    assert (round(result.low, 4), round(result.high, 4)) == (low, high)
    assert result.difference == pytest.approx(a / m - b / n, abs=1e-15)
    assert result.method == "newcombe" and result.confidence == 0.95


def test_interval_differs_from_wald_where_wald_fails() -> None:
    # Wald for 56/70 vs 48/80 by hand: 0.2 -/+ 1.95996 * sqrt(.8*.2/70 + .6*.4/80) = 0.0575 .. 0.3425.
    wald_half = 1.959964 * math.sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80)
    assert (round(0.2 - wald_half, 4), round(0.2 + wald_half, 4)) == (0.0575, 0.3425)
    result = uplift(56, 70, 48, 80)
    assert result.low < 0.2 - wald_half and result.high < 0.2 + wald_half
    # No responder in either group: Wald's interval is the single point 0; Newcombe's is not.
    zero = uplift(0, 10, 0, 20)
    assert zero.low < 0 < zero.high


def test_a_wider_confidence_gives_a_wider_interval() -> None:
    narrow, wide = uplift(222, 2000, 40, 500, 0.90), uplift(222, 2000, 40, 500, 0.99)
    assert wide.low < narrow.low < narrow.difference < narrow.high < wide.high
    assert narrow.difference == pytest.approx(0.111 - 0.08)


@pytest.mark.parametrize(("args", "message"), [
    ((1, 0, 1, 10), "targeted group is empty"),
    ((1, 10, 0, 0), "holdout group is empty"),
    ((11, 10, 0, 10), "between 0 and 10"),
    ((1, 10, -1, 10), "between 0 and 10"),
])
def test_impossible_counts_are_refused(args: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        uplift(*args)


def test_confidence_must_be_a_proportion() -> None:
    with pytest.raises(ValueError, match="confidence"):
        uplift(1, 10, 1, 10, confidence=95)
