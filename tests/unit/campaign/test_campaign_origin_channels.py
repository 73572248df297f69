"""Campaign channels by the customer's origin sales channel: the map frozen at launch, the fallback to the next
allowed channel, the skip with its reason (real dispatch, fake profile and segment over gRPC, real HTTP partner)."""

from __future__ import annotations

import pytest
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2

from services.campaign import convert, policy
from services.campaign.policy import Contact
from services.campaign.spec import Route
from services.campaign.states import State
from services.common.errors import FailedPrecondition, InvalidArgument
from tests.unit.campaign.campaign_data import spec
from tests.unit.campaign.campaign_fakes import customer
from tests.unit.campaign.test_campaign_dispatch import World, receiver, upstreams, world  # noqa: F401 (fixtures)

EMAIL_THEN_SMS = (Route("email", "mailer", 0), Route("sms", "texter", 0))
ORIGINS = (("marketplace", ("email",)), ("partner", ()))


def test_choose_skips_forbidden_channels_and_falls_back_to_the_next_allowed() -> None:
    both = Contact("c", email="c@example.com", phone="+44", consents={"email": True, "sms": True})
    assert policy.choose(EMAIL_THEN_SMS, both, frozenset({"sms"})).route == EMAIL_THEN_SMS[1]
    assert policy.choose(EMAIL_THEN_SMS, both, None).route == EMAIL_THEN_SMS[0]
    forbidden = policy.choose(EMAIL_THEN_SMS, both, frozenset())
    assert forbidden.route is None and forbidden.reason == policy.SKIP_ORIGIN_CHANNEL
    # An allowed channel without consent is a consent skip, not an origin one.
    sms_only = Contact("c", phone="+44", consents={"email": False, "sms": True})
    assert policy.choose(EMAIL_THEN_SMS, sms_only, frozenset({"email"})).reason == policy.SKIP_NO_CONSENT


def test_the_launch_map_is_checked_and_kept_with_the_spec() -> None:
    rules = pb.ChannelRules(rule_set_version=4, origins=[
        pb.OriginChannels(sales_channel=common_pb2.SALES_CHANNEL_MARKETPLACE, channels=[pb.CHANNEL_EMAIL]),
        pb.OriginChannels(sales_channel=common_pb2.SALES_CHANNEL_PARTNER)])
    assert convert.origin_channels_from_proto(rules) == ORIGINS
    with pytest.raises(InvalidArgument, match="sales_channel '#0' is unknown"):
        convert.origin_channels_from_proto(pb.ChannelRules(origins=[pb.OriginChannels(channels=[pb.CHANNEL_SMS])]))
    twice = pb.ChannelRules(origins=[pb.OriginChannels(sales_channel=common_pb2.SALES_CHANNEL_WEB)] * 2)
    with pytest.raises(InvalidArgument, match="sales channel web is listed twice"):
        convert.origin_channels_from_proto(twice)


def test_dispatch_skips_or_falls_back_by_origin_and_records_why(world: World) -> None:  # noqa: F811
    world.profile.customers.update({cid: customer(cid, email=True, sms=True)
                                    for cid in ("market", "partner", "web", "unknown")})
    world.profile.sales_channels.update({"market": "marketplace", "partner": "partner", "web": "web"})
    world.segment.members["vips"] = ["market", "partner", "web", "unknown"]
    # SMS first; marketplace customers may only get email, partner customers nothing.
    created = world.campaigns.create(spec(segment="vips", routes=tuple(reversed(EMAIL_THEN_SMS))))
    launched = world.campaigns.launch(created.id, ORIGINS, 4)
    assert launched.spec.origin_channels == ORIGINS and launched.spec.channel_rules_version == 4
    world.drain()
    by_customer = {m["customer_id"]: m["channel"] for m in world.receiver.messages(str(created.id))}
    assert by_customer == {"market": "email", "web": "sms", "unknown": "sms"}
    reasons = {d.customer_id: (d.state, d.reason) for d in world.store.deliveries(created.id, None, 0, 10)}
    assert reasons["partner"] == ("skipped", policy.SKIP_ORIGIN_CHANNEL)
    assert world.profile.asked_sales_channels and all(world.profile.asked_sales_channels)
    # Frozen: what the campaign answers keeps the map, and a launched campaign cannot be changed.
    stored = convert.campaign_to_proto(world.store.get_campaign(created.id))
    assert stored.channel_rules.rule_set_version == 4 and len(stored.channel_rules.origins) == 2
    assert world.store.get_campaign(created.id).state in (State.RUNNING, State.COMPLETED)
    with pytest.raises(FailedPrecondition):
        world.campaigns.update(created.id, spec(segment="vips"))


def test_without_a_map_profile_is_not_asked_for_sales_channels(world: World) -> None:  # noqa: F811
    world.profile.customers["a"] = customer("a")
    world.segment.members["vips"] = ["a"]
    created = world.campaigns.create(spec(segment="vips"))
    world.campaigns.launch(created.id)
    world.drain()
    assert world.profile.asked_sales_channels == [False]
    assert convert.campaign_to_proto(world.store.get_campaign(created.id)).channel_rules.origins == []
