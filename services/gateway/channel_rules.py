"""The rule set's channel section (pydantic): recommendation filters and campaign channels per sales channel,
rate limits per API key, checked when saved, and the lookups the routes make of a saved version."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.gateway.schemas import Text

SALES_CHANNELS = ("web", "app", "mini_program", "marketplace", "partner")
# The campaign service's channels (services/campaign/spec.py CHANNELS).
CAMPAIGN_CHANNELS = ("sms", "email", "push", "webhook", "ads")
PARTNER_ID = r"[a-z0-9][a-z0-9_-]{0,63}"
CHANNEL_KEY = re.compile(rf"^(web|app|mini_program|marketplace|partner(:{PARTNER_ID})?)$")
CHANNEL_KEY_PATTERN = CHANNEL_KEY.pattern
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
MAX_CHANNELS = 200
MAX_KEYS = 1000
MAX_VALUES = 100
MAX_RATE = 100_000
MAX_BURST = 1_000_000
DEFAULT_CHANNEL = "web"


class Strict(BaseModel):
    # As the pricing rules' base (pricing_rules imports this module, so it cannot be imported from there).
    model_config = ConfigDict(extra="forbid", frozen=True)


def _channel_key(value: str) -> str:
    if not CHANNEL_KEY.fullmatch(value):
        raise ValueError(f"unknown sales channel {value!r}: expected one of {', '.join(SALES_CHANNELS)} "
                         "or partner:<id> (id: lower-case letters, digits, '_' or '-')")
    return value


ChannelKey = Annotated[str, AfterValidator(_channel_key),
                       Field(description="web, app, mini_program, marketplace, partner, or partner:<id> for one "
                                         "partner (it takes precedence over 'partner').",
                             json_schema_extra={"pattern": CHANNEL_KEY_PATTERN}, examples=["marketplace"])]
CampaignChannel = Literal["sms", "email", "push", "webhook", "ads"]
Brand = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Category = Annotated[Text, StringConstraints(min_length=1)]
KeyName = Annotated[str, StringConstraints(pattern=KEY_NAME_PATTERN)]


class RecommendationFilters(Strict):
    """Filters added on top of the caller's for recommendations asked on the channel (recommend's Filters)."""

    only_in_stock: bool = Field(default=False, description="Only items in stock.")
    categories: list[Category] | None = Field(
        default=None, min_length=1, max_length=MAX_VALUES,
        description="Only these categories (intersected with the caller's); null: any.")
    exclude_categories: list[Category] = Field(default_factory=list, max_length=MAX_VALUES,
                                               description="Never these categories.")
    brands: list[Brand] | None = Field(
        default=None, min_length=1, max_length=MAX_VALUES,
        description="Only items of these brands (e.g. the own brands on a marketplace); null: any.")
    exclude_brands: list[Brand] = Field(default_factory=list, max_length=MAX_VALUES,
                                        description="Never items of these brands.")

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        for kind, wanted, unwanted in (("categories", self.categories, self.exclude_categories),
                                       ("brands", self.brands, self.exclude_brands)):
            both = sorted(set(wanted or ()) & set(unwanted))
            if both:
                raise ValueError(f"{kind} both required and excluded: {', '.join(both)}")
        return self


class ChannelRule(Strict):
    """What applies to a customer on (or from) one sales channel."""

    recommendations: RecommendationFilters = Field(default_factory=RecommendationFilters)
    campaign_channels: list[CampaignChannel] | None = Field(
        default=None, max_length=len(CAMPAIGN_CHANNELS),
        description="The campaign channels that may reach a customer who came from this sales channel, in any "
                    "order (the campaign's own fallback order is kept); null: every channel; []: none.")

    @model_validator(mode="after")
    def _unique(self) -> Any:
        if self.campaign_channels is not None and len(set(self.campaign_channels)) != len(self.campaign_channels):
            raise ValueError(f"campaign_channels lists a channel twice: {self.campaign_channels}")
        return self


class RateLimit(Strict):
    """A sustained rate and a burst: at most `burst` requests in any one second, and on average at most
    `requests_per_s` over any 10 seconds."""

    requests_per_s: int = Field(ge=1, le=MAX_RATE, description="Sustained requests per second.")
    burst: int = Field(ge=1, le=MAX_BURST, description="Most requests in any one second.")

    @model_validator(mode="after")
    def _burst(self) -> Any:
        if self.burst < self.requests_per_s:
            raise ValueError(f"burst ({self.burst}) must be at least requests_per_s ({self.requests_per_s}): "
                             "it is the most requests allowed in one second")
        return self


class KeyRule(Strict):
    """One API key's settings, by the key's name."""

    sales_channel: ChannelKey | None = Field(default=None, description="The channel its recommendation requests "
                                                                       "are on when they name none; null: web.")
    rate_limit: RateLimit | None = Field(default=None, description="null: the default rate limit.")


class ChannelRules(Strict):
    channels: dict[ChannelKey, ChannelRule] = Field(default_factory=dict, max_length=MAX_CHANNELS)
    rate_limit: RateLimit | None = Field(default=None, description="Per API key, for keys without their own; "
                                                                   "null: no limit.")
    api_keys: dict[KeyName, KeyRule] = Field(default_factory=dict, max_length=MAX_KEYS,
                                             description="By API key name (never the key itself).")

    @model_validator(mode="after")
    def _campaign_keys(self) -> Any:
        # The origin channel dispatch knows is profile's enum, without a partner id.
        bad = sorted(k for k, rule in self.channels.items() if ":" in k and rule.campaign_channels is not None)
        if bad:
            raise ValueError(f"campaign_channels cannot be set on {', '.join(bad)}: a customer's origin channel is "
                             "known without its partner id; set them on 'partner'")
        return self

    def channel(self, name: str) -> tuple[str, ChannelRule] | None:
        """The rule for a channel: partner:<id> falls back to partner; None when the channel has none."""
        found = self.channels.get(name)
        if found is not None:
            return name, found
        if name.startswith("partner:") and "partner" in self.channels:
            return "partner", self.channels["partner"]
        return None

    def key_channel(self, key_name: str) -> str:
        rule = self.api_keys.get(key_name)
        return rule.sales_channel if rule is not None and rule.sales_channel else DEFAULT_CHANNEL

    def key_limit(self, key_name: str) -> tuple[str, RateLimit] | None:
        """(scope, limit): scope is the key's name when it has its own limit, else "default"."""
        rule = self.api_keys.get(key_name)
        if rule is not None and rule.rate_limit is not None:
            return key_name, rule.rate_limit
        return ("default", self.rate_limit) if self.rate_limit is not None else None

    def campaign_map(self) -> dict[str, list[str]]:
        """Sales channel -> allowed campaign channels, for the channels that restrict them."""
        return {k: list(rule.campaign_channels) for k, rule in self.channels.items()
                if rule.campaign_channels is not None}


CHANNEL_RULES_EXAMPLE: dict[str, Any] = {
    "channels": {
        "marketplace": {"recommendations": {"only_in_stock": True, "brands": ["Marksman Home"]},
                        "campaign_channels": ["email", "push"]},
        "partner:acme": {"recommendations": {"exclude_categories": ["Gift wrap"]}},
    },
    "rate_limit": {"requests_per_s": 200, "burst": 400},
    "api_keys": {"acme": {"sales_channel": "partner:acme", "rate_limit": {"requests_per_s": 20, "burst": 40}}},
}
