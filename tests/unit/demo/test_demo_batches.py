"""Batch posting to the gateway: slicing, auth header, summing answers, failing loudly."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from services.demo.batches import GatewayError, chunks, post_all


def test_chunks() -> None:
    assert list(chunks([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], 3)) == []
    with pytest.raises(ValueError):
        list(chunks([1], 0))


def recording_client(answer: Any) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.Client(transport=httpx.MockTransport(handler), base_url="http://gateway"), seen


def test_events_are_posted_in_batches_and_summed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        events = orjson.loads(request.content)["events"]
        results = [
            {
                "index": i,
                "event_id": e["event_id"],
                "status": "rejected" if e["bad"] else "accepted",
                "reason": "no lines" if e["bad"] else None,
            }
            for i, e in enumerate(events)
        ]
        rejected = sum(e["bad"] for e in events)
        body = {"accepted": len(events) - rejected, "duplicates": 0, "rejected": rejected, "results": results}
        return httpx.Response(207 if rejected else 200, json=body)

    client, seen = recording_client(answer)
    items = [{"event_id": f"e{i}", "bad": i == 3} for i in range(5)]
    totals = post_all(client, "/v1/events", "secret", "events", items, batch_size=2)
    assert totals["batches"] == 3
    assert (totals["accepted"], totals["duplicates"], totals["rejected"]) == (4, 0, 1)
    assert totals["reasons"] == ["e3: no lines"]
    assert [len(orjson.loads(r.content)["events"]) for r in seen] == [2, 2, 1]
    assert all(r.headers["authorization"] == "Bearer secret" for r in seen)
    assert all(r.headers["content-type"] == "application/json" for r in seen)
    assert all(r.url.path == "/v1/events" for r in seen)


def test_customer_answers_are_counted() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        customers = orjson.loads(request.content)["customers"]
        results = [
            {
                "customer_id": c["customer_id"],
                "ok": c["customer_id"] != "bad",
                "created": c["customer_id"] == "new",
                "error": None if c["customer_id"] != "bad" else "invalid email",
            }
            for c in customers
        ]
        return httpx.Response(200, json={"results": results})

    client, _ = recording_client(answer)
    items = [{"customer_id": cid} for cid in ("new", "old", "bad")]
    totals = post_all(client, "/v1/customers", "k", "customers", items, batch_size=10)
    assert (totals["accepted"], totals["created"], totals["updated"], totals["rejected"]) == (2, 1, 1, 1)
    assert totals["reasons"] == ["bad: invalid email"]


def test_a_refused_batch_raises_with_the_status_and_body() -> None:
    client, _ = recording_client(lambda request: httpx.Response(401, json={"error": "bad key"}))
    with pytest.raises(GatewayError, match=r"batch 1 .*HTTP 401.*bad key"):
        post_all(client, "/v1/events", "wrong", "events", [{"event_id": "e"}], batch_size=10)
