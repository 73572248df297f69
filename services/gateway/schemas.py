"""The gateway's HTTP request and response bodies (JSON): validated here, converted to protos in convert.py."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Ids are the platform's own strings: printable, no whitespace or slashes, at most 128 characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$"
ID_RE = re.compile(ID_PATTERN)
CURRENCY_PATTERN = r"^[A-Z]{3}$"
MAX_BATCH_EVENTS = 5000
MAX_LINES_PER_EVENT = 500
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
    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class LineIn(Strict):
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(gt=0, le=MAX_QUANTITY)] = 1
    unit_price_minor: Minor = 0
    list_price_minor: Minor = 0
    discount_minor: Minor = 0
    category: Text = ""
    brand: Text = ""


class EventIn(Strict):
    """One event. Orders need lines and a currency; refunds need lines or the order_id they reverse."""

    event_id: Id
    type: EventTypeName
    customer_id: Id | None = None
    anonymous_id: Id | None = None
    occurred_at: AwareDatetime
    sales_channel: SalesChannelName | None = None
    payment_channel: PaymentChannelName | None = None
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] | None = None
    order_id: Id | None = None
    quote_id: Id | None = None
    query: Annotated[str, StringConstraints(max_length=500)] | None = None
    lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES_PER_EVENT)

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
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
        },
    )


class EventsIn(BaseModel):
    """The documented shape of POST /v1/events; the route validates each event on its own."""

    events: list[EventIn] = Field(max_length=MAX_BATCH_EVENTS)


class EventResult(BaseModel):
    index: int
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None


class EventsOut(BaseModel):
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
    results: list[UpsertResultOut]


class MoneyOut(BaseModel):
    amount_minor: int
    currency: str


class ConsentOut(BaseModel):
    channel: ContactChannelName
    granted: bool
    changed_at: datetime | None


class PortraitOut(BaseModel):
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
    customer_id: Id
    anonymous_id: Id


class MergeIdentityOut(BaseModel):
    events_moved: int


class ConsentsIn(Strict):
    consents: list[ConsentIn] = Field(min_length=1, max_length=10)


class ConsentsOut(BaseModel):
    customer_id: str
    consents: list[ConsentOut]


class RecomputeOut(BaseModel):
    customers: int
    seconds: float
    computed_at: datetime | None


class SummaryOut(BaseModel):
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
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    upstreams: dict[str, str] = Field(description='Health of each configured upstream: "SERVING" or why not.')
