"""An event batch checked event by event: parse, validate each, and merge profile's results back by index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from marksman.profile.v1 import profile_pb2
from pydantic import TypeAdapter, ValidationError

from services.gateway.errors import ApiError
from services.gateway.event_structs import Event, decode_clean, from_validated
from services.gateway.schemas import MAX_BATCH_EVENTS, EventIn

EVENT = TypeAdapter(EventIn)
UPSTREAM_REASON = "upstream"
MAX_ERRORS_SHOWN = 3
_STATUS = {
    profile_pb2.INGEST_STATUS_ACCEPTED: "accepted",
    profile_pb2.INGEST_STATUS_DUPLICATE: "duplicate",
    profile_pb2.INGEST_STATUS_REJECTED: "rejected",
}


@dataclass
class Batch:
    """The request's events: the valid ones (with their positions) and a result slot per event."""

    valid: list[Event] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    results: list[dict[str, Any] | None] = field(default_factory=list)
    # bounded reason label (pydantic error type or "upstream") -> rejected events
    rejections: dict[str, int] = field(default_factory=dict)

    def reject(self, index: int, event_id: str | None, reason: str, label: str) -> None:
        self.results[index] = {"index": index, "event_id": event_id, "status": "rejected", "reason": reason}
        self.rejections[label] = self.rejections.get(label, 0) + 1


def parse(body: bytes) -> list[Any]:
    """The raw event list: 400 for malformed JSON, 422 for another shape, 413 over the batch limit."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(
            400,
            "malformed JSON",
            {"message": error.msg, "line": error.lineno, "column": error.colno, "position": error.pos},
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise ApiError(422, "invalid request", 'the body must be a JSON object {"events": [...]}')
    extra = sorted(set(document) - {"events"})
    if extra:
        raise ApiError(422, "invalid request", f"unknown top-level fields: {', '.join(extra)}")
    events: list[Any] = document["events"]
    if len(events) > MAX_BATCH_EVENTS:
        raise ApiError(
            413,
            "content too large",
            f"a batch holds at most {MAX_BATCH_EVENTS} events; got {len(events)}: split it",
        )
    return events


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(error: ValidationError) -> tuple[str, str]:
    """(a readable reason with field paths, the first error's type as the metric label)."""
    details = error.errors(include_url=False, include_input=False)
    parts = [f"{_location(d['loc'])}: {d['msg']}" if d["loc"] else d["msg"] for d in details[:MAX_ERRORS_SHOWN]]
    if len(details) > MAX_ERRORS_SHOWN:
        parts.append(f"and {len(details) - MAX_ERRORS_SHOWN} more")
    return "; ".join(parts), details[0]["type"] if details else "invalid"


def _event_id(raw: Any) -> str | None:
    value = raw.get("event_id") if isinstance(raw, dict) else None
    return value[:128] if isinstance(value, str) else None


def check(body: bytes) -> Batch:
    """The batch checked event by event, with a fast path for the usual case of no bad event.

    msgspec decodes a clean batch straight from the bytes (event_structs.py). Anything it
    refuses, from a bad event to whitespace pydantic would strip, sends the body down the
    event-by-event pydantic path, which words every error.
    """
    events = decode_clean(body)
    if events is None:
        return validate(parse(body))
    return Batch(valid=events, positions=list(range(len(events))), results=[None] * len(events))


def validate(raw_events: list[Any]) -> Batch:
    """Each event on its own: one bad event never fails the rest."""
    batch = Batch(results=[None] * len(raw_events))
    validate_one = EVENT.validate_python
    for index, raw in enumerate(raw_events):
        try:
            event = validate_one(raw)
        except ValidationError as error:
            reason, label = describe(error)
            batch.reject(index, _event_id(raw), reason, label)
            continue
        batch.valid.append(from_validated(event))  # type: ignore[arg-type]
        batch.positions.append(index)
    return batch


def merge(batch: Batch, response: profile_pb2.IngestEventsResponse | None) -> tuple[int, dict[str, Any]]:
    """Places profile's results (indexed within the sub-batch it got) at the request's positions.

    Returns the HTTP status (200 none rejected, 207 some, 422 all) and the EventsOut body.
    """
    if response is not None:
        positions = batch.positions
        for result in response.results:
            if not 0 <= result.index < len(positions):
                continue
            index = positions[result.index]
            if batch.results[index] is not None:  # a repeated result for the same event
                continue
            outcome = _STATUS.get(result.status, "rejected")
            event_id = result.event_id or batch.valid[result.index].event_id
            if outcome == "rejected":
                batch.reject(index, event_id, result.reason or "rejected by the profile service", UPSTREAM_REASON)
            else:
                batch.results[index] = {"index": index, "event_id": event_id, "status": outcome, "reason": None}
    for index, position in enumerate(batch.positions):
        if batch.results[position] is None:
            batch.reject(
                position, batch.valid[index].event_id, "no result from the profile service; resend it",
                UPSTREAM_REASON,
            )
    results = [r for r in batch.results if r is not None]
    accepted = sum(1 for r in results if r["status"] == "accepted")
    duplicates = sum(1 for r in results if r["status"] == "duplicate")
    rejected = len(results) - accepted - duplicates
    status = 200 if rejected == 0 else (422 if accepted + duplicates == 0 else 207)
    body = {"accepted": accepted, "duplicates": duplicates, "rejected": rejected, "results": results}
    return status, body
