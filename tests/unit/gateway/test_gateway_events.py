"""POST /v1/events: per-event validation, index mapping, batch and body limits, event metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
from fastapi.testclient import TestClient
from marksman.profile.v1 import profile_pb2
from prometheus_client import REGISTRY

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import FakeServer, order


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_malformed_json_is_400_with_the_position(client: TestClient, platform: dict[str, str]) -> None:
    response = client.post("/v1/events", content=b'{"events": [ {"event_id": ', headers=platform)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "malformed JSON"
    assert isinstance(body["detail"]["position"], int) and body["detail"]["line"] == 1


def test_a_body_of_another_shape_is_422(client: TestClient, platform: dict[str, str]) -> None:
    documents: list[object] = [[], {"events": {}}, {"event": []}, {"events": [], "extra": 1}, "events"]
    for document in documents:
        response = client.post("/v1/events", content=orjson.dumps(document), headers=platform)
        assert response.status_code == 422, document
        assert response.json()["detail"]


def test_bad_events_are_rejected_and_the_rest_stored(
    client: TestClient, platform: dict[str, str], upstream: FakeServer
) -> None:
    events = [
        order("o-1"),
        {"event_id": "bad-type", "type": "teleport", "customer_id": "c-1", "occurred_at": "2011-12-01T10:00:00Z"},
        order("o-2", when="2011-12-02T10:00:00+08:00"),
        order("neg-qty", lines=[{"sku": "X", "quantity": -1}]),
        order("future", when="3000-01-01T00:00:00Z"),
        17,
        order("o-3"),
    ]
    response = client.post("/v1/events", json={"events": events}, headers=platform)
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 0, 4)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert [r["status"] for r in results] == [
        "accepted", "rejected", "accepted", "rejected", "rejected", "rejected", "accepted"
    ]
    assert [r["event_id"] for r in results] == ["o-1", "bad-type", "o-2", "neg-qty", "future", None, "o-3"]
    assert results[1]["reason"].startswith("type: Input should be 'view'")
    assert "lines[0].quantity" in results[3]["reason"] and "greater than 0" in results[3]["reason"]
    # The year-3000 event is valid JSON-wise, so it reached profile, which refused it.
    assert "24 hours ahead" in results[4]["reason"]
    assert "dictionary" in results[5]["reason"]
    # Only the valid events went to profile, in one call and in their original order.
    sent = upstream.profile.ingest_requests
    assert len(sent) == 1
    assert [e.event_id for e in sent[0].events] == ["o-1", "o-2", "future", "o-3"]
    stored = upstream.profile.events["o-2"]
    assert stored.occurred_at.ToDatetime().isoformat() == "2011-12-02T02:00:00"
    assert stored.type == profile_pb2.EVENT_TYPE_ORDER and stored.lines[0].quantity == 2


def test_all_rejected_is_422_and_duplicates_are_200(client: TestClient, platform: dict[str, str]) -> None:
    bad = {"event_id": "x", "type": "order"}
    response = client.post("/v1/events", json={"events": [bad, bad]}, headers=platform)
    assert response.status_code == 422
    assert response.json()["rejected"] == 2 and "occurred_at: Field required" in response.json()["results"][0]["reason"]
    assert client.post("/v1/events", json={"events": [order("d-1")]}, headers=platform).status_code == 200
    again = client.post("/v1/events", json={"events": [order("d-1")]}, headers=platform)
    assert again.status_code == 200 and again.json()["duplicates"] == 1


def test_an_empty_batch_is_200(client: TestClient, platform: dict[str, str], upstream: FakeServer) -> None:
    response = client.post("/v1/events", json={"events": []}, headers=platform)
    assert response.status_code == 200 and response.json()["results"] == []
    assert upstream.profile.ingest_requests == []


def test_a_missing_result_from_profile_counts_as_rejected(
    client: TestClient, platform: dict[str, str], upstream: FakeServer
) -> None:
    upstream.profile.drop_results = True
    response = client.post("/v1/events", json={"events": [order("m-1"), order("m-2")]}, headers=platform)
    assert response.status_code == 207
    first = response.json()["results"][0]
    assert first["status"] == "rejected" and "no result" in first["reason"]


def test_more_than_5000_events_is_a_clear_413(client: TestClient, platform: dict[str, str]) -> None:
    events = [{"event_id": f"e{i}"} for i in range(5001)]
    response = client.post("/v1/events", json={"events": events}, headers=platform)
    assert response.status_code == 413
    assert "at most 5000 events" in response.json()["detail"] and "5001" in response.json()["detail"]


def test_a_body_over_10_mb_is_413(client: TestClient, platform: dict[str, str]) -> None:
    body = b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}"
    response = client.post("/v1/events", content=body, headers=platform)
    assert response.status_code == 413
    assert response.json()["error"] == "content too large"
    assert response.headers["X-Request-ID"]


def test_a_chunked_body_over_the_limit_is_413(settings: GatewaySettings, keys: KeyStore,
                                              api_keys: dict[str, str]) -> None:
    app = create_app(settings.model_copy(update={"max_body_bytes": 1000}), keys=keys)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": ['
        for _ in range(20):
            yield b" " * 100
        yield b"]}"

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            return await http.post("/v1/events", content=chunks(),
                                   headers={"Authorization": f"Bearer {api_keys['platform']}"})

    response = asyncio.run(post())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["detail"]


def test_event_counters_use_bounded_labels(client: TestClient, platform: dict[str, str]) -> None:
    before_literal = sample("marksman_gateway_event_rejections_total", reason="literal_error")
    before_upstream = sample("marksman_gateway_event_rejections_total", reason="upstream")
    before_accepted = sample("marksman_gateway_events_total", result="accepted")
    events = [order("k-1"), {**order("k-2"), "type": "teleport"}, order("k-3", when="3000-01-01T00:00:00Z")]
    client.post("/v1/events", json={"events": events}, headers=platform)
    assert sample("marksman_gateway_event_rejections_total", reason="literal_error") == before_literal + 1
    assert sample("marksman_gateway_event_rejections_total", reason="upstream") == before_upstream + 1
    assert sample("marksman_gateway_events_total", result="accepted") == before_accepted + 1


def test_a_large_batch_is_prepared_off_the_event_loop(client: TestClient, platform: dict[str, str],
                                                      upstream: FakeServer) -> None:
    events = [order(f"big-{i}") for i in range(1000)]
    events[500]["type"] = "teleport"
    response = client.post("/v1/events", json={"events": events}, headers=platform)
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (999, 1)
    assert body["results"][500]["status"] == "rejected" and body["results"][501]["event_id"] == "big-501"
    assert len(upstream.profile.ingest_requests[0].events) == 999
