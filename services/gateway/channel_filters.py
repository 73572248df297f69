"""Recommendation filters of the request's sales channel (current rule set), added on top of the caller's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request
from marksman.recommend.v1 import recommend_pb2 as pb
from pydantic import BaseModel, Field

from services.gateway.channel_rules import CHANNEL_KEY_PATTERN, DEFAULT_CHANNEL, RecommendationFilters
from services.gateway.store import PricingStore

ChannelParam = Annotated[str | None, Query(
    pattern=CHANNEL_KEY_PATTERN, max_length=72,
    description="The sales channel asked on (web, app, mini_program, marketplace, partner or partner:<id>); its "
                "rule in the current rule set adds filters. Default: the API key's channel in the rule set, else web.",
    examples=["marketplace"])]


class ChannelAppliedOut(BaseModel):
    name: str = Field(description="The sales channel of the request.", examples=["marketplace"])
    rule: str | None = Field(description="The channel rule applied (partner:<id> falls back to partner); null: "
                                         "none, only the caller's filters.", examples=["marketplace"])
    rule_set_version: int | None = Field(description="The rule-set version the rule comes from.")
    filters: RecommendationFilters | None = Field(description="The rule's filters, as added to the caller's.")


@dataclass(frozen=True, slots=True)
class Applied:
    channel: str
    rule: str | None = None
    version: int | None = None
    filters: RecommendationFilters | None = None

    def out(self) -> dict[str, Any]:
        return {"name": self.channel, "rule": self.rule, "rule_set_version": self.version,
                "filters": None if self.filters is None else self.filters.model_dump(mode="json")}


def for_request(request: Request, channel: str | None) -> Applied:
    """The channel asked for (else the API key's, else web) and its rule under the current rule set."""
    store: PricingStore = request.app.state.pricing
    rule_set = store.current_rule_set()
    if rule_set is None:
        return Applied(channel or DEFAULT_CHANNEL)
    rules = rule_set.spec.channel_rules
    name = channel or rules.key_channel(getattr(request.state, "api_key_name", ""))
    found = rules.channel(name)
    if found is None:
        return Applied(name, version=rule_set.version)
    return Applied(name, found[0], rule_set.version, found[1].recommendations)


def merged(filters: pb.Filters, applied: Applied) -> pb.Filters | None:
    """The caller's filters narrowed by the channel's; None when the two leave no category at all."""
    rule = applied.filters
    if rule is None:
        return filters
    out = pb.Filters()
    out.CopyFrom(filters)
    out.only_in_stock = filters.only_in_stock or rule.only_in_stock
    if rule.categories is not None:
        wanted = [c for c in rule.categories if not filters.categories_in or c in set(filters.categories_in)]
        if not wanted:
            return None
        out.categories_in[:] = wanted
    out.categories_not_in[:] = _union(filters.categories_not_in, rule.exclude_categories)
    if rule.brands is not None:
        out.brands_in[:] = rule.brands
    out.brands_not_in[:] = _union(filters.brands_not_in, rule.exclude_brands)
    return out


def _union(first: Any, second: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))
