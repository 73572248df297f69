"""Campaign protos <-> domain values (specs, campaigns, partners, deliveries)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2

from services.campaign import spec as specs
from services.campaign.states import State
from services.campaign.store import CampaignInfo, Counts, DeliveryInfo, PartnerInfo
from services.common import protoenums as pe
from services.common.errors import InvalidArgument

# (number -> lower-case name, name -> number) of each enum ("CHANNEL_EMAIL" <-> "email").
GOALS = pe.tables(pb.Goal)
CHANNELS = pe.tables(pb.Channel)
STATES = pe.tables(pb.CampaignState)
MODES = pe.tables(pb.PartnerMode)
DELIVERY_STATES = pe.tables(pb.DeliveryState)


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def dt(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


def spec_from_proto(message: pb.CampaignSpec) -> specs.Spec:
    """The domain spec; enum values and times are read here, everything else is checked by specs.check."""
    routes = tuple(specs.Route(CHANNELS[0].get(r.channel, f"#{r.channel}"), r.partner, r.cost_per_contact_minor)
                   for r in message.channels)
    budget = None
    currency = message.currency
    if message.HasField("budget"):
        budget = message.budget.amount_minor
        if message.budget.currency and message.budget.currency != currency:
            raise InvalidArgument(f"budget.currency {message.budget.currency!r} differs from currency {currency!r}")
    quiet = None
    if message.HasField("quiet_hours"):
        quiet = specs.QuietHours(specs.parse_hh_mm(message.quiet_hours.start, "quiet_hours.start"),
                                 specs.parse_hh_mm(message.quiet_hours.end, "quiet_hours.end"))
    offer = specs.Offer(message.offer.code, dt(message.offer.expires_at) if message.offer.HasField("expires_at")
                        else None, message.offer.description)
    return specs.Spec(
        name=message.name, goal=GOALS[0].get(message.goal, ""), goal_description=message.goal_description,
        segment=message.segment, routes=routes, template=message.template, subject=message.subject,
        offer=offer, currency=currency, budget_minor=budget, holdout_percent=message.holdout_percent,
        cap=specs.Cap(message.frequency_cap.max_messages, message.frequency_cap.per_days)
        if message.HasField("frequency_cap") else None,
        quiet=quiet, start_at=dt(message.start_at) if message.HasField("start_at") else None,
        recommended_items=message.recommended_items or specs.DEFAULT_RECOMMENDED,
        attribution_days=message.attribution_days or specs.DEFAULT_ATTRIBUTION_DAYS,
    )


def spec_to_proto(spec: specs.Spec) -> pb.CampaignSpec:
    message = pb.CampaignSpec(
        name=spec.name, goal=GOALS[1].get(spec.goal, 0), goal_description=spec.goal_description,  # type: ignore[arg-type]
        segment=spec.segment, template=spec.template, subject=spec.subject, currency=spec.currency,
        holdout_percent=spec.holdout_percent, recommended_items=spec.recommended_items,
        attribution_days=spec.attribution_days,
        channels=[pb.ChannelRoute(channel=CHANNELS[1][r.channel], partner=r.partner,  # type: ignore[arg-type]
                                  cost_per_contact_minor=r.cost_minor) for r in spec.routes],
        offer=pb.Offer(code=spec.offer.code, expires_at=ts(spec.offer.expires_at), description=spec.offer.description),
        start_at=ts(spec.start_at),
    )
    if spec.budget_minor is not None:
        message.budget.CopyFrom(common_pb2.Money(amount_minor=spec.budget_minor, currency=spec.currency))
    if spec.cap is not None:
        message.frequency_cap.CopyFrom(pb.FrequencyCap(max_messages=spec.cap.max_messages, per_days=spec.cap.per_days))
    if spec.quiet is not None:
        message.quiet_hours.CopyFrom(pb.QuietHours(start=spec.quiet.start.strftime("%H:%M"),
                                                   end=spec.quiet.end.strftime("%H:%M")))
    return message


def origin_channels_from_proto(rules: pb.ChannelRules) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The launch's channel map as the spec keeps it; InvalidArgument naming each bad entry."""
    found = tuple((pe.to_name(pe.SALES_CHANNEL, o.sales_channel) or f"#{o.sales_channel}",
                   tuple(CHANNELS[0].get(c, f"#{c}") for c in o.channels)) for o in rules.origins)
    problems = specs.origin_problems(found)
    if problems:
        raise InvalidArgument("; ".join(problems))
    return found


def channel_rules_to_proto(spec: specs.Spec) -> pb.ChannelRules:
    return pb.ChannelRules(rule_set_version=spec.channel_rules_version, origins=[
        pb.OriginChannels(sales_channel=pe.to_number(pe.SALES_CHANNEL, origin) or 0,  # type: ignore[arg-type]
                          channels=[CHANNELS[1][c] for c in channels])  # type: ignore[misc]
        for origin, channels in spec.origin_channels])


def counts_to_proto(counts: Counts) -> pb.CampaignCounts:
    return pb.CampaignCounts(**{name: getattr(counts, name) for name in counts.__slots__})


def campaign_to_proto(info: CampaignInfo) -> pb.Campaign:
    return pb.Campaign(
        id=info.id, spec=spec_to_proto(info.spec), state=STATES[1][info.state.value],  # type: ignore[arg-type]
        audience_version=info.audience_version,
        spent=common_pb2.Money(amount_minor=info.spent_minor, currency=info.spec.currency),
        created_at=ts(info.created_at), launched_at=ts(info.launched_at), finished_at=ts(info.finished_at),
        counts=counts_to_proto(info.counts) if info.counts is not None else None,
        channel_rules=channel_rules_to_proto(info.spec),
    )


def state_from_proto(number: int) -> State | None:
    name = STATES[0].get(number)
    return State(name) if name else None


def partner_to_proto(info: PartnerInfo) -> pb.Partner:
    return pb.Partner(name=info.name, endpoint=info.endpoint, rate_limit_per_s=info.rate_limit_per_s,
                      batch_size=info.batch_size, mode=MODES[1][info.mode],  # type: ignore[arg-type]
                      channel=CHANNELS[1][info.channel], created_at=ts(info.created_at))  # type: ignore[arg-type]


def delivery_to_proto(info: DeliveryInfo) -> pb.Delivery:
    return pb.Delivery(
        id=info.id, campaign_id=info.campaign_id, customer_id=info.customer_id, idempotency_key=info.key,
        state=DELIVERY_STATES[1][info.state], channel=CHANNELS[1].get(info.channel, 0),  # type: ignore[arg-type]
        partner=info.partner, attempts=info.attempts, reason=info.reason, next_attempt_at=ts(info.next_attempt_at),
        sent_at=ts(info.sent_at), delivered_at=ts(info.delivered_at), opened_at=ts(info.opened_at),
        clicked_at=ts(info.clicked_at), unsubscribed_at=ts(info.unsubscribed_at), cost_minor=info.cost_minor,
    )
