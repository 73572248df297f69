"""Predicted ROI: calibration, budget selection, expected figures by hand, rule versus model audience."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from services.campaign.estimate import Candidate, History, compare_audiences, estimate, table, within_budget

CALIBRATED = History(response_rate=Fraction(2, 100), revenue_per_responder_minor=21_000)


def people(prefix: str, count: int, score: float | None, cost: int = 100) -> list[Candidate]:
    return [Candidate(f"{prefix}{i}", score, cost) for i in range(count)]


def test_scores_are_calibrated_by_past_campaigns_and_unscored_get_the_past_rate() -> None:
    history = History(Fraction(2, 100), 21_000, mean_score=0.10)
    assert history.chance(0.25) == pytest.approx(0.05)
    assert history.chance(None) == pytest.approx(0.02)
    assert History(Fraction(1, 5), 1, mean_score=0.1).chance(0.9) == 1.0  # capped at certainty
    assert CALIBRATED.chance(0.3) == 0.3


def test_budget_buys_the_top_and_stops_at_the_first_contact_it_cannot_pay() -> None:
    candidates = [Candidate("a", 0.1, 300), Candidate("b", 0.9, 300), Candidate("c", 0.5, 500), Candidate("d", 0.2, 100)]
    assert [c.customer_id for c in within_budget(candidates, 700, by_score=False)] == ["a", "b"]
    assert [c.customer_id for c in within_budget(candidates, 700, by_score=True)] == ["b"]
    assert [c.customer_id for c in within_budget(candidates, 1100, by_score=True)] == ["b", "c", "d"]
    assert within_budget(candidates, 0, by_score=True) == []


def test_model_order_is_highest_score_first_ties_as_given_unscored_last() -> None:
    candidates = [Candidate("none", None, 1), Candidate("x", 0.2, 1), Candidate("y", 0.4, 1), Candidate("z", 0.2, 1)]
    assert [c.customer_id for c in within_budget(candidates, 10, by_score=True)] == ["y", "x", "z", "none"]


def test_expected_figures_by_hand() -> None:
    result = estimate("model", people("m", 10, 0.3), CALIBRATED)
    assert result.contacts == 10 and result.expected_responses == pytest.approx(3.0)
    spread = 1.959964 * math.sqrt(10 * 0.3 * 0.7)
    assert (result.responses_low, result.responses_high) == pytest.approx((3 - spread, 3 + spread))
    assert result.revenue_minor == 63_000 and result.cost_minor == 1_000
    assert result.revenue_over_cost == 63 and result.net_roi == 62
    assert result.response_rate == pytest.approx(0.3)
    empty = estimate("none", [], CALIBRATED)
    assert empty.expected_responses == 0 and empty.revenue_over_cost is None and empty.response_rate is None


def test_model_audience_beats_a_rule_audience_of_the_same_budget() -> None:
    # The rule's own order (e.g. recent buyers first) puts the low scorers first; the model takes the top.
    audience = people("low", 20, 0.05) + people("high", 10, 0.3)
    rule, model = compare_audiences(audience, audience, budget_minor=1_000, history=CALIBRATED)
    assert (rule.contacts, model.contacts) == (10, 10) and rule.cost_minor == model.cost_minor == 1_000
    assert rule.expected_responses == pytest.approx(0.5) and rule.revenue_minor == 10_500
    assert model.expected_responses == pytest.approx(3.0) and model.revenue_minor == 63_000
    assert rule.revenue_over_cost == Fraction(21, 2) and model.revenue_over_cost == 63
    # By hand: 0.5 -/+ 1.96 * sqrt(10 * .05 * .95) and 3 -/+ 1.96 * sqrt(10 * .3 * .7), the low end floored at 0.
    assert table(rule, model, "GBP") == """\
estimate (GBP)                      rule       model
contacts                              10          10
expected responses                   0.5         3.0
95% range                     0.0 to 1.9  0.2 to 5.8
expected response rate             5.00%      30.00%
cost                               10.00       10.00
expected revenue                  105.00      630.00
ROI: revenue / cost             1050.00%    6300.00%
ROI: (revenue - cost) / cost     950.00%    6200.00%
"""


@pytest.mark.parametrize(("candidate", "message"), [
    (Candidate("a", 1.5, 1), "must be a probability"),
    (Candidate("a", float("nan"), 1), "must be a probability"),
    (Candidate("a", 0.5, -1), "must not be negative"),
])
def test_bad_candidates_are_refused(candidate: Candidate, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate("x", [candidate], CALIBRATED)
    with pytest.raises(ValueError, match=message):
        within_budget([candidate], 10, by_score=True)


def test_bad_history_and_budget_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        History(Fraction(3, 2), 1)
    with pytest.raises(ValueError, match="mean score"):
        History(Fraction(1, 2), 1, mean_score=0)
    with pytest.raises(ValueError, match="budget"):
        within_budget([], -1, by_score=False)
