"""Send-time decisions for a claimed batch, without I/O: skip (why), defer (until when), or send (what, where)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.campaign import policy
from services.campaign.policy import Contact
from services.campaign.spec import Spec
from services.campaign.store import Claimed, PartnerInfo, Reserved
from services.campaign.template import parse

PULL = "pull"
QUIET_HOURS = "quiet_hours"


@dataclass
class Plan:
    skipped: dict[int, str] = field(default_factory=dict)
    # id -> (wall time due again, reason)
    deferred: dict[int, tuple[datetime, str]] = field(default_factory=dict)
    reserved: list[Reserved] = field(default_factory=list)
    # id -> the message for a push partner (pull messages travel in Reserved.payload)
    messages: dict[int, dict[str, Any]] = field(default_factory=dict)


def render_values(campaign_name: str, spec: Spec, contact: Contact, items: Sequence[str]) -> dict[str, str]:
    offer = spec.offer
    return {
        "name": contact.name,
        "offer_code": offer.code,
        "offer_expires": offer.expires_at.date().isoformat() if offer.expires_at else "",
        "offer_description": offer.description,
        "recommended_items": ", ".join(items),
        "campaign": campaign_name,
    }


def message(row: Claimed, spec: Spec, channel: str, address: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The push format's message (PARTNERS.md): key, channel, address, subject and body, offer code."""
    return {
        "idempotency_key": row.key,
        "campaign_id": str(row.campaign_id),
        "customer_id": row.customer_id,
        "channel": channel,
        "to": address,
        "subject": parse(spec.subject).render(values) if spec.subject else "",
        "body": parse(spec.template).render(values),
        "offer_code": spec.offer.code,
    }


def plan(
    rows: Sequence[Claimed],
    campaigns: Mapping[int, Spec],
    partners: Mapping[str, PartnerInfo],
    contacts: Mapping[str, Contact | None],
    sent_in_window: Mapping[tuple[int, str], int],
    items: Mapping[str, Sequence[str]],
    business_now: datetime,
    wall_now: datetime,
) -> Plan:
    """Decides each claimed delivery: no customer, consent or contact -> skipped; quiet hours in the
    customer's zone -> deferred to their end; over the frequency cap (`sent_in_window` by campaign and
    customer, counting earlier rows of this batch too) -> skipped; otherwise rendered for its partner.
    A row already deferred for quiet hours is not judged on them again when it comes due."""
    result = Plan()
    planned: dict[str, int] = {}
    for row in rows:
        spec = campaigns[row.campaign_id]
        contact = contacts.get(row.customer_id)
        if contact is None:
            result.skipped[row.id] = policy.SKIP_NO_CUSTOMER
            continue
        choice = policy.choose(spec.routes, contact, spec.allowed_channels(contact.sales_channel))
        if choice.route is None:
            result.skipped[row.id] = choice.reason
            continue
        partner = partners.get(choice.route.partner)
        if partner is None or partner.channel != choice.route.channel:
            result.skipped[row.id] = f"partner {choice.route.partner} for {choice.route.channel} is not registered"
            continue
        # A quiet-hours deferral already moved the row to the window's end, so it goes when due. Judging again
        # would change nothing on a moving clock, and would defer it for ever on a pinned one (MARKSMAN_AS_OF).
        quiet_end = (None if row.reason == QUIET_HOURS
                     else policy.quiet_until(business_now, contact.time_zone, spec.quiet))
        if quiet_end is not None:
            # Quiet hours are in business time; the retry is scheduled on the wall clock the queue runs on.
            result.deferred[row.id] = (wall_now + (quiet_end - business_now), QUIET_HOURS)
            continue
        already = sent_in_window.get((row.campaign_id, row.customer_id), 0) + planned.get(row.customer_id, 0)
        if policy.over_cap(already, spec.cap):
            result.skipped[row.id] = policy.SKIP_CAP
            continue
        planned[row.customer_id] = planned.get(row.customer_id, 0) + 1
        values = render_values(spec.name, spec, contact, items.get(row.customer_id, ()))
        body = message(row, spec, choice.route.channel, choice.address, values)
        payload = orjson.dumps(body).decode() if partner.mode == PULL else None
        result.reserved.append(Reserved(row.id, choice.route.channel, partner.id, choice.route.cost_minor, payload))
        if payload is None:
            result.messages[row.id] = body
    return result
