"""Campaign routes (admin): create, list and read campaigns, launch, pause, resume, cancel, report, deliveries,
and the partner channels they send through."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.common.v1 import common_pb2
from pydantic import BaseModel, ConfigDict, Field

from services.common import protoenums as pe
from services.gateway import convert
from services.gateway.auth import ADMIN, require
from services.gateway.campaign_channels import ChannelRulesOut, channel_rules_out, launch_rules
from services.gateway.clients import Upstreams
from services.gateway.deps import upstreams
from services.gateway.errors import ApiError
from services.gateway.openapi import error_example, errors
from services.gateway.schemas import AwareDatetime, MoneyOut, Strict

if TYPE_CHECKING:
    CampaignStub = campaign_pb2_grpc.CampaignServiceAsyncStub
else:  # the async stub class exists for type checkers only; FastAPI evaluates annotations at runtime
    CampaignStub = campaign_pb2_grpc.CampaignServiceStub

SERVICE = "campaign"
router = APIRouter(tags=["campaigns"], dependencies=[Depends(require(ADMIN))])
Clients = Annotated[Upstreams, Depends(upstreams)]

Goal = Literal["retention", "growth", "activation", "acquisition", "custom"]
ChannelName = Literal["sms", "email", "push", "webhook", "ads"]
StateName = Literal["draft", "scheduled", "running", "paused", "completed", "cancelled"]
DeliveryStateName = Literal["pending", "queued", "sent", "failed", "dead", "skipped", "holdout"]
HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"
PARTNER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The campaign's id.", examples=[1])]


# (number -> lower-case name, name -> number) of each enum ("CHANNEL_EMAIL" <-> "email").
GOALS = pe.tables(pb.Goal)
CHANNELS = pe.tables(pb.Channel)
STATES = pe.tables(pb.CampaignState)
MODES = pe.tables(pb.PartnerMode)
DELIVERY_STATES = pe.tables(pb.DeliveryState)


def campaign_stub(clients: Clients) -> CampaignStub:
    """The campaign service's stub; 503 when no campaign address is configured (not deployed here)."""
    if clients.campaign is None:
        raise ApiError(503, "campaign service not configured",
                       "the gateway has no MARKSMAN_GATEWAY_CAMPAIGN_ADDR; campaign routes are off")
    return clients.campaign


Campaign = Annotated[CampaignStub, Depends(campaign_stub)]
UNAVAILABLE_503 = error_example(
    503, "The campaign service is not configured here, unavailable, or did not answer in time.",
    {"error": "campaign service not configured",
     "detail": "the gateway has no MARKSMAN_GATEWAY_CAMPAIGN_ADDR; campaign routes are off",
     "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"},
)
STATE_409 = error_example(
    409, "The campaign's state does not allow this (the message names both states).",
    {"error": "cannot launch a campaign that is running; it must be draft",
     "detail": {"grpc_status": "FAILED_PRECONDITION"}, "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"},
)


# ---- bodies ----


class ChannelIn(Strict):
    channel: ChannelName
    partner: str = Field(pattern=PARTNER_PATTERN, description="A registered partner carrying this channel.")
    cost_per_contact_minor: int = Field(default=0, ge=0, le=10**12)


class OfferIn(Strict):
    code: str = Field(default="", max_length=64)
    expires_at: AwareDatetime | None = None
    description: str = Field(default="", max_length=500)


class CapIn(Strict):
    max_messages: int = Field(ge=1, le=1000)
    per_days: int = Field(ge=1, le=365)


class QuietHoursIn(Strict):
    start: str = Field(pattern=HH_MM, examples=["21:00"])
    end: str = Field(pattern=HH_MM, examples=["08:00"])


class CampaignIn(Strict):
    """A campaign's definition; the service checks the rest (partners exist, template fields, currency)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "name": "winter-winback", "goal": "activation", "segment": "rfm_at_risk",
        "channels": [{"channel": "email", "partner": "mailer", "cost_per_contact_minor": 5},
                     {"channel": "sms", "partner": "texter", "cost_per_contact_minor": 4}],
        "template": "Hello {name}, {offer_description}: {offer_code}. Picked for you: {recommended_items}",
        "subject": "We miss you", "offer": {"code": "WINTER10", "description": "10% off your next order"},
        "currency": "GBP", "budget_minor": 500_000, "holdout_percent": 10,
        "frequency_cap": {"max_messages": 2, "per_days": 7}, "quiet_hours": {"start": "21:00", "end": "08:00"}}]})

    name: str = Field(min_length=1, max_length=128)
    goal: Goal
    goal_description: str = Field(default="", max_length=500)
    segment: str = Field(min_length=1, max_length=64, description="The audience: its current version is frozen "
                                                                   "at launch.")
    channels: list[ChannelIn] = Field(min_length=1, max_length=5, description="In fallback order.")
    template: str = Field(min_length=1, max_length=10_000, examples=["Hello {name}, {offer_description}: {offer_code}. "
                                                                     "Picked for you: {recommended_items}"])
    subject: str = Field(default="", max_length=500)
    offer: OfferIn = Field(default_factory=OfferIn)
    currency: str = Field(default="", pattern=r"^([A-Z]{3})?$")
    budget_minor: int | None = Field(default=None, ge=1, le=10**15, description="Omit for no limit.")
    holdout_percent: float = Field(default=0.0, ge=0, le=100)
    frequency_cap: CapIn | None = None
    quiet_hours: QuietHoursIn | None = None
    start_at: AwareDatetime | None = Field(default=None, description="Omit to start at launch.")
    recommended_items: int = Field(default=3, ge=1, le=10)
    attribution_days: int = Field(default=7, ge=1, le=90)


class PartnerIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"name": "mailer", "channel": "email", "mode": "push", "endpoint": "https://partner.example.com/v1/batches",
         "rate_limit_per_s": 200, "batch_size": 500}]})

    name: str = Field(pattern=PARTNER_PATTERN)
    channel: ChannelName
    mode: Literal["push", "pull"]
    endpoint: str = Field(default="", max_length=2000, description="Push mode: the URL batches are POSTed to.")
    rate_limit_per_s: int = Field(default=100, ge=1, le=1_000_000)
    batch_size: int = Field(default=500, ge=1, le=5000)
    secret: str = Field(default="", max_length=200, description="Empty: one is generated and returned once.")


# ---- answers ----


class CountsOut(BaseModel):
    targeted: int
    holdout: int
    pending: int
    queued: int
    sent: int
    failed: int
    dead: int
    skipped: int
    delivered: int
    opened: int
    clicked: int
    unsubscribed: int


class CampaignOut(BaseModel):
    id: int
    state: StateName
    audience_version: int
    spent: MoneyOut
    created_at: datetime
    launched_at: datetime | None
    finished_at: datetime | None
    counts: CountsOut
    definition: CampaignIn
    channel_rules: ChannelRulesOut = Field(description="Campaign channels by the customer's origin sales channel, "
                                                       "from the rule set current at launch; frozen with it.")


class CampaignsOut(BaseModel):
    campaigns: list[CampaignOut]


class PartnerOut(BaseModel):
    name: str
    channel: ChannelName
    mode: Literal["push", "pull"]
    endpoint: str
    rate_limit_per_s: int
    batch_size: int
    created_at: datetime | None


class RegisteredOut(BaseModel):
    partner: PartnerOut
    api_key: str = Field(description="Shown once: only its hash is kept.")
    secret: str = Field(description="The signing secret of the push format.")


class PartnersOut(BaseModel):
    partners: list[PartnerOut]


class DeliveryOut(BaseModel):
    id: int
    customer_id: str
    idempotency_key: str
    state: DeliveryStateName
    channel: ChannelName | None
    partner: str
    attempts: int
    reason: str
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    unsubscribed_at: datetime | None
    cost_minor: int


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None


class UpliftOut(BaseModel):
    difference: float = Field(description="Targeted response rate minus the holdout's.")
    ci95_low: float
    ci95_high: float


class ReportOut(BaseModel):
    campaign_id: int
    name: str
    targeted: int
    holdout: int
    sent: int
    delivered: int
    responses: int
    response_rate: float
    holdout_responses: int
    holdout_response_rate: float
    revenue: MoneyOut
    cost: MoneyOut
    revenue_over_cost: float = Field(description="ROI as revenue / cost (1.0 = break even).")
    net_roi: float = Field(description="ROI as (revenue - cost) / cost (0 = break even).")
    incremental_revenue: MoneyOut
    uplift: UpliftOut | None
    attribution_days: int


# ---- conversions ----


def _ts(value: datetime | None) -> Timestamp | None:
    return convert.timestamp(value) if value is not None else None


_dt = convert.to_datetime


def spec_to_proto(body: CampaignIn) -> pb.CampaignSpec:
    spec = pb.CampaignSpec(
        name=body.name, goal=GOALS[1][body.goal], goal_description=body.goal_description,  # type: ignore[arg-type]
        segment=body.segment, template=body.template, subject=body.subject, currency=body.currency,
        holdout_percent=body.holdout_percent, recommended_items=body.recommended_items,
        attribution_days=body.attribution_days, start_at=_ts(body.start_at),
        channels=[pb.ChannelRoute(channel=CHANNELS[1][c.channel], partner=c.partner,  # type: ignore[arg-type]
                                  cost_per_contact_minor=c.cost_per_contact_minor) for c in body.channels],
        offer=pb.Offer(code=body.offer.code, expires_at=_ts(body.offer.expires_at), description=body.offer.description),
    )
    if body.budget_minor is not None:
        spec.budget.CopyFrom(common_pb2.Money(amount_minor=body.budget_minor, currency=body.currency))
    if body.frequency_cap is not None:
        spec.frequency_cap.CopyFrom(pb.FrequencyCap(max_messages=body.frequency_cap.max_messages,
                                                    per_days=body.frequency_cap.per_days))
    if body.quiet_hours is not None:
        spec.quiet_hours.CopyFrom(pb.QuietHours(start=body.quiet_hours.start, end=body.quiet_hours.end))
    return spec


def spec_out(spec: pb.CampaignSpec) -> CampaignIn:
    return CampaignIn.model_construct(
        name=spec.name, goal=GOALS[0].get(spec.goal, "custom"), goal_description=spec.goal_description,  # type: ignore[arg-type]
        segment=spec.segment, template=spec.template, subject=spec.subject, currency=spec.currency,
        channels=[ChannelIn.model_construct(channel=CHANNELS[0][c.channel], partner=c.partner,  # type: ignore[arg-type]
                                            cost_per_contact_minor=c.cost_per_contact_minor) for c in spec.channels],
        offer=OfferIn.model_construct(code=spec.offer.code, expires_at=_dt(spec.offer, "expires_at"),
                                      description=spec.offer.description),
        budget_minor=spec.budget.amount_minor if spec.HasField("budget") else None,
        holdout_percent=spec.holdout_percent,
        frequency_cap=CapIn.model_construct(max_messages=spec.frequency_cap.max_messages,
                                            per_days=spec.frequency_cap.per_days)
        if spec.HasField("frequency_cap") else None,
        quiet_hours=QuietHoursIn.model_construct(start=spec.quiet_hours.start, end=spec.quiet_hours.end)
        if spec.HasField("quiet_hours") else None,
        start_at=_dt(spec, "start_at"), recommended_items=spec.recommended_items,
        attribution_days=spec.attribution_days,
    )


def campaign_out(campaign: pb.Campaign) -> CampaignOut:
    c = campaign.counts
    return CampaignOut(
        id=campaign.id, state=STATES[0][campaign.state], audience_version=campaign.audience_version,
        spent=MoneyOut(amount_minor=campaign.spent.amount_minor, currency=campaign.spent.currency),
        created_at=campaign.created_at.ToDatetime(tzinfo=UTC), launched_at=_dt(campaign, "launched_at"),
        finished_at=_dt(campaign, "finished_at"),
        counts=CountsOut(**{name: getattr(c, name) for name in CountsOut.model_fields}),
        definition=spec_out(campaign.spec), channel_rules=channel_rules_out(campaign.channel_rules),
    )


def partner_out(partner: pb.Partner) -> PartnerOut:
    return PartnerOut(name=partner.name, channel=CHANNELS[0][partner.channel], mode=MODES[0][partner.mode],
                      endpoint=partner.endpoint, rate_limit_per_s=partner.rate_limit_per_s,
                      batch_size=partner.batch_size, created_at=_dt(partner, "created_at"))


def delivery_out(d: pb.Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, customer_id=d.customer_id, idempotency_key=d.idempotency_key,
        state=DELIVERY_STATES[0][d.state], channel=CHANNELS[0].get(d.channel), partner=d.partner,
        attempts=d.attempts, reason=d.reason, sent_at=_dt(d, "sent_at"), delivered_at=_dt(d, "delivered_at"),
        opened_at=_dt(d, "opened_at"), clicked_at=_dt(d, "clicked_at"), unsubscribed_at=_dt(d, "unsubscribed_at"),
        cost_minor=d.cost_minor,
    )


def report_out(r: pb.CampaignReport) -> ReportOut:
    has_uplift = r.holdout > 0 and r.targeted > 0
    return ReportOut(
        campaign_id=r.campaign_id, name=r.name, targeted=r.targeted, holdout=r.holdout, sent=r.sent,
        delivered=r.delivered, responses=r.responses, response_rate=r.response_rate,
        holdout_responses=r.holdout_responses, holdout_response_rate=r.holdout_response_rate,
        revenue=convert.money_out(r.revenue), cost=convert.money_out(r.cost), revenue_over_cost=r.revenue_over_cost, net_roi=r.net_roi,
        incremental_revenue=convert.money_out(r.incremental_revenue),
        uplift=UpliftOut(difference=r.uplift, ci95_low=r.uplift_ci_low, ci95_high=r.uplift_ci_high)
        if has_uplift else None,
        attribution_days=r.attribution_days,
    )


# ---- routes ----


@router.post("/v1/campaigns", status_code=201, summary="Create a draft campaign", response_model=CampaignOut,
             responses={**errors(400, 401, 403, 415, 422, 502), **UNAVAILABLE_503})
async def create_campaign(body: CampaignIn, clients: Clients, stub: Campaign) -> CampaignOut:
    response = await clients.call(SERVICE, stub.CreateCampaign, pb.CreateCampaignRequest(spec=spec_to_proto(body)))
    return campaign_out(response.campaign)


@router.get("/v1/campaigns", summary="Every campaign, optionally of one state", response_model=CampaignsOut,
            responses={**errors(401, 403, 422, 502), **UNAVAILABLE_503})
async def list_campaigns(clients: Clients, stub: Campaign,
                         state: Annotated[StateName | None, Query(description="Only this state.")] = None) -> CampaignsOut:
    request = pb.ListCampaignsRequest(state=STATES[1][state] if state else 0)  # type: ignore[arg-type]
    response = await clients.call(SERVICE, stub.ListCampaigns, request)
    return CampaignsOut(campaigns=[campaign_out(c) for c in response.campaigns])


@router.get("/v1/campaigns/{campaign_id}", summary="One campaign with its delivery counts", response_model=CampaignOut,
            responses={**errors(401, 403, 404, 422, 502), **UNAVAILABLE_503})
async def get_campaign(campaign_id: CampaignId, clients: Clients, stub: Campaign) -> CampaignOut:
    response = await clients.call(SERVICE, stub.GetCampaign, pb.GetCampaignRequest(id=campaign_id))
    return campaign_out(response.campaign)


@router.post("/v1/campaigns/{campaign_id}/launch",
             summary="Freeze the audience, assign the holdout and queue one message per customer",
             description="Draft -> running (or scheduled when its start is ahead). The whole audience is written in "
                         "one transaction; a second launch is refused (409) and never adds messages. The current "
                         "rule set's campaign channels by origin sales channel are frozen with the campaign: a "
                         "customer whose origin forbids a channel gets the next allowed one, or is skipped "
                         "(reason origin_channel).",
             response_model=CampaignOut, responses={**errors(401, 403, 404, 422, 502), **STATE_409, **UNAVAILABLE_503})
async def launch_campaign(campaign_id: CampaignId, clients: Clients, stub: Campaign, request: Request) -> CampaignOut:
    rules = launch_rules(request.app.state.pricing)
    # Streaming a large audience and writing its outbox takes as long as a big ingest: the longer deadline.
    response = await clients.call(SERVICE, stub.LaunchCampaign,
                                  pb.LaunchCampaignRequest(id=campaign_id, channel_rules=rules),
                                  timeout_s=clients.ingest_timeout_s)
    return campaign_out(response.campaign)


@router.post("/v1/campaigns/{campaign_id}/pause", summary="Stop sending until resumed (running or scheduled)",
             response_model=CampaignOut, responses={**errors(401, 403, 404, 422, 502), **STATE_409, **UNAVAILABLE_503})
async def pause_campaign(campaign_id: CampaignId, clients: Clients, stub: Campaign) -> CampaignOut:
    response = await clients.call(SERVICE, stub.PauseCampaign, pb.PauseCampaignRequest(id=campaign_id))
    return campaign_out(response.campaign)


@router.post("/v1/campaigns/{campaign_id}/resume", summary="Send again after a pause", response_model=CampaignOut,
             responses={**errors(401, 403, 404, 422, 502), **STATE_409, **UNAVAILABLE_503})
async def resume_campaign(campaign_id: CampaignId, clients: Clients, stub: Campaign) -> CampaignOut:
    response = await clients.call(SERVICE, stub.ResumeCampaign, pb.ResumeCampaignRequest(id=campaign_id))
    return campaign_out(response.campaign)


@router.post("/v1/campaigns/{campaign_id}/cancel", summary="End the campaign; unsent messages are skipped",
             response_model=CampaignOut, responses={**errors(401, 403, 404, 422, 502), **STATE_409, **UNAVAILABLE_503})
async def cancel_campaign(campaign_id: CampaignId, clients: Clients, stub: Campaign) -> CampaignOut:
    response = await clients.call(SERVICE, stub.CancelCampaign, pb.CancelCampaignRequest(id=campaign_id))
    return campaign_out(response.campaign)


@router.get("/v1/campaigns/{campaign_id}/report",
            summary="Targeted, holdout, sent, responses, revenue, cost, ROI both ways and the uplift with its 95% CI",
            response_model=ReportOut, responses={**errors(401, 403, 404, 422, 502), **UNAVAILABLE_503})
async def campaign_report(campaign_id: CampaignId, clients: Clients, stub: Campaign) -> ReportOut:
    # Attribution reads the customers' orders from profile: the longer deadline.
    response = await clients.call(SERVICE, stub.GetCampaignReport, pb.GetCampaignReportRequest(id=campaign_id),
                                  timeout_s=clients.ingest_timeout_s)
    return report_out(response.report)


@router.get("/v1/campaigns/{campaign_id}/deliveries", summary="The campaign's messages, a page at a time",
            description="`state=dead` lists the dead letters (given up after the last attempt, with the last error).",
            response_model=DeliveriesOut, responses={**errors(401, 403, 404, 422, 502), **UNAVAILABLE_503})
async def list_deliveries(
    campaign_id: CampaignId, clients: Clients, stub: Campaign,
    state: Annotated[DeliveryStateName | None, Query(description="Only this state.")] = None,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,19}$", description="`next_cursor` of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveriesOut:
    request = pb.ListDeliveriesRequest(campaign_id=campaign_id, state=DELIVERY_STATES[1][state] if state else 0,  # type: ignore[arg-type]
                                       page_size=limit, page_token=cursor or "")
    response = await clients.call(SERVICE, stub.ListDeliveries, request)
    return DeliveriesOut(deliveries=[delivery_out(d) for d in response.deliveries],
                         next_cursor=response.next_page_token or None)


@router.post("/v1/partners", status_code=201, summary="Register a partner channel; its API key is shown once",
             response_model=RegisteredOut, responses={**errors(400, 401, 403, 409, 415, 422, 502), **UNAVAILABLE_503})
async def register_partner(body: PartnerIn, clients: Clients, stub: Campaign) -> RegisteredOut:
    partner = pb.Partner(name=body.name, endpoint=body.endpoint, rate_limit_per_s=body.rate_limit_per_s,
                         batch_size=body.batch_size, mode=MODES[1][body.mode],  # type: ignore[arg-type]
                         channel=CHANNELS[1][body.channel])  # type: ignore[arg-type]
    response = await clients.call(SERVICE, stub.RegisterPartner,
                                  pb.RegisterPartnerRequest(partner=partner, secret=body.secret))
    return RegisteredOut(partner=partner_out(response.partner), api_key=response.api_key, secret=response.secret)


@router.get("/v1/partners", summary="The registered partner channels", response_model=PartnersOut,
            responses={**errors(401, 403, 502), **UNAVAILABLE_503})
async def list_partners(clients: Clients, stub: Campaign) -> PartnersOut:
    response = await clients.call(SERVICE, stub.ListPartners, pb.ListPartnersRequest())
    return PartnersOut(partners=[partner_out(p) for p in response.partners])

