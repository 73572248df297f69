"""The receiver's ledger: validates a batch message by message and records each idempotency key once."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

MAX_MESSAGES = 5000
CHANNELS = ("sms", "email", "push", "webhook", "ads")
DUPLICATE_REASON = "already received"
# Reasons in the partner's words for the fields a sender most often gets wrong.
_FIELD_REASONS = {
    "to": "missing recipient address",
    "idempotency_key": "missing idempotency key",
    "campaign_id": "missing campaign id",
}


@with_config(ConfigDict(extra="allow"))
class MessageIn(TypedDict):
    """One message of a batch (FORMAT.md); other fields are kept as sent."""

    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)]
    channel: Literal["sms", "email", "push", "webhook", "ads"]
    to: Annotated[str, Field(min_length=1, max_length=2000)]
    body: str
    # The campaign service numbers its campaigns; other senders may name them.
    campaign_id: Annotated[str, Field(min_length=1)] | Annotated[int, Field(strict=True, ge=0)]


# One pass over the whole list when every message is valid; its errors name the bad positions otherwise.
MESSAGES = TypeAdapter(list[MessageIn])


class BadBatch(ValueError):
    """The request is not a batch at all (400) or too large (413); nothing is recorded."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Counters:
    requests: int = 0
    received: int = 0
    new: int = 0
    duplicates: int = 0
    rejected: int = 0
    unauthorized: int = 0
    bad_requests: int = 0
    failed_injected: int = 0


@dataclass
class Record:
    """An accepted message as sent, when it first arrived, and how many times its key arrived."""

    message: dict[str, Any]
    received_at: float
    deliveries: int = 1


def _reason(error: dict[str, Any]) -> str:
    loc = error["loc"][1:]
    name = str(loc[0]) if loc else ""
    if name in _FIELD_REASONS and error["type"] in ("missing", "string_too_short"):
        return _FIELD_REASONS[name]
    if not loc:
        return "a message must be a JSON object"
    return f"{name}: {error['msg']}"


def message_reasons(messages: list[Any]) -> dict[int, str]:
    """Position -> why that message is refused (the first problem found); empty when all are valid."""
    try:
        MESSAGES.validate_python(messages)
    except ValidationError as error:
        reasons: dict[int, str] = {}
        for problem in error.errors(include_url=False, include_input=False):
            reasons.setdefault(int(problem["loc"][0]), _reason(dict(problem)))
        return reasons
    return {}


def parse_batch(document: Any) -> list[Any]:
    """The message list of a decoded body, or BadBatch."""
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise BadBatch(400, 'the body must be a JSON object {"messages": [...]}')
    messages: list[Any] = document["messages"]
    if len(messages) > MAX_MESSAGES:
        raise BadBatch(413, f"a batch holds at most {MAX_MESSAGES} messages; got {len(messages)}")
    return messages


@dataclass
class Ledger:
    """Every accepted key once, in arrival order; the caller serialises calls (one event loop)."""

    clock: Callable[[], float] = time.time
    records: dict[str, Record] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)

    def take(self, messages: list[Any]) -> list[dict[str, str]]:
        """One result per message, in order: accepted (recorded now), duplicate, or rejected with a reason."""
        reasons = message_reasons(messages)
        now = self.clock()
        results: list[dict[str, str]] = []
        counters = self.counters
        counters.received += len(messages)
        for index, message in enumerate(messages):
            reason = reasons.get(index)
            if reason is not None:
                key = message.get("idempotency_key") if isinstance(message, dict) else None
                results.append({"idempotency_key": key if isinstance(key, str) else "",
                                "status": "rejected", "reason": reason})
                counters.rejected += 1
                continue
            key = message["idempotency_key"]
            record = self.records.get(key)
            if record is None:
                self.records[key] = Record(message, now)
                results.append({"idempotency_key": key, "status": "accepted", "reason": ""})
                counters.new += 1
            else:
                record.deliveries += 1
                results.append({"idempotency_key": key, "status": "duplicate", "reason": DUPLICATE_REASON})
                counters.duplicates += 1
        return results

    def listing(self, campaign_id: str | None = None, offset: int = 0, limit: int | None = None
                ) -> list[dict[str, Any]]:
        """Accepted messages in arrival order, each with received_at and deliveries."""
        chosen = (r for r in self.records.values() if campaign_id is None or str(r.message["campaign_id"]) == campaign_id)
        rows = [{**r.message, "received_at": r.received_at, "deliveries": r.deliveries} for r in chosen]
        return rows[offset:] if limit is None else rows[offset:offset + limit]
