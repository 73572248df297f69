"""Ingest counters: every refusal the validator can give maps to a named code; counts land in the registry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from services.profile import ingest_metrics
from services.profile.domain import Event, EventType, Line
from services.profile.store import IngestOutcome, Status
from services.profile.validation import event_problem

NOW = datetime(2011, 12, 10, tzinfo=UTC)
GOOD = Event("e1", EventType.ORDER, datetime(2011, 12, 1, tzinfo=UTC), customer_id="c1", currency="GBP",
             lines=(Line("A", 1, 100, 100),))


@pytest.mark.parametrize(("change", "code"), [
    ({"event_id": "has space"}, "event_id"),
    ({"customer_id": "a/b"}, "customer_id"),
    ({"customer_id": "", "anonymous_id": "x y"}, "anonymous_id"),
    ({"customer_id": ""}, "identity_missing"),
    ({"occurred_at": datetime(3000, 1, 1, tzinfo=UTC)}, "occurred_at"),
    ({"occurred_at": datetime(1990, 1, 1, tzinfo=UTC)}, "occurred_at"),
    ({"currency": "pounds"}, "currency"),
    ({"lines": (Line("A", 1, 100, 100),) * 2001}, "too_many_lines"),
    ({"lines": (Line("A", 0, 100, 100),)}, "line"),
    ({"lines": ()}, "order_incomplete"),
    ({"currency": ""}, "order_incomplete"),
    ({"order_id": "bad id"}, "order_id"),
    ({"type": EventType.REFUND, "lines": ()}, "refund_incomplete"),
    ({"type": EventType.REFUND, "currency": ""}, "refund_incomplete"),
    ({"type": EventType.VIEW, "lines": ()}, "item_missing"),
    ({"type": EventType.ADD_TO_CART, "lines": ()}, "item_missing"),
    ({"type": EventType.SEARCH}, "search_incomplete"),
])
def test_each_validation_message_has_its_code(change: dict[str, object], code: str) -> None:
    problem = event_problem(dataclasses.replace(GOOD, **change), NOW)  # type: ignore[arg-type]
    assert problem is not None
    assert ingest_metrics.reason_code(problem) == code, problem


@pytest.mark.parametrize(("message", "code"), [
    ("type is missing or unknown; expected one of: view, order", "type"),
    ("occurred_at is required", "occurred_at"),
    ("sales_channel is unknown", "sales_channel"),
    ("payment_channel is unknown", "payment_channel"),
    ("customer was erased; upsert the customer again to re-use the id", "erased_customer"),
    ("something nobody wrote yet", "other"),
])
def test_servicer_and_store_messages(message: str, code: str) -> None:
    assert ingest_metrics.reason_code(message) == code
    assert code in ingest_metrics.REASONS


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_count_adds_results_and_reasons() -> None:
    before = (value("marksman_profile_events_total", result="accepted"),
              value("marksman_profile_events_total", result="rejected"),
              value("marksman_profile_event_rejections_total", reason="currency"))
    ingest_metrics.count([
        IngestOutcome(0, "a", Status.ACCEPTED), IngestOutcome(1, "b", Status.ACCEPTED),
        IngestOutcome(2, "c", Status.REJECTED, "currency must be an ISO 4217 code such as GBP"),
        IngestOutcome(3, "d", Status.DUPLICATE),
    ])
    after = (value("marksman_profile_events_total", result="accepted"),
             value("marksman_profile_events_total", result="rejected"),
             value("marksman_profile_event_rejections_total", reason="currency"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]
