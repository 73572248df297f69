"""HTTP bodies of pricing: a quote request and answer, a saved rule-set version (JSON, documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.gateway.pricing_rules import RULE_SET_EXAMPLE, RuleSetIn, Sku
from services.gateway.schemas import (
    CURRENCY_PATTERN,
    MAX_MINOR,
    MAX_QUANTITY,
    AwareDatetime,
    Id,
    Minor,
    PaymentChannelName,
    SalesChannelName,
    Text,
)

MAX_QUOTE_LINES = 200

QUOTE_EXAMPLE: dict[str, Any] = {
    "customer_id": "14646",
    "currency": "GBP",
    "sales_channel": "app",
    "payment_channel": "alipay",
    "lines": [
        {"sku": "85123A", "list_price_minor": 295, "quantity": 6, "cost_price_minor": 120, "category": "Home"},
        {"sku": "22423", "list_price_minor": 1275, "quantity": 2, "category": "Kitchen"},
    ],
}


class QuoteLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: Sku
    list_price_minor: Minor = Field(description="Unit list price in minor units.")
    quantity: int = Field(default=1, gt=0, le=MAX_QUANTITY)
    cost_price_minor: Minor | None = Field(default=None, description="Unit cost: the line never goes below it.")
    category: Text | None = None

    @model_validator(mode="after")
    def _line_total(self) -> Any:
        if self.list_price_minor * self.quantity > MAX_MINOR:
            raise ValueError(f"list_price_minor x quantity must be at most {MAX_MINOR}")
        return self


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True,
                              json_schema_extra={"examples": [QUOTE_EXAMPLE]})

    customer_id: Id | None = Field(default=None, description="Omit (or null) for an anonymous shopper.")
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] = Field(
        description="Must be the rule set's currency.")
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=MAX_QUOTE_LINES)
    sales_channel: SalesChannelName
    payment_channel: PaymentChannelName | None = None
    at: AwareDatetime | None = Field(default=None, description="The moment priced; defaults to now.")


class AppliedOut(BaseModel):
    rule_id: str
    kind: str
    name: str
    rule_set_version: int
    amount_minor: int = Field(description="The discount this rule gave, minor units.")
    reason: str = Field(examples=["VIP gold: spend 5,230.00 GBP in the last 365 days >= 5,000.00; 5% off"])


class NotAppliedOut(BaseModel):
    rule_id: str
    kind: str
    name: str
    reason: str = Field(examples=["paying by bank_card (applies to wechat_pay, alipay)"])


class PricedLineOut(BaseModel):
    index: int
    sku: str
    quantity: int
    unit_list_price_minor: int
    list_minor: int = Field(description="Unit list price x quantity.")
    floor_minor: int = Field(description="The line never goes below this (cost price or the rule set's floor).")
    final_minor: int
    discount_minor: int
    discounts: list[AppliedOut] = Field(description="In the order applied.")
    not_applied: list[NotAppliedOut] = Field(description="Rules eligible for the quote that this line did not get.")


class QuoteOut(BaseModel):
    quote_id: str
    created_at: datetime
    expires_at: datetime
    expired: bool
    rule_set_version: int
    customer_id: str | None
    currency: str
    sales_channel: SalesChannelName
    payment_channel: PaymentChannelName | None
    at: datetime = Field(description="The moment priced.")
    list_minor: int
    final_minor: int
    discount_minor: int
    discounts: list[AppliedOut] = Field(description="Each rule's discount over the whole quote, in stacking order.")
    not_applied: list[NotAppliedOut] = Field(description="Rules that gave nothing, each with why.")
    lines: list[PricedLineOut]
    degraded: bool = Field(description="True when some customer data could not be read in time: rules that need "
                                       "it were not applied (they say so) and `unavailable` names the upstream.")
    unavailable: dict[str, str] = Field(description="Upstream -> why it could not answer.")
    request: QuotedOut = Field(description="What was priced, cost prices and categories included.")


class QuotedOut(BaseModel):
    lines: list[QuoteLineIn]


class RuleSetOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"version": 3, "created_at": "2011-12-10T00:00:00Z", "rule_set": RULE_SET_EXAMPLE}]})

    version: int = Field(description="1, 2, 3 ...; a version never changes once saved.")
    created_at: datetime
    rule_set: RuleSetIn
