"""The demo campaign pair's pure parts: the event split at the cut-off, the rule against profile's clock, the week
before the cut-off as the estimate's history, and a two-part load's totals."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from services.demo.batches import add_totals
from services.demo.campaigns import past_week, rule_at, split_events


def test_events_split_at_the_cutoff_in_order() -> None:
    events = [{"event_id": "a", "occurred_at": "2011-10-31T23:59:59Z"},
              {"event_id": "b", "occurred_at": "2011-11-01T00:00:00Z"},
              {"event_id": "c", "occurred_at": "2011-01-01T00:00:00Z"}]
    before, after = split_events(events, "2011-11-01T00:00:00Z")
    assert [e["event_id"] for e in before] == ["a", "c"] and [e["event_id"] for e in after] == ["b"]


def test_rule_counts_days_to_profiles_clock() -> None:
    clock, cutoff = datetime(2011, 12, 10, tzinfo=UTC), datetime(2011, 11, 1, tzinfo=UTC)
    # 39 days from the cut-off to the clock: an order after cutoff - 90 days is at most 128 whole days old.
    assert rule_at(clock, cutoff) == "has_orders and recency_days <= 128"
    assert rule_at(cutoff, cutoff, days=30) == "has_orders and recency_days <= 29"


def line(customer: str | None, invoice: str, at: str, quantity: int, price: int, refund: bool = False) -> dict[str, object]:
    return {"CustomerID": customer, "InvoiceNo": invoice, "InvoiceDate": pd.Timestamp(at), "Quantity": quantity,
            "price_minor": price, "is_refund": refund}


def test_past_week_by_hand() -> None:
    frame = pd.DataFrame([
        # In the audience (an order in the 90 days before 2011-10-25) and responding twice: the first order counts.
        line("1", "i1", "2011-10-01 10:00", 2, 500),
        line("1", "i2", "2011-10-26 10:00", 1, 300), line("1", "i2", "2011-10-26 10:00", 1, 700),
        line("1", "i3", "2011-10-27 10:00", 10, 1000),
        # In the audience, no order in the week (a refund is not an order).
        line("2", "i4", "2011-08-01 10:00", 1, 100), line("2", "C5", "2011-10-28 10:00", -1, 100, refund=True),
        # In the audience, responding with 3,000.
        line("3", "i6", "2011-09-01 10:00", 1, 100), line("3", "i7", "2011-10-31 23:00", 3, 1000),
        # Ordering in the week but not in the audience (nothing before), and an order too early for it.
        line("4", "i8", "2011-10-30 10:00", 1, 100), line("5", "i9", "2011-07-01 10:00", 1, 100),
        # On the cut-off: after the week.
        line("2", "i10", "2011-11-01 00:00", 1, 100), line(None, "i11", "2011-10-26 10:00", 1, 100),
    ])
    week = past_week(frame, "2011-11-01T00:00:00Z")
    assert (week.audience, week.responders, week.revenue_per_responder_minor) == (3, 2, 2000)
    assert week.response_rate == 2 / 3


def test_two_part_load_totals() -> None:
    first = {"batches": 2, "accepted": 10, "duplicates": 1, "rejected": 1, "created": 0, "updated": 0,
             "reasons": ["a", "b", "c"]}
    second = {"batches": 1, "accepted": 5, "duplicates": 0, "rejected": 3, "created": 0, "updated": 0,
              "reasons": ["d", "e", "f"]}
    total = add_totals(first, second)
    assert (total["batches"], total["accepted"], total["duplicates"], total["rejected"]) == (3, 15, 1, 4)
    assert total["reasons"] == ["a", "b", "c", "d", "e"]
