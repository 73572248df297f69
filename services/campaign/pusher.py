"""Push mode: one signed, batched POST to a partner and what it said about each message (PARTNERS.md).

The client is httpx (already the gateway's and the demo's dependency) with one pooled connection per
partner and worker: batching is the lever here. A request carries up to a partner's batch size (500 by
default), so 5,000 messages a second is ten requests a second, far below the ~450 requests a second
DESIGN.md measured for one httpx AsyncClient; aiohttp's higher request rate would buy nothing at
these request counts and would add a dependency and an event loop to the worker threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx
import orjson

from services.campaign.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
# Sent: the partner has it; failed: refused for good; retry: nothing is known, send again later.
SENT, FAILED, RETRY = "sent", "failed", "retry"


class Result(NamedTuple):
    key: str
    outcome: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """A push's outcome: one Result per message, and the error kind when the request as a whole failed."""

    results: list[Result]
    # "" when the partner answered 2xx; else "timeout", "connection", "http_5xx", "http_4xx", "bad_reply".
    error: str = ""


class RateLimiter:
    """At most `rate` messages a second on average, shared by the threads of this process: each batch
    books the time its messages take at that rate, and waits until its slot begins."""

    def __init__(self, rate_per_s: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate_per_s
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep
        self._clock = clock

    def acquire(self, messages: int) -> float:
        """Waits for this batch's slot; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + messages * self.interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return max(0.0, wait)


def encode(messages: Sequence[Mapping[str, Any]]) -> bytes:
    return orjson.dumps({"messages": list(messages)})


def signed_headers(secret: str, body: bytes, wall_time: float | None = None) -> dict[str, str]:
    # The real time of sending, never the business clock (a pinned MARKSMAN_AS_OF would look replayed).
    timestamp = int(wall_time if wall_time is not None else time.time())
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body)}


def interpret(keys: Sequence[str], status: int, content: bytes) -> Reply:
    """Maps the partner's answer to one result per key (a key it did not answer for is retried)."""
    if status >= 500:
        return _all(keys, RETRY, f"partner answered {status}", "http_5xx")
    if status >= 300:
        reason = f"partner answered {status}: {_detail(content)}"
        # 429 and 408 say "later"; any other refusal of the whole request (signature, format) is retried
        # too until the attempts run out: it is usually a configuration to fix, then the queue drains.
        return _all(keys, RETRY, reason, "http_4xx")
    try:
        answers = orjson.loads(content)["results"]
        by_key = {a["idempotency_key"]: a for a in answers if isinstance(a, dict)}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _all(keys, RETRY, "partner answered 2xx without a results list", "bad_reply")
    results = []
    for key in keys:
        answer = by_key.get(key)
        if answer is None:
            results.append(Result(key, RETRY, "partner did not answer for this message"))
        elif answer.get("status") in (ACCEPTED, DUPLICATE):
            results.append(Result(key, SENT))
        elif answer.get("status") == REJECTED:
            results.append(Result(key, FAILED, str(answer.get("reason") or "rejected by the partner")[:500]))
        else:
            results.append(Result(key, RETRY, f"unknown status {answer.get('status')!r} from the partner"))
    return Reply(results)


def _all(keys: Sequence[str], outcome: str, reason: str, error: str) -> Reply:
    return Reply([Result(key, outcome, reason) for key in keys], error)


def _detail(content: bytes) -> str:
    try:
        detail = orjson.loads(content).get("detail", "")
    except (orjson.JSONDecodeError, AttributeError):
        detail = content[:200].decode(errors="replace")
    return str(detail)[:300]


class Pusher:
    """POSTs batches to partners' endpoints over pooled keep-alive connections."""

    def __init__(self, timeout_s: float) -> None:
        self.client = httpx.Client(timeout=httpx.Timeout(timeout_s), limits=httpx.Limits(max_keepalive_connections=32))

    def push(self, endpoint: str, secret: str, messages: Sequence[Mapping[str, Any]]) -> Reply:
        keys = [m["idempotency_key"] for m in messages]
        body = encode(messages)
        try:
            response = self.client.post(endpoint, content=body, headers=signed_headers(secret, body))
        except httpx.TimeoutException:
            return _all(keys, RETRY, "partner did not answer in time", "timeout")
        except httpx.HTTPError as error:
            return _all(keys, RETRY, f"cannot reach the partner: {type(error).__name__}", "connection")
        return interpret(keys, response.status_code, response.content)

    def close(self) -> None:
        self.client.close()
