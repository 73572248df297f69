"""Trailing totals of one customer: net spend and orders per window start (the gateway's VIP tiers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.profile.domain import Event
from services.profile.traits import summarize

MAX_WINDOWS = 16


@dataclass(frozen=True, slots=True)
class WindowTotals:
    since: datetime
    net_spend_minor: int
    orders: int
    currency: str


def window_totals(
    customer_id: str, events: Sequence[Event], since: Sequence[datetime], until: datetime | None = None
) -> list[WindowTotals]:
    """Per window start, the portrait's monetary and frequency over the events in [since, until).

    The same rules as the portrait (traits.summarize), applied to the window's events only: a refund
    in the window takes back its lines' amounts even when the order came before the window, and a
    line-less refund takes back its order's total only when that order is in the window too.
    """
    kept = [e for e in events if until is None or e.occurred_at < until]
    totals = []
    for start in since:
        facts = summarize(customer_id, [e for e in kept if e.occurred_at >= start])
        totals.append(WindowTotals(start, facts.net_spend_minor, facts.frequency, facts.currency))
    return totals
