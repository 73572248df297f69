"""Send-time rules: the channel a customer gets (consent, contact, fallback order), quiet hours, frequency caps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.campaign.spec import Cap, QuietHours, Route

# The contact consent each channel needs. Webhook and ad partners reach the customer by their id
# (the partner matches it to its own audience), so any marketing consent that is still granted will do.
CONSENT_FOR: Mapping[str, str | None] = {"email": "email", "sms": "sms", "push": "push", "webhook": None, "ads": None}

SKIP_NO_CUSTOMER = "customer_not_found"
SKIP_NO_CONSENT = "no_consent"
SKIP_NO_CONTACT = "no_contact"
SKIP_CAP = "frequency_cap"
SKIP_BUDGET = "budget_spent"
SKIP_CANCELLED = "cancelled"
# Every channel the customer could get is one their origin sales channel forbids (the gateway's channel rules).
SKIP_ORIGIN_CHANNEL = "origin_channel"


@dataclass(frozen=True, slots=True)
class Contact:
    """What dispatch needs of a customer from profile, read at send time (never stored here)."""

    customer_id: str
    name: str = ""
    email: str = ""
    phone: str = ""
    push_token: str = ""
    time_zone: str = ""
    # channel ("email", "sms", "push") -> granted
    consents: Mapping[str, bool] = field(default_factory=dict)
    # The sales channel they came from (their portrait's preferred one: "marketplace"...); "" unknown.
    sales_channel: str = ""

    def address(self, channel: str) -> str:
        return {"email": self.email, "sms": self.phone, "push": self.push_token}.get(channel, self.customer_id)


@dataclass(frozen=True, slots=True)
class Choice:
    route: Route | None
    address: str = ""
    # Why nothing was chosen (a SKIP_* reason) when route is None.
    reason: str = ""


def choose(routes: Sequence[Route], contact: Contact, allowed: frozenset[str] | None = None) -> Choice:
    """The first route in fallback order that `allowed` (None: any) permits, the customer consented to
    and can be reached on."""
    consented = False
    permitted = [r for r in routes if allowed is None or r.channel in allowed]
    if routes and not permitted:
        return Choice(None, reason=SKIP_ORIGIN_CHANNEL)
    for route in permitted:
        needed = CONSENT_FOR.get(route.channel)
        granted = contact.consents.get(needed, False) if needed else any(contact.consents.values())
        if not granted:
            continue
        consented = True
        address = contact.address(route.channel)
        if address:
            return Choice(route, address)
    return Choice(None, reason=SKIP_NO_CONTACT if consented else SKIP_NO_CONSENT)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone; UTC when the name is empty or unknown (profile defaults it from the region)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_until(now: datetime, time_zone: str, quiet: QuietHours | None) -> datetime | None:
    """When the customer's quiet hours end (UTC), if `now` falls inside them in their time zone; else None."""
    if quiet is None:
        return None
    local = now.astimezone(zone(time_zone))
    clock = local.time().replace(tzinfo=None)
    crosses_midnight = quiet.start > quiet.end
    inside = (clock >= quiet.start or clock < quiet.end) if crosses_midnight else quiet.start <= clock < quiet.end
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if crosses_midnight and clock >= quiet.start else local.date()
    end = datetime.combine(day, quiet.end, tzinfo=local.tzinfo)
    return end.astimezone(UTC)


def cap_window_start(now: datetime, cap: Cap) -> datetime:
    return now - timedelta(days=cap.per_days)


def over_cap(sent_in_window: int, cap: Cap | None) -> bool:
    """True when one more message would exceed the cap (messages of every campaign count)."""
    return cap is not None and sent_in_window >= cap.max_messages
