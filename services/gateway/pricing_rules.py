"""The pricing rule set's schema (pydantic): every rule kind, checked when saved, with messages that say what is wrong."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.gateway.channel_rules import CHANNEL_RULES_EXAMPLE, ChannelRules
from services.gateway.schemas import (
    CURRENCY_PATTERN,
    SEGMENT_NAME_PATTERN,
    AwareDatetime,
    Minor,
    PaymentChannelName,
    SalesChannelName,
    SegmentName,
    Text,
)

BP = 10_000  # basis points in 100%
RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_RULES = 200
MAX_TIERS = 20
MAX_WINDOW_DAYS = 3650
MAX_CHANNEL_PRICES = 10_000
# Portrait traits an offer may test; each is a share between 0 and 1 (services/profile/traits.py).
TRAITS = ("price_sensitivity", "purchasing_power", "brand_loyalty", "category_loyalty")
TraitName = Literal["price_sensitivity", "purchasing_power", "brand_loyalty", "category_loyalty"]


def _basis_points(value: int) -> int:
    if value < 0:
        raise ValueError(f"a discount cannot be negative; got {value} basis points")
    if value > BP:
        raise ValueError(f"a discount cannot exceed 100% ({BP} basis points); got {value}")
    return value


# pydantic's own ge/le would say "greater than or equal to 0"; these say what a discount may be.
Discount = Annotated[
    int,
    AfterValidator(_basis_points),
    Field(description="Basis points: 100 = 1%, 10000 = 100%.", json_schema_extra={"minimum": 0, "maximum": BP}),
]
RuleId = Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN),
                   Field(description="1-64 lower-case letters, digits, '_' or '-'; the name quotes and "
                                     "redemptions use, so keep it across versions for the same offer.")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleBase(Strict):
    """What every rule has: its id and label, where it sits in the stacking order, where and when it applies."""

    id: RuleId
    name: Label = Field(description="Shown in every reason, e.g. 'VIP' or 'Pay with Alipay'.")
    priority: int = Field(default=100, ge=0, le=BP, description="Lower numbers apply first; ties by id.")
    exclusive: bool = Field(
        default=False,
        description="An exclusive rule applies alone: only when no rule applied before it on the line, "
                    "and no rule after it applies on that line.",
    )
    sales_channels: list[SalesChannelName] | None = Field(
        default=None, min_length=1, description="The channels the rule applies on; null: every channel.")
    categories: list[Text] | None = Field(
        default=None, min_length=1, description="Lines of these categories only; null: every line.")
    starts_at: AwareDatetime | None = Field(default=None, description="From this instant (inclusive).")
    ends_at: AwareDatetime | None = Field(default=None, description="Until this instant (exclusive).")

    @field_validator("starts_at", "ends_at", mode="after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # datetime.UTC compares at C speed; pydantic's parsed zone calls back into Python on every comparison.
        return value.astimezone(UTC) if value is not None else None

    @model_validator(mode="after")
    def _window(self) -> Any:
        if self.starts_at is not None and self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError(f"rule '{self.id}': ends_at ({self.ends_at.isoformat()}) must be after starts_at "
                             f"({self.starts_at.isoformat()})")
        return self


class Tier(Strict):
    name: Label
    min: int = Field(ge=0, le=10**15, description="The threshold (inclusive): spend in minor units, or orders.")
    discount_bp: Discount


class VipTiersRule(RuleBase):
    """VIP tiers by trailing spend (net of refunds) or order count; the highest tier reached wins."""

    kind: Literal["vip_tiers"]
    basis: Literal["spend", "orders"]
    window_days: int = Field(ge=1, le=MAX_WINDOW_DAYS, description="The trailing window, in days before the quote.")
    tiers: list[Tier] = Field(min_length=1, max_length=MAX_TIERS, description="Ascending thresholds.")

    @model_validator(mode="after")
    def _ascending(self) -> Any:
        for lower, upper in zip(self.tiers, self.tiers[1:], strict=False):
            if upper.min <= lower.min:
                raise ValueError(f"rule '{self.id}': tiers overlap or are out of order: '{upper.name}' starts at "
                                 f"{upper.min}, not above '{lower.name}' at {lower.min}; list tiers by ascending min")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"rule '{self.id}': tier names must differ; got {names}")
        return self


class TraitCondition(Strict):
    trait: TraitName = Field(description="A portrait trait between 0 and 1.")
    at_least: float | None = Field(default=None, ge=0, le=1)
    at_most: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _bounds(self) -> Any:
        if self.at_least is None and self.at_most is None:
            raise ValueError(f"a trait condition needs at_least or at_most (or both) for '{self.trait}'")
        if self.at_least is not None and self.at_most is not None and self.at_most < self.at_least:
            raise ValueError(f"at_most ({self.at_most}) is below at_least ({self.at_least}) for '{self.trait}'")
        return self


class SegmentCondition(Strict):
    segment: SegmentName = Field(json_schema_extra={"pattern": SEGMENT_NAME_PATTERN},
                                 description="Members of the segment's current version qualify.")


class OfferRule(RuleBase):
    """A limited-time offer for customers meeting a condition, with a per-customer use limit and a total budget."""

    kind: Literal["offer"]
    condition: TraitCondition | SegmentCondition
    discount_bp: Discount
    starts_at: AwareDatetime = Field(description="From this instant (inclusive).")
    ends_at: AwareDatetime = Field(description="Until this instant (exclusive).")
    per_customer_limit: int | None = Field(default=None, ge=1, le=10**6,
                                           description="Redeemed quotes per customer; null: no limit.")
    budget_minor: int | None = Field(default=None, ge=1, le=10**15,
                                     description="Total discount over all redemptions, minor units; null: none.")


class PaymentRule(RuleBase):
    """A discount for paying through given payment channels."""

    kind: Literal["payment"]
    payment_channels: list[PaymentChannelName] = Field(min_length=1)
    discount_bp: Discount


class ChannelPriceRule(RuleBase):
    """Prices of some SKUs on some sales channels only (never above list: a higher one is not applied)."""

    kind: Literal["channel_price"]
    sales_channels: list[SalesChannelName] = Field(min_length=1)
    prices: dict[Sku, Minor] = Field(min_length=1, max_length=MAX_CHANNEL_PRICES,
                                     description="SKU -> unit price in minor units on those channels.")


Rule = Annotated[VipTiersRule | OfferRule | PaymentRule | ChannelPriceRule, Field(discriminator="kind")]

RULE_SET_EXAMPLE: dict[str, Any] = {
    "currency": "GBP",
    "max_total_discount_bp": 3000,
    "floor_bp": 5000,
    "rules": [
        {"id": "vip", "kind": "vip_tiers", "name": "VIP", "priority": 10, "basis": "spend", "window_days": 365,
         "tiers": [{"name": "silver", "min": 100_000, "discount_bp": 200},
                   {"name": "gold", "min": 500_000, "discount_bp": 500}]},
        {"id": "deal-hunters-dec", "kind": "offer", "name": "December offer", "priority": 20,
         "condition": {"trait": "price_sensitivity", "at_least": 0.6}, "discount_bp": 1000,
         "starts_at": "2011-12-01T00:00:00Z", "ends_at": "2012-01-01T00:00:00Z",
         "per_customer_limit": 2, "budget_minor": 5_000_000},
        {"id": "wallets", "kind": "payment", "name": "Pay by wallet", "priority": 30,
         "payment_channels": ["wechat_pay", "alipay"], "discount_bp": 200},
    ],
    "channel_rules": CHANNEL_RULES_EXAMPLE,
}


class RuleSetIn(Strict):
    """A whole rule set; saving it makes a new version (versions never change)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [RULE_SET_EXAMPLE]})

    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)] = Field(
        description="ISO 4217; quotes must be in it, and spend thresholds are in its minor units.")
    max_total_discount_bp: Discount = Field(default=BP, description="Most a line may be discounted, of its list price.")
    floor_bp: Discount = Field(default=0, description="A line never goes below this share of its list price.")
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)
    channel_rules: ChannelRules = Field(
        default_factory=ChannelRules,
        description="Per sales channel: recommendation filters and the campaign channels that may reach its "
                    "customers; rate limits per API key.")

    @model_validator(mode="after")
    def _unique_ids(self) -> Any:
        counts = Counter(r.id for r in self.rules)
        repeated = sorted(rule_id for rule_id, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(repeated)}")
        return self


@dataclass(frozen=True)
class RuleSet:
    """A saved version: the rules in stacking order (priority, then id), as the engine walks them."""

    version: int
    spec: RuleSetIn
    created_at: datetime
    ordered: tuple[Any, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ordered", tuple(sorted(self.spec.rules, key=lambda r: (r.priority, r.id))))

    def window_days(self, rules: Iterable[Any] | None = None) -> list[int]:
        """The trailing windows the VIP rules read, ascending."""
        return sorted({r.window_days for r in (rules if rules is not None else self.ordered)
                       if isinstance(r, VipTiersRule)})
