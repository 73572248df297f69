"""The gateway's HTTP request and response bodies (JSON): validated here, converted to protos in convert.py."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
    with_config,
)

# pydantic needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

# Ids are the platform's own strings: printable, no whitespace or slashes, at most 128 characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$"
ID_RE = re.compile(ID_PATTERN)
CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_BATCH_EVENTS = 5000
# Wholesale orders run long (the retail data has one of 1,114 lines); an order must fit one event,
# because events with the same order id count as one order (a re-send, not a second part).
MAX_LINES_PER_EVENT = 2000
# 10^13 minor units: far above any real price, and safe in int64 after multiplying by quantity.
MAX_MINOR = 10**13
MAX_QUANTITY = 1_000_000

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=200)]
Minor = Annotated[int, Field(ge=0, le=MAX_MINOR)]

EventTypeName = Literal["view", "search", "add_to_cart", "order", "refund"]
SalesChannelName = Literal["web", "app", "mini_program", "marketplace", "partner"]
PaymentChannelName = Literal["wechat_pay", "alipay", "bank_card", "cash_on_delivery", "other"]
ContactChannelName = Literal["email", "sms", "push"]
LifecycleStageName = Literal["new", "active", "at_risk", "dormant", "churned"]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a time zone, e.g. 2011-12-09T12:50:00Z")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConsentIn(Strict):
    channel: ContactChannelName
    granted: bool
    changed_at: AwareDatetime | None = Field(default=None, description="Defaults to the time of the request.")


class CustomerIn(Strict):
    customer_id: Id
    name: Text = ""
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")] = ""
    phone: Annotated[str, StringConstraints(max_length=32, pattern=r"^$|^\+?[0-9 ()-]{5,31}$")] = ""
    push_token: Annotated[str, StringConstraints(max_length=512)] = ""
    region: Text = ""
    time_zone: Annotated[str, StringConstraints(max_length=64)] = ""
    signup_at: AwareDatetime | None = None
    consents: list[ConsentIn] = Field(default_factory=list, max_length=10)

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "17850",
                    "name": "Zoë Müller",
                    "email": "zoe@example.com",
                    "region": "United Kingdom",
                    "consents": [{"channel": "email", "granted": True, "changed_at": "2011-01-05T10:00:00Z"}],
                }
            ]
        },
    )


class CustomersIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "customers": [{"customer_id": "17850", "name": "Zoë Müller", "email": "zoe@example.com",
                       "region": "United Kingdom", "time_zone": "Europe/London",
                       "consents": [{"channel": "email", "granted": True, "changed_at": "2011-01-05T10:00:00Z"}]}]}]})

    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


# The event path's bodies are TypedDicts, not models: pydantic validates them to plain dicts, which
# costs less than half the CPU of building a model per event and per line (bench/ingest.py), and the
# dicts feed the protos directly. Absent optional fields stay absent; convert.py applies the defaults.
@with_config(ConfigDict(extra="forbid", str_strip_whitespace=True))
class LineIn(TypedDict):
    """One line of an order or refund; absent numbers are 0 (quantity 1) and absent texts empty."""

    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    quantity: NotRequired[Annotated[int, Field(gt=0, le=MAX_QUANTITY, description="Defaults to 1.")]]
    unit_price_minor: NotRequired[Minor]
    list_price_minor: NotRequired[Minor]
    discount_minor: NotRequired[Minor]
    category: NotRequired[Text]
    brand: NotRequired[Text]


EVENT_EXAMPLES: dict[str, Any] = {
    "examples": [
        {
            "event_id": "order-536365",
            "type": "order",
            "customer_id": "17850",
            "occurred_at": "2010-12-01T08:26:00Z",
            "sales_channel": "web",
            "payment_channel": "bank_card",
            "currency": "GBP",
            "lines": [
                {"sku": "85123A", "quantity": 6, "unit_price_minor": 255, "list_price_minor": 295,
                 "category": "Home", "brand": ""}
            ],
        }
    ]
}


@with_config(ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=EVENT_EXAMPLES))
class EventIn(TypedDict):
    """One event. Orders need lines and a currency; refunds need lines or the order_id they reverse."""

    event_id: Id
    type: EventTypeName
    customer_id: NotRequired[Id | None]
    anonymous_id: NotRequired[Id | None]
    occurred_at: AwareDatetime
    sales_channel: NotRequired[SalesChannelName | None]
    payment_channel: NotRequired[PaymentChannelName | None]
    currency: NotRequired[Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] | None]
    order_id: NotRequired[Id | None]
    quote_id: NotRequired[Id | None]
    query: NotRequired[Annotated[str, StringConstraints(max_length=500)] | None]
    lines: NotRequired[Annotated[list[LineIn], Field(max_length=MAX_LINES_PER_EVENT)]]


class EventsIn(BaseModel):
    """The documented shape of POST /v1/events; the route validates each event on its own."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": EVENT_EXAMPLES["examples"]}]})

    events: list[EventIn] = Field(max_length=MAX_BATCH_EVENTS)


class EventResult(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None


class EventsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": 2, "duplicates": 1, "rejected": 1, "results": [
        {"index": 0, "event_id": "order-536365", "status": "accepted"},
        {"index": 1, "event_id": "order-536366", "status": "accepted"},
        {"index": 2, "event_id": "order-536365", "status": "duplicate"},
        {"index": 3, "event_id": "view-9", "status": "rejected", "reason": "type: unknown event type 'teleport'"}]}]})

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class UpsertResultOut(BaseModel):
    customer_id: str
    ok: bool
    created: bool
    error: str | None = None


class CustomersOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"results": [{"customer_id": "17850", "ok": True, "created": True},
                                                         {"customer_id": "13047", "ok": True, "created": False}]}]})

    results: list[UpsertResultOut]


class MoneyOut(BaseModel):
    amount_minor: int
    currency: str


class ConsentOut(BaseModel):
    channel: ContactChannelName
    granted: bool
    changed_at: datetime | None


class PortraitOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": "13261", "computed_at": "2011-12-10T00:00:00Z", "has_orders": True, "recency_days": 268,
        "frequency": 2, "monetary": {"amount_minor": 94410, "currency": "GBP"},
        "average_order_value": {"amount_minor": 47205, "currency": "GBP"}, "r_score": 1, "f_score": 2, "m_score": 4,
        "rfm_segment": "at_risk", "lifecycle_stage": "churned", "purchasing_power": 0.7505,
        "purchasing_power_by_category": {"Candles & Lights": 0.4109, "Home": 0.8614, "Party": 0.6789},
        "price_sensitivity": 0.6085, "brand_loyalty": 0.0, "category_loyalty": 0.4372,
        "top_categories": ["Home", "Party", "Candles & Lights"], "preferred_payment_channel": "cash_on_delivery",
        "preferred_sales_channel": "marketplace", "first_order_at": "2011-02-27T10:41:00Z",
        "last_order_at": "2011-03-16T12:22:00Z", "last_event_at": "2011-03-16T12:22:00Z",
        "purchase_interval_days": 17.07, "views": 0, "carts": 0, "searches": 0, "refunds": 0,
        "region": "United Kingdom", "time_zone": "Europe/London",
        "consents": [{"channel": "email", "granted": True, "changed_at": "2011-02-27T10:41:00Z"}],
        "base_computed_at": "2011-12-10T00:00:00Z"}]})

    customer_id: str
    computed_at: datetime | None
    has_orders: bool
    recency_days: int | None
    frequency: int
    monetary: MoneyOut
    average_order_value: MoneyOut
    r_score: int
    f_score: int
    m_score: int
    rfm_segment: str | None
    lifecycle_stage: LifecycleStageName | None
    purchasing_power: float
    purchasing_power_by_category: dict[str, float]
    price_sensitivity: float
    brand_loyalty: float
    category_loyalty: float
    top_categories: list[str]
    preferred_payment_channel: PaymentChannelName | None
    preferred_sales_channel: SalesChannelName | None
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_event_at: datetime | None
    purchase_interval_days: float
    views: int
    carts: int
    searches: int
    refunds: int
    region: str
    time_zone: str
    consents: list[ConsentOut]
    base_computed_at: datetime | None


class ErasureOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"customer_id": "17850", "services": {"gateway": 3, "profile": 312, "segment": 14, "recommend": 1,
                                                       "campaign": 2}, "skipped": []}]})

    customer_id: str
    services: dict[str, int] = Field(description="Records deleted per service.")
    skipped: list[str] = Field(
        default_factory=list, description="Services not deployed here (no address configured): nothing erased there."
    )


class ErrorOut(BaseModel):
    error: str
    detail: object | None = None
    request_id: str | None = None


class MergeIdentityIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"customer_id": "17850", "anonymous_id": "device-7f3a9c"}]})

    customer_id: Id
    anonymous_id: Id


class MergeIdentityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"events_moved": 4}]})

    events_moved: int


class ConsentsIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"consents": [{"channel": "sms", "granted": False, "changed_at": "2011-11-30T18:00:00Z"}]}]})

    consents: list[ConsentIn] = Field(min_length=1, max_length=10)


class ConsentsOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"customer_id": "17850", "consents": [
        {"channel": "email", "granted": True, "changed_at": "2011-01-05T10:00:00Z"},
        {"channel": "sms", "granted": False, "changed_at": "2011-11-30T18:00:00Z"}]}]})

    customer_id: str
    consents: list[ConsentOut]


class RecomputeOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"customers": 4371, "seconds": 16.8, "computed_at": "2011-12-10T00:00:00Z"}]})

    customers: int
    seconds: float
    computed_at: datetime | None


class SummaryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customers": 4371, "customers_with_orders": 4336, "orders": 18489, "events": 23750,
        "revenue": {"amount_minor": 827189012, "currency": "GBP"},
        "rfm_segments": {"champions": 627, "loyal": 810, "potential_loyalists": 510, "new_customers": 32,
                         "promising": 88, "need_attention": 188, "about_to_sleep": 355, "at_risk": 568,
                         "cant_lose_them": 70, "hibernating": 750, "lost": 338},
        "lifecycle_stages": {"new": 264, "active": 2571, "at_risk": 532, "dormant": 719, "churned": 307},
        "base_computed_at": "2011-12-10T00:00:00Z", "pending_portraits": 0}]})

    customers: int
    customers_with_orders: int
    orders: int
    events: int
    revenue: MoneyOut
    rfm_segments: dict[str, int] = Field(description="Customers per named RFM segment.")
    lifecycle_stages: dict[str, int] = Field(description="Customers per lifecycle stage.")
    base_computed_at: datetime | None
    pending_portraits: int


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


# ---- segments ----

# As the segment service: lower-case letters, digits, '_' and '-', starting with a letter or digit.
SEGMENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
SEGMENT_NAME_RE = re.compile(SEGMENT_NAME_PATTERN)
SEGMENT_NAME_RULE = "a segment name is 1-64 lower-case letters, digits, '_' or '-', starting with a letter or digit"
MAX_RULE_CHARS = 10_000
MAX_DESCRIPTION_CHARS = 1000
MAX_PREVIEW_SAMPLE = 1000
MAX_MEMBERS_PAGE = 10_000
RULE_EXAMPLE = 'recency_days <= 90 and monetary > 1000 or frequency >= 5'


def check_segment_name(value: str) -> str:
    """The service's naming rule, checked here too so a bad name never costs a call (and reads plainly)."""
    if not SEGMENT_NAME_RE.match(value):
        raise ValueError(f"{SEGMENT_NAME_RULE}; got {value!r}")
    return value


SegmentName = Annotated[str, AfterValidator(check_segment_name)]
# Rules are never stripped: the service's line and column numbers must match the text as sent.
RuleText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_RULE_CHARS),
    Field(description="A rule in the segment rule language (services/segment/RULES.md).",
          examples=[RULE_EXAMPLE]),
]


# The predictive goals of the segment service (services/segment/predict.py); growth has two models.
PredictiveGoal = Literal["retention", "growth", "growth_new_category", "activation", "acquisition"]
MAX_TOP_K = 1_000_000_000


class ModelAudienceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"goal": "retention", "top_k": 500}]})

    goal: PredictiveGoal = Field(description="Whose current model scores the customers.")
    top_k: int | None = Field(default=None, ge=1, le=MAX_TOP_K, description="The K highest scores.")
    threshold: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                    description="Every score (a probability) at or above this.")

    @model_validator(mode="after")
    def _one_cut(self) -> ModelAudienceIn:
        if (self.top_k is None) == (self.threshold is None):
            raise ValueError("give exactly one of top_k and threshold")
        return self


class ModelAudienceOut(BaseModel):
    goal: str
    top_k: int | None
    threshold: float | None


class SegmentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "big-spenders", "rule": RULE_EXAMPLE,
                 "description": "Recent customers who spent over 1,000, or ordered 5 times"},
                {"name": "likely-to-lapse", "model": {"goal": "retention", "top_k": 500},
                 "description": "The 500 active customers most likely not to buy in the next 90 days"},
            ]
        },
    )

    name: SegmentName = Field(json_schema_extra={"pattern": SEGMENT_NAME_PATTERN})
    rule: RuleText | None = None
    model: ModelAudienceIn | None = Field(
        default=None, description="Instead of a rule: the customers a goal's current model scores highest.")
    description: Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_CHARS, strip_whitespace=True)] = ""

    @model_validator(mode="after")
    def _rule_or_model(self) -> SegmentIn:
        if (self.rule is None) == (self.model is None):
            raise ValueError("give exactly one of rule and model")
        return self


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"rule": RULE_EXAMPLE}]})

    rule: RuleText


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"rule": 'lifecycle in ("at_risk", "dormant")', "sample_size": 5}]},
    )

    rule: RuleText
    sample_size: int = Field(default=10, ge=1, le=MAX_PREVIEW_SAMPLE, description="Customer ids to return.")


class RuleProblemOut(BaseModel):
    line: int = Field(description="1-based line of the rule text the problem is about.")
    column: int = Field(description="1-based column.")
    message: str


class RuleCheckOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"valid": True, "traits": ["frequency", "monetary", "recency_days"],
                                         "segments": []}]}
    )

    valid: Literal[True] = Field(description="Always true: a rule with problems is answered with 422.")
    traits: list[str] = Field(description="Traits the rule reads, sorted.")
    segments: list[str] = Field(description="Segments the rule reads through in_segment(), sorted.")


class PreviewOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"count": 1203, "portraits": 4338, "sample": ["12347", "12352", "12415"]}]}
    )

    count: int = Field(description="Customers the rule selects now.")
    portraits: int = Field(description="Portraits evaluated.")
    sample: list[str] = Field(description="A reproducible random sample of the selected customer ids, sorted.")


class SegmentVersionOut(BaseModel):
    version: int = Field(description="1, 2, 3 ... per segment; a version never changes once written.")
    size: int = Field(description="Members.")
    portraits: int = Field(description="Portraits evaluated.")
    seconds: float = Field(description="Time to evaluate the rule and store the members.")
    created_at: datetime | None
    rule: str = Field(description="The rule as evaluated; for a model audience, the model and cut it used.")
    model_version: int | None = Field(default=None, description="The model version a model audience was scored with.")


class RefreshOut(SegmentVersionOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "big-spenders", "version": 3, "size": 1203, "portraits": 4338,
                                         "seconds": 0.042, "created_at": "2011-12-10T09:00:00Z",
                                         "rule": RULE_EXAMPLE}]}
    )

    name: str


class SegmentOut(BaseModel):
    name: str
    kind: str | None = Field(description='"rule": members are the customers the rule selects; "model": those a '
                                         "goal's model scores highest.")
    rule: str
    model: ModelAudienceOut | None = Field(default=None, description='The model audience (kind "model").')
    description: str
    built_in: bool = Field(description="Created by the service (the RFM segments); cannot be replaced.")
    created_at: datetime | None
    current: SegmentVersionOut | None = Field(description="The newest version; null before the first refresh.")


class SegmentDetailOut(SegmentOut):
    versions: list[SegmentVersionOut] = Field(description="Every retained version, newest first.")


class SegmentsOut(BaseModel):
    segments: list[SegmentOut]


class MembersOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "big-spenders", "version": 3,
                                         "customer_ids": ["12347", "12352"], "next_cursor": "2"}]}
    )

    name: str
    version: int = Field(description="The version read (the current one when 0 was asked for).")
    customer_ids: list[str]
    scores: list[float] | None = Field(default=None, description="A model audience's scores, one per customer id.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null after the last one.")


class CustomerSegmentOut(BaseModel):
    name: str
    version: int = Field(description="The segment's current version, which holds the customer.")


class CustomerSegmentsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_id": "17850",
                                         "segments": [{"name": "rfm_champions", "version": 4}]}]}
    )

    customer_id: str
    segments: list[CustomerSegmentOut]


class SyncOut(BaseModel):
    received: int = Field(description="Portraits received from profile in this sync.")
    portraits: int = Field(description="Portraits in the segment service's cache afterwards.")
    seconds: float


# ---- predictive models (served by the segment service) ----

class TrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"horizon_days": 90}]})

    seed_segment: SegmentName | None = Field(
        default=None, description="acquisition only: the segment whose members to look like (default: the top 20% "
                                  "by net spend).")
    horizon_days: int | None = Field(default=None, ge=7, le=365,
                                     description="Label window in days (default 90; not for acquisition).")


class ModelQualityOut(BaseModel):
    auc: float | None = Field(description="Held-out area under the ROC curve; null when the held-out set has one class.")
    auc_se: float | None = Field(description="Its standard error (Hanley & McNeil).")
    top_decile_lift: float | None = Field(description="Positive rate of the top 10% by score over the base rate.")
    base_rate: float | None = Field(description="Positive rate of the held-out set.")
    positives: int
    held_out: int = Field(description="Held-out customers.")
    better_than_chance: bool = Field(description="AUC >= 0.55 with its 95% lower bound above 0.5; false: the "
                                                 "model is no better than chance.")


class PredictiveModelOut(BaseModel):
    goal: str
    version: int
    current: bool = Field(description="The goal's newest version, which model audiences are scored with.")
    trained_at: datetime | None
    horizon_days: int = Field(description="Label window in days; 0 for acquisition.")
    seed_segment: str | None = Field(description="acquisition: the seed segment; null for the default seed.")
    seed_version: int | None
    quality: ModelQualityOut
    evaluation: str = Field(description="How the held-out set was chosen.")
    lines: int = Field(description="Order and refund lines the training read.")
    customers: int = Field(description="Customers with any of them.")
    train_size: int = Field(description="Rows the model was fitted on.")
    train_base_rate: float
    fit_seconds: float
    seconds: float = Field(description="Training time in all: reading interactions, features, fit, evaluation.")
    features: list[str]
    parameters: dict[str, Any] = Field(description="The estimator and its parameters.")


class PredictiveModelsOut(BaseModel):
    models: list[PredictiveModelOut] = Field(description="Each trained goal's current model.")
    untrained_goals: list[str]


class PredictiveModelDetailOut(BaseModel):
    goal: str
    current: PredictiveModelOut
    versions: list[PredictiveModelOut] = Field(description="Every retained version, newest first.")
