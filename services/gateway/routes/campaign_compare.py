"""Campaign estimates and comparisons (admin): an audience's predicted ROI within a budget, two audiences' on one
budget before sending, and two campaigns' reports side by side after."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.gateway import convert
from services.gateway.auth import ADMIN, require
from services.gateway.config import GatewaySettings
from services.gateway.deps import settings
from services.gateway.openapi import errors
from services.gateway.routes.campaigns import (
    SERVICE,
    UNAVAILABLE_503,
    Campaign,
    CampaignId,
    Clients,
    ReportOut,
    report_out,
)
from services.gateway.schemas import CURRENCY_PATTERN, SEGMENT_NAME_PATTERN, MoneyOut, SegmentName, Strict

Settings = Annotated[GatewaySettings, Depends(settings)]
router = APIRouter(tags=["campaigns"], dependencies=[Depends(require(ADMIN))])
OtherId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The second campaign's id.", examples=[2])]


class AudienceIn(Strict):
    name: str = Field(min_length=1, max_length=64, description="The column's label.", examples=["bought-last-90-days"])
    segment: SegmentName = Field(json_schema_extra={"pattern": SEGMENT_NAME_PATTERN},
                                 description="A rule segment (taken in its own order) or a model audience (highest score "
                                             "first); its current version is read.")
    cost_per_contact_minor: int = Field(ge=1, le=10**12, examples=[500])


class HistoryIn(Strict):
    """What past campaigns of this kind showed: the model scores are calibrated to it."""

    response_rate: float = Field(ge=0, le=1, description="Share of past targeted customers who responded.",
                                 examples=[0.02])
    revenue_per_responder_minor: int = Field(ge=0, le=10**15, examples=[21_000])
    mean_score: float | None = Field(default=None, gt=0, le=1,
                                     description="The past audiences' mean model score; omit when the scores are "
                                                 "already campaign response probabilities.")


class EstimateIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "audience": {"name": "growth-top", "segment": "growth-top-1000", "cost_per_contact_minor": 500},
        "budget_minor": 1_230_500, "currency": "GBP",
        "history": {"response_rate": 0.12, "revenue_per_responder_minor": 50_104, "mean_score": 0.6}}]})

    audience: AudienceIn
    budget_minor: int = Field(ge=1, le=10**15, description="The audience's top that this pays for is estimated.")
    currency: str = Field(pattern=CURRENCY_PATTERN, examples=["GBP"])
    history: HistoryIn
    scores_segment: SegmentName | None = Field(default=None, json_schema_extra={"pattern": SEGMENT_NAME_PATTERN},
                                               description="A model audience whose scores apply to a rule segment's "
                                                           "members; omitted: they count at the past rate.")


class EstimateCompareIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "audiences": [{"name": "bought-last-90-days", "segment": "bought-90d", "cost_per_contact_minor": 500},
                      {"name": "growth-top", "segment": "growth-top-1000", "cost_per_contact_minor": 500}],
        "budget_minor": 1_230_500, "currency": "GBP", "scores_segment": "growth-all",
        "history": {"response_rate": 0.12, "revenue_per_responder_minor": 50_104, "mean_score": 0.6}}]})

    audiences: list[AudienceIn] = Field(min_length=2, max_length=2,
                                        description="Two audiences, e.g. a rule and a model audience.")
    budget_minor: int = Field(ge=1, le=10**15, description="The same budget for both.")
    currency: str = Field(pattern=CURRENCY_PATTERN, examples=["GBP"])
    history: HistoryIn
    scores_segment: SegmentName | None = Field(default=None, json_schema_extra={"pattern": SEGMENT_NAME_PATTERN},
                                               description="A model audience whose scores apply to rule segments' members (e.g. the "
                                            "goal's model with threshold 0); omitted: they count at the past rate.")

    @model_validator(mode="after")
    def _distinct_names(self) -> EstimateCompareIn:
        if self.audiences[0].name == self.audiences[1].name:
            raise ValueError("the two audiences need different names")
        return self


class AudienceEstimateOut(BaseModel):
    name: str
    segment: str
    version: int = Field(description="The segment version read.")
    members: int
    contacts: int = Field(description="Members the budget pays for.")
    scored: int = Field(description="Contacts with a model score (the rest count at the past response rate).")
    expected_responses: float
    responses_ci95: tuple[float, float] = Field(description="+/- 1.96 standard deviations (sampling only).")
    expected_response_rate: float | None
    expected_revenue: MoneyOut
    cost: MoneyOut
    revenue_over_cost: float | None = Field(description="ROI as revenue / cost (1.0 = break even); null: no cost.")
    net_roi: float | None = Field(description="ROI as (revenue - cost) / cost (0 = break even); null: no cost.")


class EstimateCompareOut(BaseModel):
    estimates: list[AudienceEstimateOut]
    table: str = Field(description="The two side by side, as text.")


class CampaignCompareOut(BaseModel):
    first: ReportOut
    second: ReportOut
    table: str = Field(description="One figure a line, the two campaigns in columns.")


def estimate_out(e: pb.AudienceEstimate) -> AudienceEstimateOut:
    return AudienceEstimateOut(
        name=e.name, segment=e.segment, version=e.version, members=e.members, contacts=e.contacts, scored=e.scored,
        expected_responses=e.expected_responses, responses_ci95=(e.responses_low, e.responses_high),
        expected_response_rate=e.expected_responses / e.contacts if e.contacts else None,
        expected_revenue=convert.money_out(e.revenue), cost=convert.money_out(e.cost),
        revenue_over_cost=e.revenue_over_cost if e.HasField("revenue_over_cost") else None,
        net_roi=e.net_roi if e.HasField("net_roi") else None,
    )


async def _estimate(clients: Clients, stub: Campaign, audiences: list[AudienceIn], budget_minor: int, currency: str,
                    h: HistoryIn, scores_segment: str | None) -> pb.EstimateAudiencesResponse:
    request = pb.EstimateAudiencesRequest(
        audiences=[pb.AudienceToEstimate(name=a.name, segment=a.segment, cost_per_contact_minor=a.cost_per_contact_minor)
                   for a in audiences],
        budget=common_pb2.Money(amount_minor=budget_minor, currency=currency),
        history=pb.ResponseHistory(response_rate=h.response_rate, revenue_per_responder_minor=h.revenue_per_responder_minor,
                                   mean_score=h.mean_score or 0.0),
        scores_segment=scores_segment or "")
    # Reading whole audiences from segment takes as long as a big export: the longer deadline.
    response: pb.EstimateAudiencesResponse = await clients.call(SERVICE, stub.EstimateAudiences, request,
                                                                timeout_s=clients.ingest_timeout_s)
    return response


@router.post("/v1/campaigns/estimate", summary="Predicted ROI of an audience within a budget, before sending",
             description="The audience's top that the budget pays for, its expected responses (model scores "
                         "calibrated by the past response rate) with a 95% range, revenue, cost and ROI both ways.",
             response_model=AudienceEstimateOut,
             responses={**errors(400, 401, 403, 404, 409, 415, 422, 502), **UNAVAILABLE_503})
async def estimate_one(body: EstimateIn, clients: Clients, stub: Campaign) -> AudienceEstimateOut:
    response = await _estimate(clients, stub, [body.audience], body.budget_minor, body.currency, body.history,
                               body.scores_segment)
    return estimate_out(response.estimates[0])


@router.post("/v1/campaigns/estimate/compare", summary="Predicted ROI of two audiences on the same budget",
             description="Before sending: each audience's top that the budget pays for, its expected responses "
                         "(model scores calibrated by the past response rate), revenue, cost and ROI both ways.",
             response_model=EstimateCompareOut,
             responses={**errors(400, 401, 403, 404, 409, 415, 422, 502), **UNAVAILABLE_503})
async def estimate_compare(body: EstimateCompareIn, clients: Clients, stub: Campaign) -> EstimateCompareOut:
    response = await _estimate(clients, stub, body.audiences, body.budget_minor, body.currency, body.history,
                               body.scores_segment)
    return EstimateCompareOut(estimates=[estimate_out(e) for e in response.estimates], table=response.table)


@router.get("/v1/campaigns/{campaign_id}/compare/{other_id}", summary="Two campaigns' reports side by side",
            description="Targets, cost per contact, cost, responses, response rate, revenue, ROI both ways and the "
                        "uplift over each holdout with its 95% interval, with the table as text.",
            response_model=CampaignCompareOut, responses={**errors(401, 403, 404, 422, 502), **UNAVAILABLE_503})
async def compare_campaigns(campaign_id: CampaignId, other_id: OtherId, clients: Clients, stub: Campaign,
                            config: Settings) -> CampaignCompareOut:
    # Attribution reads every order line profile holds, as a model training does: the training deadline
    # (the ingest one, 30 s, ran out on the demo's 400,000 lines on a loaded machine).
    response = await clients.call(SERVICE, stub.CompareCampaigns,
                                  pb.CompareCampaignsRequest(first_id=campaign_id, second_id=other_id),
                                  timeout_s=config.training_timeout_s)
    return CampaignCompareOut(first=report_out(response.first), second=report_out(response.second),
                              table=response.table)
