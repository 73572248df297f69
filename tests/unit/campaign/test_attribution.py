"""Attribution windows: from the send (targeted) or the launch (holdout, unsent), first order, currency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.campaign.attribution import Order, Recipient, attribute, window_opens

LAUNCH = datetime(2011, 11, 1, 9, tzinfo=UTC)
SENT = LAUNCH + timedelta(days=2)
WEEK = timedelta(days=7)


def order(customer: str, at: datetime, revenue: int = 1000, order_id: str = "", currency: str = "GBP") -> Order:
    return Order(customer, order_id or f"{customer}@{at.isoformat()}", at, revenue, currency)


def run(recipients: list[Recipient], orders: list[Order]) -> dict[str, tuple[str, int]]:
    result = attribute(recipients, orders, launched_at=LAUNCH, window=WEEK, currency="GBP")
    return {r.customer_id: (r.order_id, r.revenue_minor) for r in result.responses}


def test_window_opens_at_the_send_for_targeted_and_at_the_launch_otherwise() -> None:
    assert window_opens(Recipient("t", False, SENT), LAUNCH) == SENT
    assert window_opens(Recipient("h", True), LAUNCH) == LAUNCH
    # Never sent (skipped, failed): measured like the holdout, so the groups stay comparable.
    assert window_opens(Recipient("s", False), LAUNCH) == LAUNCH


def test_targeted_window_is_seven_days_from_the_send_start_inclusive_end_exclusive() -> None:
    recipients = [Recipient(c, False, SENT) for c in ("before", "at-start", "last", "at-end")]
    orders = [order("before", SENT - timedelta(seconds=1)), order("at-start", SENT),
              order("last", SENT + WEEK - timedelta(seconds=1)), order("at-end", SENT + WEEK)]
    assert set(run(recipients, orders)) == {"at-start", "last"}


def test_holdout_window_runs_from_the_launch() -> None:
    recipients = [Recipient("h1", True), Recipient("h2", True)]
    orders = [order("h1", LAUNCH + timedelta(days=1)), order("h2", LAUNCH + WEEK + timedelta(hours=1))]
    result = attribute(recipients, orders, launched_at=LAUNCH, window=WEEK, currency="GBP")
    assert [(r.customer_id, r.holdout) for r in result.responses] == [("h1", True)]


def test_an_order_before_the_send_but_after_launch_is_not_a_targeted_response() -> None:
    recipients = [Recipient("t", False, SENT), Recipient("unsent", False)]
    orders = [order("t", LAUNCH + timedelta(days=1)), order("unsent", LAUNCH + timedelta(days=1))]
    assert set(run(recipients, orders)) == {"unsent"}


def test_one_response_per_customer_the_first_order_with_its_revenue() -> None:
    recipients = [Recipient("t", False, SENT)]
    orders = [order("t", SENT + timedelta(days=3), 5000, "late"), order("t", SENT + timedelta(days=1), 700, "first"),
              order("t", SENT + timedelta(days=1), 900, "tie-b"), order("t", SENT + timedelta(days=2), 100, "mid")]
    assert run(recipients, orders) == {"t": ("first", 700)}
    # The same answer whatever the input order (ties broken by order id).
    assert run(recipients, list(reversed(orders))) == {"t": ("first", 700)}


def test_orders_of_others_and_other_currencies_do_not_count() -> None:
    recipients = [Recipient("t", False, SENT)]
    orders = [order("stranger", SENT), order("t", SENT + timedelta(hours=1), currency="EUR"),
              order("t", SENT + timedelta(hours=2), 300)]
    result = attribute(recipients, orders, launched_at=LAUNCH, window=WEEK, currency="GBP")
    assert [(r.customer_id, r.revenue_minor) for r in result.responses] == [("t", 300)]
    assert result.other_currency_orders == 1


def test_times_in_other_zones_compare_as_instants() -> None:
    plus8 = timezone(timedelta(hours=8))
    recipients = [Recipient("t", False, SENT)]
    # 16:59 at +08:00 is 08:59 UTC: one minute before a 09:00 UTC send.
    early = order("t", (SENT - timedelta(minutes=1)).astimezone(plus8))
    assert run(recipients, [early]) == {}
    naive_after = order("t", (SENT + timedelta(minutes=1)).replace(tzinfo=None))
    assert "t" in run(recipients, [naive_after])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        attribute([Recipient("a", False), Recipient("a", True)], [], launched_at=LAUNCH, window=WEEK, currency="GBP")
    with pytest.raises(ValueError, match="negative revenue"):
        attribute([Recipient("a", False)], [order("a", LAUNCH, -1)], launched_at=LAUNCH, window=WEEK, currency="GBP")
    with pytest.raises(ValueError, match="window must be positive"):
        attribute([], [], launched_at=LAUNCH, window=timedelta(0), currency="GBP")
