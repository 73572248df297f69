"""The push client's pieces: signed headers the sample receiver accepts, answers mapped per message, the rate limiter."""

from __future__ import annotations

import orjson
import pytest

from services.campaign.pusher import FAILED, RETRY, SENT, RateLimiter, encode, interpret, signed_headers
from services.campaign.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, key_hash, new_api_key
from services.partner_sample import signing as receiver_signing

KEYS = ["k1", "k2", "k3"]


def test_signature_is_what_the_receiver_checks() -> None:
    body = encode([{"idempotency_key": "k1", "channel": "email", "to": "a@example.com", "body": "Hi Zoë",
                    "campaign_id": "1"}])
    headers = signed_headers("a-secret-of-twenty-chars", body, wall_time=1_733_788_800.7)
    assert headers[TIMESTAMP_HEADER] == "1733788800"
    assert receiver_signing.check("a-secret-of-twenty-chars", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER],
                                  body, now=1_733_788_801) is None
    assert receiver_signing.check("another-secret-of-20c", headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER],
                                  body, now=1_733_788_801) is not None


def test_per_message_results() -> None:
    answer = orjson.dumps({"results": [
        {"idempotency_key": "k1", "status": "accepted", "reason": ""},
        {"idempotency_key": "k2", "status": "duplicate", "reason": "already received"},
        {"idempotency_key": "k3", "status": "rejected", "reason": "missing recipient address"},
    ]})
    reply = interpret(KEYS, 200, answer)
    assert reply.error == ""
    assert [(r.key, r.outcome, r.reason) for r in reply.results] == [
        ("k1", SENT, ""), ("k2", SENT, ""), ("k3", FAILED, "missing recipient address")]


def test_missing_or_odd_answers_are_retried() -> None:
    reply = interpret(KEYS, 200, orjson.dumps({"results": [{"idempotency_key": "k1", "status": "accepted"},
                                                           {"idempotency_key": "k2", "status": "maybe"}]}))
    assert [r.outcome for r in reply.results] == [SENT, RETRY, RETRY]
    assert "did not answer" in reply.results[2].reason
    assert interpret(KEYS, 200, b"<html>").error == "bad_reply"


def test_whole_request_failures_are_retried() -> None:
    for status, kind in ((500, "http_5xx"), (503, "http_5xx"), (429, "http_4xx"), (401, "http_4xx")):
        reply = interpret(KEYS, status, b'{"detail": "bad signature"}')
        assert reply.error == kind and {r.outcome for r in reply.results} == {RETRY}
    assert "bad signature" in interpret(KEYS, 401, b'{"detail": "bad signature"}').results[0].reason


def test_rate_limiter_books_time_per_message() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(100, sleep=sleep, clock=lambda: now[0])
    assert limiter.acquire(50) == 0.0  # the first batch goes at once
    assert limiter.acquire(50) == 0.5  # then 50 messages at 100/s later
    assert limiter.acquire(100) == 0.5
    assert slept == [0.5, 0.5]
    now[0] += 10  # idle time is not saved up into a burst
    assert limiter.acquire(10) == 0.0 and limiter.acquire(10) == pytest.approx(0.1)


def test_api_keys_are_random_and_hashed() -> None:
    first, second = new_api_key(), new_api_key()
    assert first != second and first.startswith("mkp_") and len(first) > 40
    assert key_hash(first) != key_hash(second) and len(key_hash(first)) == 64
