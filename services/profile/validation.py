"""Checks one event against the rules of the domain; returns the reason it is refused, or None."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from services.common.clock import MAX_FUTURE_SKEW
from services.common.ids import is_valid_id
from services.profile.domain import Event, EventType

CURRENCY = re.compile(r"^[A-Z]{3}$")
# Nothing in e-commerce predates this; older stamps are unit mistakes (seconds vs milliseconds).
EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)
MAX_LINES = 2000  # the gateway's MAX_LINES_PER_EVENT: one order, one event
MAX_QUANTITY = 1_000_000
MAX_MINOR = 10**13
ITEM_EVENTS = (EventType.VIEW, EventType.ADD_TO_CART)


def event_problem(event: Event, now: datetime) -> str | None:
    """Why the event cannot be stored, in words a platform developer can act on; None when it is fine."""
    if not is_valid_id(event.event_id):
        return "event_id must be 1-128 characters of letters, digits and ._:@+=- (no spaces or slashes)"
    if event.customer_id and not is_valid_id(event.customer_id):
        return "customer_id is malformed"
    if event.anonymous_id and not is_valid_id(event.anonymous_id):
        return "anonymous_id is malformed"
    if not event.customer_id and not event.anonymous_id:
        return "customer_id or anonymous_id is required"
    if event.occurred_at > now + MAX_FUTURE_SKEW:
        return f"occurred_at {event.occurred_at.isoformat()} is more than 24 hours ahead of the clock ({now.isoformat()})"
    if event.occurred_at < EARLIEST:
        return f"occurred_at {event.occurred_at.isoformat()} is before {EARLIEST.date()}"
    if event.currency and not CURRENCY.match(event.currency):
        return "currency must be an ISO 4217 code such as GBP"
    if len(event.lines) > MAX_LINES:
        return f"at most {MAX_LINES} lines per event"
    for number, line in enumerate(event.lines, 1):
        problem = _line_problem(line.sku, line.quantity, line.unit_price_minor, line.list_price_minor,
                                line.discount_minor)
        if problem:
            return f"line {number}: {problem}"
    if event.type is EventType.ORDER:
        if not event.lines:
            return "an order needs at least one line"
        if not event.currency:
            return "an order needs a currency"
        if event.order_id and not is_valid_id(event.order_id):
            return "order_id is malformed"
    elif event.type is EventType.REFUND:
        if not event.lines and not event.order_id:
            return "a refund needs its lines or the order_id it reverses"
        if event.lines and not event.currency:
            return "a refund with lines needs a currency"
    elif event.type in ITEM_EVENTS:
        if not event.lines:
            return f"a {event.type.value} event needs the item (a line with its sku)"
    elif event.type is EventType.SEARCH and not event.query.strip():
        return "a search event needs its query"
    return None


def _line_problem(sku: str, quantity: int, unit: int, list_price: int, discount: int) -> str | None:
    if not sku or len(sku) > 64:
        return "sku must be 1-64 characters"
    if quantity <= 0 or quantity > MAX_QUANTITY:
        return f"quantity must be between 1 and {MAX_QUANTITY} (refunds use positive quantities)"
    for name, value in (("unit_price_minor", unit), ("list_price_minor", list_price), ("discount_minor", discount)):
        if value < 0 or value > MAX_MINOR:
            return f"{name} must be between 0 and {MAX_MINOR}"
    if discount > quantity * unit:
        return "discount_minor is larger than the line's amount"
    return None
