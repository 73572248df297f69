"""Predicted ROI before sending: expected responses, revenue, cost and ROI of an audience within a budget.

Each customer's chance to respond is their model score (the segment service's probability for the
goal), calibrated to campaign responses by past campaigns: a goal model predicts e.g. "orders within
90 days", a campaign counts orders within its 7-day window, so scores are scaled by the past response
rate over the past audiences' mean score. A customer without a score gets the past response rate.
Expected responses are the sum of those chances; the range is +/- 1.96 standard deviations of that
sum of independent yes/no outcomes (sampling only: the calibration's own error is not in it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from services.campaign.report import money, percent, side_by_side

Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class Candidate:
    """A customer an audience offers, with the model's probability (None: not scored) and contact cost."""

    customer_id: str
    score: float | None
    cost_minor: int


@dataclass(frozen=True, slots=True)
class History:
    """What past campaigns of this goal showed."""

    response_rate: Fraction
    revenue_per_responder_minor: int
    # The mean model score of those past audiences; None: scores are taken as calibrated already.
    mean_score: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.response_rate <= 1:
            raise ValueError(f"the past response rate must be between 0 and 1; got {self.response_rate}")
        if self.revenue_per_responder_minor < 0:
            raise ValueError("revenue per responder must not be negative")
        if self.mean_score is not None and not 0 < self.mean_score <= 1:
            raise ValueError(f"the past mean score must be in (0, 1]; got {self.mean_score}")

    def chance(self, score: float | None) -> float:
        """One customer's probability of responding to this campaign."""
        if score is None:
            return float(self.response_rate)
        if self.mean_score is None:
            return score
        return min(1.0, score * float(self.response_rate) / self.mean_score)


@dataclass(frozen=True, slots=True)
class Estimate:
    name: str
    contacts: int
    expected_responses: float
    responses_low: float
    responses_high: float
    revenue_minor: int
    cost_minor: int
    revenue_over_cost: Fraction | None
    net_roi: Fraction | None

    @property
    def response_rate(self) -> float | None:
        return self.expected_responses / self.contacts if self.contacts else None


def _check(candidates: Iterable[Candidate]) -> None:
    for c in candidates:
        if c.score is not None and not (0.0 <= c.score <= 1.0 and math.isfinite(c.score)):
            raise ValueError(f"score of {c.customer_id!r} must be a probability; got {c.score}")
        if c.cost_minor < 0:
            raise ValueError(f"cost of contacting {c.customer_id!r} must not be negative; got {c.cost_minor}")


def within_budget(candidates: Sequence[Candidate], budget_minor: int, *, by_score: bool) -> list[Candidate]:
    """The audience's top that the budget pays for, stopping at the first contact it cannot (as sending does).

    by_score: highest score first (a model audience; unscored last, ties in given order); otherwise the
    audience's own order (a rule audience, e.g. most recent buyers first).
    """
    if budget_minor < 0:
        raise ValueError(f"budget must not be negative; got {budget_minor}")
    _check(candidates)
    ordered = sorted(candidates, key=lambda c: -c.score if c.score is not None else 1.0) if by_score else candidates
    chosen, spent = [], 0
    for candidate in ordered:
        if spent + candidate.cost_minor > budget_minor:
            break
        chosen.append(candidate)
        spent += candidate.cost_minor
    return chosen


def estimate(name: str, audience: Sequence[Candidate], history: History) -> Estimate:
    """Expected responses, revenue, cost and ROI of sending to exactly `audience`."""
    _check(audience)
    chances = [history.chance(c.score) for c in audience]
    expected = math.fsum(chances)
    spread = Z95 * math.sqrt(math.fsum(p * (1 - p) for p in chances))
    revenue = round(Fraction(expected) * history.revenue_per_responder_minor)
    cost = sum(c.cost_minor for c in audience)
    return Estimate(name, len(audience), expected, max(0.0, expected - spread), min(len(audience), expected + spread),
                    revenue, cost, Fraction(revenue, cost) if cost else None,
                    Fraction(revenue - cost, cost) if cost else None)


def compare_audiences(rule: Sequence[Candidate], model: Sequence[Candidate], budget_minor: int, history: History,
                      names: tuple[str, str] = ("rule", "model")) -> tuple[Estimate, Estimate]:
    """A rule audience (its own order) against a model audience (highest scores) on the same budget."""
    return (estimate(names[0], within_budget(rule, budget_minor, by_score=False), history),
            estimate(names[1], within_budget(model, budget_minor, by_score=True), history))


def table(first: Estimate, second: Estimate, currency: str) -> str:
    """Two estimates side by side."""
    def lines(e: Estimate) -> list[tuple[str, str]]:
        return [("contacts", f"{e.contacts:,}"),
                ("expected responses", f"{e.expected_responses:,.1f}"),
                ("95% range", f"{e.responses_low:,.1f} to {e.responses_high:,.1f}"),
                ("expected response rate", percent(e.response_rate)),
                ("cost", money(e.cost_minor, currency)),
                ("expected revenue", money(e.revenue_minor, currency)),
                ("ROI: revenue / cost", percent(e.revenue_over_cost)),
                ("ROI: (revenue - cost) / cost", percent(e.net_roi))]
    return side_by_side(f"estimate ({currency})", (first.name, second.name), lines(first), lines(second))
