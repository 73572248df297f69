"""The receiver's HTTP API in process: auth, per-message results, dedup, stats, listing, faults."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.partner_sample import signing
from services.partner_sample.app import create_app
from services.partner_sample.faults import Faults

SECRET = "partner-secret"
NOW = 1_733_788_800.0


def message(key: str, **fields: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "channel": "email", "to": f"{key}@example.com", "body": "Hi",
            "campaign_id": "c1", **fields}


class Clock:
    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def client(clock: Clock, faults: Faults) -> TestClient:
    return TestClient(create_app(SECRET, faults=faults, clock=clock))


def post(client: TestClient, messages: list[Any] | None = None, *, body: bytes | None = None,
         timestamp: float = NOW, secret: str = SECRET) -> Any:
    raw = body if body is not None else orjson.dumps({"messages": messages})
    return client.post("/messages", content=raw, headers=signing.headers(secret, int(timestamp), raw))


def stats(client: TestClient) -> dict[str, int]:
    result: dict[str, int] = client.get("/stats").json()
    return result


def test_signed_batch_is_accepted_and_listed(client: TestClient) -> None:
    answer = post(client, [message("a"), message("b", customer_id="cust-2")])
    assert answer.status_code == 200
    assert answer.json() == {"results": [
        {"idempotency_key": "a", "status": "accepted", "reason": ""},
        {"idempotency_key": "b", "status": "accepted", "reason": ""}]}
    listed = client.get("/messages").json()["messages"]
    assert [m["idempotency_key"] for m in listed] == ["a", "b"]
    assert listed[1]["customer_id"] == "cust-2" and listed[1]["deliveries"] == 1
    assert listed[0]["received_at"] == NOW
    assert stats(client) == {"requests": 1, "received": 2, "new": 2, "duplicates": 0, "rejected": 0,
                             "unauthorized": 0, "bad_requests": 0, "failed_injected": 0}


@pytest.mark.parametrize(("timestamp", "secret", "reason"), [
    (NOW, "wrong", "does not match"),
    (NOW - 301, SECRET, "limit 300 s"),
    (NOW + 400, SECRET, "limit 300 s"),
])
def test_bad_or_expired_signature_is_401_with_reason_and_records_nothing(
        client: TestClient, timestamp: float, secret: str, reason: str) -> None:
    answer = post(client, [message("a")], timestamp=timestamp, secret=secret)
    assert answer.status_code == 401
    assert reason in answer.json()["detail"]
    assert client.get("/messages").json() == {"messages": []}
    assert stats(client)["unauthorized"] == 1 and stats(client)["received"] == 0


def test_unsigned_request_is_401(client: TestClient) -> None:
    answer = client.post("/messages", json={"messages": [message("a")]})
    assert answer.status_code == 401
    assert "missing X-Marksman-Timestamp" in answer.json()["detail"]


def test_timestamp_within_skew_passes(client: TestClient) -> None:
    assert post(client, [message("a")], timestamp=NOW - 299).status_code == 200


def test_each_key_is_new_once_retries_and_repeats_are_duplicates(client: TestClient) -> None:
    post(client, [message("a"), message("b")])
    answer = post(client, [message("b"), message("c"), message("c")]).json()["results"]
    assert [(r["idempotency_key"], r["status"]) for r in answer] == [
        ("b", "duplicate"), ("c", "accepted"), ("c", "duplicate")]
    assert answer[0]["reason"] == "already received"
    assert stats(client)["new"] == 3 and stats(client)["duplicates"] == 2 and stats(client)["received"] == 5
    deliveries = {m["idempotency_key"]: m["deliveries"] for m in client.get("/messages").json()["messages"]}
    assert deliveries == {"a": 1, "b": 2, "c": 2}


def test_one_bad_message_is_rejected_with_reason_and_the_good_ones_kept(client: TestClient) -> None:
    batch: list[Any] = [
        message("ok1"),
        {k: v for k, v in message("no-to").items() if k != "to"},
        message("empty-to", to=""),
        message("bad-channel", channel="fax"),
        {"channel": "sms", "to": "+44", "body": "", "campaign_id": "c1"},
        "not an object",
        message("ok2"),
    ]
    results = post(client, batch).json()["results"]
    assert [(r["idempotency_key"], r["status"]) for r in results] == [
        ("ok1", "accepted"), ("no-to", "rejected"), ("empty-to", "rejected"), ("bad-channel", "rejected"),
        ("", "rejected"), ("", "rejected"), ("ok2", "accepted")]
    assert results[1]["reason"] == "missing recipient address"
    assert results[2]["reason"] == "missing recipient address"
    assert results[3]["reason"].startswith("channel: ")
    assert results[4]["reason"] == "missing idempotency key"
    assert results[5]["reason"] == "a message must be a JSON object"
    assert stats(client)["rejected"] == 5
    # A rejected key is not recorded: fixed, it is accepted as new.
    assert post(client, [message("no-to")]).json()["results"][0]["status"] == "accepted"


def test_malformed_or_oversized_batches_are_refused_whole(client: TestClient) -> None:
    assert post(client, body=b"{not json").status_code == 400
    answer = post(client, body=b'{"items": []}')
    assert answer.status_code == 400 and "messages" in answer.json()["detail"]
    too_many = post(client, [message(f"k{i}") for i in range(5001)])
    assert too_many.status_code == 413 and "5000" in too_many.json()["detail"]
    assert stats(client)["bad_requests"] == 3 and client.get("/messages").json() == {"messages": []}


def test_listing_filters_by_campaign_and_pages(client: TestClient) -> None:
    post(client, [message("a"), message("b", campaign_id=2), message("c")])
    assert [m["idempotency_key"] for m in client.get("/messages?campaign_id=c1").json()["messages"]] == ["a", "c"]
    assert [m["idempotency_key"] for m in client.get("/messages?campaign_id=2").json()["messages"]] == ["b"]
    assert [m["idempotency_key"] for m in client.get("/messages?offset=1&limit=1").json()["messages"]] == ["b"]
    assert client.get("/messages?limit=0").status_code == 422


def test_fail_first_n_answers_the_status_without_recording(client: TestClient, faults: Faults) -> None:
    faults.set(fail_next=2, fail_status=503)
    assert post(client, [message("a")]).status_code == 503
    assert post(client, [message("a")]).status_code == 503
    assert post(client, [message("a")]).json()["results"][0]["status"] == "accepted"
    assert stats(client)["failed_injected"] == 2 and stats(client)["new"] == 1


def test_fail_window_ends_and_faults_are_settable_over_http(client: TestClient) -> None:
    assert client.post("/faults", json={"fail_for_s": 0.2, "fail_status": 500}).status_code == 200
    assert post(client, [message("a")]).status_code == 500
    time.sleep(0.25)
    assert post(client, [message("a")]).status_code == 200
    assert client.post("/faults", json={"fail_status": 200}).status_code == 422
    assert client.post("/faults", json={"bogus": 1}).status_code == 422


def test_slow_answers_come_after_recording_and_stop_after_n(client: TestClient, faults: Faults) -> None:
    faults.set(delay_ms=300, delay_next=1)
    started = time.monotonic()
    assert post(client, [message("slow")]).json()["results"][0]["status"] == "accepted"
    assert time.monotonic() - started >= 0.3
    # Only the next one was slow; the answer held was for a batch already taken.
    started = time.monotonic()
    assert post(client, [message("slow")]).json()["results"][0]["status"] == "duplicate"
    assert time.monotonic() - started < 0.3
    assert faults.delay_ms == 0
