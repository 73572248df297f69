"""A campaign's definition (CampaignSpec): its values, their checks, and its JSON form in the database."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, time
from typing import Any

import orjson

from services.campaign.template import TemplateError, parse
from services.common.clock import parse_instant
from services.common.errors import InvalidArgument

GOALS = ("retention", "growth", "activation", "acquisition", "custom")
CHANNELS = ("sms", "email", "push", "webhook", "ads")
SALES_CHANNELS = ("web", "app", "mini_program", "marketplace", "partner")
PARTNER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SEGMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MAX_NAME = 128
DEFAULT_RECOMMENDED = 3
DEFAULT_ATTRIBUTION_DAYS = 7


@dataclass(frozen=True, slots=True)
class Route:
    """One channel in fallback order, the partner carrying it and what one contact costs."""

    channel: str
    partner: str
    cost_minor: int = 0


@dataclass(frozen=True, slots=True)
class Offer:
    code: str = ""
    expires_at: datetime | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class Cap:
    max_messages: int
    per_days: int


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local clock times; start > end means the window crosses midnight."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Spec:
    name: str
    goal: str
    segment: str
    routes: tuple[Route, ...]
    template: str
    goal_description: str = ""
    subject: str = ""
    offer: Offer = field(default_factory=Offer)
    currency: str = ""
    # None: no budget limit.
    budget_minor: int | None = None
    holdout_percent: float = 0.0
    cap: Cap | None = None
    quiet: QuietHours | None = None
    start_at: datetime | None = None
    recommended_items: int = DEFAULT_RECOMMENDED
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS
    # Attached at launch from the gateway's rule set (never by create or update): origin sales channel ->
    # the campaign channels that may reach its customers; an origin not listed is unrestricted.
    origin_channels: tuple[tuple[str, tuple[str, ...]], ...] = ()
    channel_rules_version: int = 0

    def route_for(self, channel: str) -> Route | None:
        return next((r for r in self.routes if r.channel == channel), None)

    def allowed_channels(self, origin: str) -> frozenset[str] | None:
        """The channels that may reach a customer from `origin`; None: any."""
        for sales_channel, channels in self.origin_channels:
            if sales_channel == origin:
                return frozenset(channels)
        return None


def problems(spec: Spec) -> list[str]:
    """Every problem of the spec, each naming its field (empty when it can be stored)."""
    found: list[str] = []
    if not spec.name.strip() or len(spec.name) > MAX_NAME:
        found.append(f"name must be 1-{MAX_NAME} characters")
    if spec.goal not in GOALS:
        found.append(f"goal {spec.goal!r} is unknown; expected one of: {', '.join(GOALS)}")
    if spec.goal == "custom" and not spec.goal_description.strip():
        found.append("goal_description is required for a custom goal")
    if not SEGMENT_NAME.fullmatch(spec.segment):
        found.append("segment must name a segment (letters, digits, _ . -; at most 64)")
    found += _route_problems(spec)
    for name, text in (("template", spec.template), ("subject", spec.subject)):
        try:
            parse(text)
        except TemplateError as error:
            found.append(f"{name}: {error}")
    if not spec.template.strip():
        found.append("template is empty")
    needs_currency = spec.budget_minor is not None or any(r.cost_minor for r in spec.routes)
    if needs_currency and not CURRENCY.fullmatch(spec.currency):
        found.append("currency must be an ISO 4217 code (e.g. GBP) when a budget or a cost is set")
    elif spec.currency and not CURRENCY.fullmatch(spec.currency):
        found.append("currency must be an ISO 4217 code (e.g. GBP)")
    if spec.budget_minor is not None and spec.budget_minor <= 0:
        found.append("budget must be positive (leave it out for no limit)")
    if not 0.0 <= spec.holdout_percent <= 100.0:
        found.append(f"holdout_percent must be within 0-100, not {spec.holdout_percent}")
    if spec.cap is not None and (not 1 <= spec.cap.max_messages <= 1000 or not 1 <= spec.cap.per_days <= 365):
        found.append("frequency_cap needs max_messages 1-1000 and per_days 1-365")
    if spec.quiet is not None and spec.quiet.start == spec.quiet.end:
        found.append("quiet_hours start and end must differ")
    if not 1 <= spec.recommended_items <= 10:
        found.append("recommended_items must be 1-10")
    if not 1 <= spec.attribution_days <= 90:
        found.append("attribution_days must be 1-90")
    return found


def origin_problems(origin_channels: tuple[tuple[str, tuple[str, ...]], ...]) -> list[str]:
    """Problems of a channel map attached at launch, each naming its entry."""
    found: list[str] = []
    seen: set[str] = set()
    for i, (origin, channels) in enumerate(origin_channels):
        if origin not in SALES_CHANNELS:
            found.append(f"channel_rules.origins[{i}].sales_channel {origin!r} is unknown; expected one of: "
                         f"{', '.join(SALES_CHANNELS)}")
        elif origin in seen:
            found.append(f"channel_rules.origins[{i}]: sales channel {origin} is listed twice")
        seen.add(origin)
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            found.append(f"channel_rules.origins[{i}].channels: unknown {', '.join(unknown)}")
    return found


def _route_problems(spec: Spec) -> list[str]:
    if not spec.routes:
        return ["channels: at least one channel with its partner is required"]
    found: list[str] = []
    seen: set[str] = set()
    for i, route in enumerate(spec.routes):
        if route.channel not in CHANNELS:
            found.append(f"channels[{i}].channel {route.channel!r} is unknown; expected one of: {', '.join(CHANNELS)}")
        elif route.channel in seen:
            found.append(f"channels[{i}]: channel {route.channel} is listed twice")
        seen.add(route.channel)
        if not PARTNER_NAME.fullmatch(route.partner):
            found.append(f"channels[{i}].partner must name a registered partner")
        if route.cost_minor < 0:
            found.append(f"channels[{i}].cost_per_contact_minor must not be negative")
    return found


def check(spec: Spec) -> Spec:
    """The spec, or InvalidArgument listing every problem."""
    found = problems(spec)
    if found:
        raise InvalidArgument("; ".join(found))
    return spec


def parse_hh_mm(text: str, name: str) -> time:
    match = HH_MM.fullmatch(text.strip())
    if match is None:
        raise InvalidArgument(f"{name} must be a local time HH:MM (00:00-23:59), not {text!r}")
    return time(int(match.group(1)), int(match.group(2)))


def to_json(spec: Spec) -> str:
    return orjson.dumps(asdict(spec), default=_encode).decode()


def _encode(value: Any) -> str:
    if isinstance(value, datetime | time):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def from_json(text: str) -> Spec:
    raw = orjson.loads(text)
    offer = raw["offer"]
    return Spec(
        name=raw["name"], goal=raw["goal"], segment=raw["segment"],
        routes=tuple(Route(**r) for r in raw["routes"]), template=raw["template"],
        goal_description=raw["goal_description"], subject=raw["subject"],
        offer=Offer(offer["code"], _instant(offer["expires_at"]), offer["description"]),
        currency=raw["currency"], budget_minor=raw["budget_minor"], holdout_percent=raw["holdout_percent"],
        cap=Cap(**raw["cap"]) if raw["cap"] else None,
        quiet=QuietHours(time.fromisoformat(raw["quiet"]["start"]), time.fromisoformat(raw["quiet"]["end"]))
        if raw["quiet"] else None,
        start_at=_instant(raw["start_at"]), recommended_items=raw["recommended_items"],
        attribution_days=raw["attribution_days"],
        origin_channels=tuple((origin, tuple(channels)) for origin, channels in raw.get("origin_channels", ())),
        channel_rules_version=raw.get("channel_rules_version", 0),
    )


def _instant(value: str | None) -> datetime | None:
    return parse_instant(value) if value else None
