"""Attribution: which orders count as responses to a campaign, for its targeted and its holdout customers alike.

The rule (the same for both groups, so the uplift compares like with like):
- a customer's window opens when their message was sent; a targeted customer who was never sent one
  (skipped, failed, still pending) and every holdout customer are measured from the launch, so the
  targeted group is compared as assigned (intention to treat), not only the reachable part of it;
- the window is [opens, opens + window): an order at the very instant counts, one at the end does not;
- a customer responds at most once per campaign: their first order in the window, with its revenue.
  The response rate is then a proportion of customers, which the uplift's confidence interval needs,
  and a loyal customer's whole week of habitual orders is not credited to the message;
- only orders in the campaign's currency count (the others are returned as a count, never converted).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.clock import as_utc


@dataclass(frozen=True, slots=True)
class Recipient:
    """One customer of a campaign, as its delivery row records them."""

    customer_id: str
    holdout: bool
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    # What the message cost (0 when not sent), in the campaign's currency.
    cost_minor: int = 0


@dataclass(frozen=True, slots=True)
class Order:
    """One order event of a customer (from profile's order events); revenue is what they paid."""

    customer_id: str
    order_id: str
    occurred_at: datetime
    revenue_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Response:
    """A customer's first order in their window."""

    customer_id: str
    holdout: bool
    order_id: str
    occurred_at: datetime
    revenue_minor: int


@dataclass(frozen=True, slots=True)
class Attribution:
    responses: list[Response]
    # Orders of campaign customers in their window but in another currency: not counted.
    other_currency_orders: int


def window_opens(recipient: Recipient, launched_at: datetime) -> datetime:
    """Sent: when it was sent; otherwise (holdout, skipped, failed, pending): the launch."""
    if recipient.holdout or recipient.sent_at is None:
        return as_utc(launched_at)
    return as_utc(recipient.sent_at)


def attribute(recipients: Iterable[Recipient], orders: Iterable[Order], *, launched_at: datetime,
              window: timedelta, currency: str) -> Attribution:
    """The responses of a campaign's customers, in customer order of first appearance among `recipients`."""
    if window <= timedelta(0):
        raise ValueError(f"the attribution window must be positive; got {window}")
    opens: dict[str, tuple[Recipient, datetime]] = {}
    for recipient in recipients:
        if recipient.customer_id in opens:
            raise ValueError(f"customer {recipient.customer_id!r} appears twice among the recipients")
        opens[recipient.customer_id] = (recipient, window_opens(recipient, launched_at))
    first: dict[str, Order] = {}
    other_currency = 0
    for order in orders:
        if order.revenue_minor < 0:
            raise ValueError(f"order {order.order_id!r} has negative revenue {order.revenue_minor}")
        entry = opens.get(order.customer_id)
        if entry is None:
            continue
        start = entry[1]
        at = as_utc(order.occurred_at)
        if not start <= at < start + window:
            continue
        if order.currency != currency:
            other_currency += 1
            continue
        best = first.get(order.customer_id)
        # Earliest first; the order id breaks a tie so the answer never depends on input order.
        if best is None or (at, order.order_id) < (as_utc(best.occurred_at), best.order_id):
            first[order.customer_id] = order
    responses = [Response(customer_id, recipient.holdout, hit.order_id, as_utc(hit.occurred_at), hit.revenue_minor)
                 for customer_id, (recipient, _) in opens.items() if (hit := first.get(customer_id)) is not None]
    return Attribution(responses, other_currency)
