"""Estimates before sending as the API gives them: audiences and their model scores from segment, figures from estimate.py."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2

from services.campaign.clients import ScoredAudiences
from services.campaign.estimate import Candidate, Estimate, History, estimate, table, within_budget
from services.common.errors import FailedPrecondition, InvalidArgument

MAX_AUDIENCES = 10
MAX_COST_MINOR = 10**12
MAX_BUDGET_MINOR = 10**15
CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class AudienceSpec:
    name: str
    segment: str
    cost_per_contact_minor: int


@dataclass(frozen=True, slots=True)
class AudienceResult:
    spec: AudienceSpec
    version: int
    members: int
    scored: int
    figures: Estimate


def check(audiences: Sequence[AudienceSpec], budget_minor: int, currency: str) -> None:
    """InvalidArgument naming the first thing wrong with a request."""
    if not 1 <= len(audiences) <= MAX_AUDIENCES:
        raise InvalidArgument(f"give 1 to {MAX_AUDIENCES} audiences; got {len(audiences)}")
    if not CURRENCY.match(currency):
        raise InvalidArgument(f"budget.currency must be an ISO 4217 code like GBP; got {currency!r}")
    if not 1 <= budget_minor <= MAX_BUDGET_MINOR:
        raise InvalidArgument(f"budget.amount_minor must be 1 to {MAX_BUDGET_MINOR:,}; got {budget_minor}")
    names = set()
    for i, audience in enumerate(audiences):
        if not audience.name or audience.name in names:
            raise InvalidArgument(f"audiences[{i}].name must be given and unique; got {audience.name!r}")
        names.add(audience.name)
        if not audience.segment:
            raise InvalidArgument(f"audiences[{i}].segment is required")
        if not 1 <= audience.cost_per_contact_minor <= MAX_COST_MINOR:
            raise InvalidArgument(f"audiences[{i}].cost_per_contact_minor must be 1 to {MAX_COST_MINOR:,}; "
                                  f"got {audience.cost_per_contact_minor}")


def history_of(response_rate: float, revenue_per_responder_minor: int, mean_score: float) -> History:
    """The past campaigns' figures; a mean score of 0 means the scores are calibrated already."""
    if not (math.isfinite(response_rate) and math.isfinite(mean_score)):
        raise InvalidArgument("history.response_rate and history.mean_score must be finite numbers")
    try:
        # The rate arrives as a double: its exact binary value is the rate meant, within a double's precision.
        return History(Fraction(response_rate).limit_denominator(10**9), revenue_per_responder_minor,
                       mean_score or None)
    except ValueError as error:
        raise InvalidArgument(f"history: {error}") from None


def candidates(ids: Sequence[str], own: Sequence[float], other: Mapping[str, float],
               cost_minor: int) -> tuple[list[Candidate], bool]:
    """The audience's customers with a score, and whether to take it highest score first.

    A model audience carries its own scores (taken by score); a rule segment's members get the scores
    segment's score where it has one (taken in the segment's own order)."""
    if own:
        return [Candidate(cid, score, cost_minor) for cid, score in zip(ids, own, strict=True)], True
    return [Candidate(cid, other.get(cid), cost_minor) for cid in ids], False


class Estimator:
    """Reads each audience's current version from segment and estimates it within the budget."""

    def __init__(self, audiences: ScoredAudiences | None) -> None:
        self.audiences = audiences

    def _segment(self) -> ScoredAudiences:
        if self.audiences is None:
            raise FailedPrecondition("no segment service is configured (MARKSMAN_CAMPAIGN_SEGMENT_ADDR): "
                                     "audiences cannot be read")
        return self.audiences

    def estimate(self, audiences: Sequence[AudienceSpec], budget_minor: int, currency: str, history: History,
                 scores_segment: str = "") -> list[AudienceResult]:
        check(audiences, budget_minor, currency)
        segment = self._segment()
        other: dict[str, float] = {}
        if scores_segment:
            _, ids, scores = segment.scored_members(scores_segment)
            if not scores:
                raise InvalidArgument(f"scores_segment {scores_segment!r} is a rule segment; it must be a model "
                                      "audience (its members carry scores)")
            other = dict(zip(ids, scores, strict=True))
        results = []
        for audience in audiences:
            version, ids, own = segment.scored_members(audience.segment)
            chosen, by_score = candidates(ids, own, other, audience.cost_per_contact_minor)
            paid = within_budget(chosen, budget_minor, by_score=by_score)
            results.append(AudienceResult(audience, version, len(ids), sum(1 for c in paid if c.score is not None),
                                          estimate(audience.name, paid, history)))
        return results


def text(results: Sequence[AudienceResult], currency: str) -> str:
    """The first two estimates side by side; empty with fewer than two."""
    return table(results[0].figures, results[1].figures, currency) if len(results) >= 2 else ""


def to_proto(result: AudienceResult, currency: str) -> pb.AudienceEstimate:
    e = result.figures
    message = pb.AudienceEstimate(
        name=result.spec.name, segment=result.spec.segment, version=result.version, members=result.members,
        contacts=e.contacts, scored=result.scored, expected_responses=e.expected_responses,
        responses_low=e.responses_low, responses_high=e.responses_high,
        revenue=common_pb2.Money(amount_minor=e.revenue_minor, currency=currency),
        cost=common_pb2.Money(amount_minor=e.cost_minor, currency=currency))
    if e.revenue_over_cost is not None and e.net_roi is not None:
        message.revenue_over_cost, message.net_roi = float(e.revenue_over_cost), float(e.net_roi)
    return message
