"""Uplift of a targeted group's response rate over its holdout's, with a confidence interval.

The interval is Newcombe's hybrid score interval for a difference of two independent proportions
(Newcombe 1998, method 10), computed by statsmodels. Not the Wald interval: campaign response rates
are small (1-10%) and holdouts are often a few hundred customers, where Wald's coverage falls well
below the nominal 95% and its interval collapses to a point when a group has no responder; Newcombe's
combines two Wilson score intervals, keeps its coverage there and stays inside [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from statsmodels.stats.proportion import confint_proportions_2indep

METHOD = "newcombe"


@dataclass(frozen=True, slots=True)
class Uplift:
    """Difference of the response rates (targeted minus holdout) and its interval, as proportions."""

    difference: float
    low: float
    high: float
    confidence: float
    method: str = METHOD


def uplift(responses: int, targeted: int, holdout_responses: int, holdout: int, confidence: float = 0.95) -> Uplift:
    """The targeted rate minus the holdout rate; both groups need at least one customer."""
    for name, count, total in (("targeted", responses, targeted), ("holdout", holdout_responses, holdout)):
        if total <= 0:
            raise ValueError(f"the {name} group is empty: no rate to compare")
        if not 0 <= count <= total:
            raise ValueError(f"{name} responses must be between 0 and {total}; got {count}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1; got {confidence}")
    low, high = confint_proportions_2indep(responses, targeted, holdout_responses, holdout,
                                           method="newcomb", compare="diff", alpha=1 - confidence)
    difference = Fraction(responses, targeted) - Fraction(holdout_responses, holdout)
    return Uplift(float(difference), float(low), float(high), confidence)
