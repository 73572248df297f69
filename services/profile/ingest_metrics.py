"""Prometheus counters of ingested events: by result, and rejections by a bounded reason code."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import Counter

from services.profile.store import IngestOutcome, Status

EVENTS = Counter("marksman_profile_events_total", "Events the profile service was sent, by result.", ["result"])
REJECTIONS = Counter(
    "marksman_profile_event_rejections_total",
    "Events refused by the profile service, by reason code (the field or rule at fault).",
    ["reason"],
)
# The reasons name the field or rule first (validation.py, server.event_from_proto, the store's tombstone
# check); the code is that leading phrase, so the label set stays bounded whatever the message says after it.
PREFIXES = (
    ("customer_id or anonymous_id", "identity_missing"),
    ("customer was erased", "erased_customer"),
    ("event_id", "event_id"),
    ("customer_id", "customer_id"),
    ("anonymous_id", "anonymous_id"),
    ("occurred_at", "occurred_at"),
    ("currency", "currency"),
    ("type ", "type"),
    ("sales_channel", "sales_channel"),
    ("payment_channel", "payment_channel"),
    ("order_id", "order_id"),
    ("at most", "too_many_lines"),
    ("line ", "line"),
    ("an order", "order_incomplete"),
    ("a refund", "refund_incomplete"),
    ("a search", "search_incomplete"),
    ("a view", "item_missing"),
    ("a add_to_cart", "item_missing"),
)
OTHER = "other"
REASONS = frozenset(code for _, code in PREFIXES) | {OTHER}


def reason_code(reason: str) -> str:
    """The bounded code of a rejection message; "other" for a message no prefix names."""
    for prefix, code in PREFIXES:
        if reason.startswith(prefix):
            return code
    return OTHER


def count(outcomes: Iterable[IngestOutcome]) -> None:
    results: Tally[str] = Tally()
    reasons: Tally[str] = Tally()
    for outcome in outcomes:
        results[outcome.status] += 1
        if outcome.status == Status.REJECTED:
            reasons[reason_code(outcome.reason)] += 1
    for result, n in results.items():
        EVENTS.labels(result).inc(n)
    for reason, n in reasons.items():
        REJECTIONS.labels(reason).inc(n)
