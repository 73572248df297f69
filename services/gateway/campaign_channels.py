"""The rule set's campaign channels by origin sales channel, as attached to a campaign at launch (and shown back)."""

from __future__ import annotations

from marksman.campaign.v1 import campaign_pb2 as pb
from pydantic import BaseModel, Field

from services.common import protoenums as pe
from services.gateway.store import PricingStore


class ChannelRulesOut(BaseModel):
    rule_set_version: int | None = Field(description="The pricing rule-set version frozen at launch; null before "
                                                     "launch or when none was saved.")
    origins: dict[str, list[str]] = Field(
        description="Origin sales channel -> the campaign channels that may reach its customers (others: any).",
        examples=[{"marketplace": ["email", "push"]}])


def launch_rules(store: PricingStore) -> pb.ChannelRules:
    """The current rule set's map for LaunchCampaign; empty when there is no rule set."""
    rule_set = store.current_rule_set()
    if rule_set is None:
        return pb.ChannelRules()
    return pb.ChannelRules(rule_set_version=rule_set.version, origins=[
        pb.OriginChannels(sales_channel=pe.to_number(pe.SALES_CHANNEL, origin) or 0,  # type: ignore[arg-type]
                          channels=[pb.Channel.Value(f"CHANNEL_{c.upper()}") for c in channels])
        for origin, channels in rule_set.spec.channel_rules.campaign_map().items()])


def channel_rules_out(rules: pb.ChannelRules) -> ChannelRulesOut:
    return ChannelRulesOut(
        rule_set_version=rules.rule_set_version or None,
        origins={pe.to_name(pe.SALES_CHANNEL, o.sales_channel) or "": [
            pb.Channel.Name(c).removeprefix("CHANNEL_").lower() for c in o.channels] for o in rules.origins})
