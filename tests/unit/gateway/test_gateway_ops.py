"""Health, readiness, metrics, request ids, OpenAPI, and upstream failures mapped to HTTP."""

from __future__ import annotations

import time

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2

from services.common.logs import redact
from services.gateway.app import create_app
from services.gateway.clients import SERVICE_NAMES
from services.gateway.config import GatewaySettings
from services.gateway.errors import UpstreamError, http_status_for
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import SLOW_CUSTOMER, FakeServer


def test_healthz_needs_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_follows_the_upstream_health(client: TestClient, upstream: FakeServer) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["upstreams"]["profile"]["state"] == "serving"
    upstream.health.set(SERVICE_NAMES["profile"], health_pb2.HealthCheckResponse.NOT_SERVING)
    draining = client.get("/readyz")
    assert draining.status_code == 503 and draining.json()["upstreams"]["profile"]["detail"] == "NOT_SERVING"
    upstream.stop()
    started = time.monotonic()
    down = client.get("/readyz")
    assert down.status_code == 503 and down.json()["upstreams"]["profile"]["detail"].startswith("UNAVAILABLE")
    assert time.monotonic() - started < 2


def test_profile_down_is_503_within_the_deadline(client: TestClient, platform: dict[str, str],
                                                 upstream: FakeServer) -> None:
    upstream.stop()
    started = time.monotonic()
    response = client.get("/v1/customers/c-1/profile", headers=platform)
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["error"].startswith("profile service unavailable: ")
    assert response.headers["Retry-After"] == "1"
    assert elapsed < 3.5  # the deadline is 2 s
    events = client.post("/v1/events", json={"events": [{"event_id": "x"}, ]}, headers=platform)
    assert events.status_code == 422  # nothing valid: profile is not even asked


def test_a_slow_profile_hits_the_deadline(client: TestClient, platform: dict[str, str]) -> None:
    started = time.monotonic()
    response = client.get(f"/v1/customers/{SLOW_CUSTOMER}/profile", headers=platform)
    assert response.status_code == 503
    assert response.json()["error"] == "profile service unavailable: no answer within 2 s"
    assert time.monotonic() - started < 3.5


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 422),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503),
        (grpc.StatusCode.INTERNAL, 502),
        (grpc.StatusCode.UNKNOWN, 502),
    ],
)
def test_grpc_status_mapping(code: grpc.StatusCode, status: int) -> None:
    assert http_status_for(code) == status
    error = UpstreamError("profile", code, "secret internals" if status == 502 else "why", 5.0)
    assert error.status == status
    if status == 502:
        assert "secret internals" not in error.error and "profile" in error.error


def test_request_ids_are_echoed_or_generated(client: TestClient, platform: dict[str, str]) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert len(generated.headers["X-Request-ID"]) == 32
    # Letters only, so the log redaction (7+ digits look like a phone number) never mangles it.
    assert generated.headers["X-Request-ID"].isalpha()
    assert redact(generated.headers["X-Request-ID"]) == generated.headers["X-Request-ID"]
    missing = client.get("/v1/customers/nobody/profile", headers={**platform, "X-Request-ID": "req-9"})
    assert missing.status_code == 404 and missing.json()["request_id"] == "req-9"
    unknown_route = client.get("/nowhere")
    assert unknown_route.status_code == 404 and unknown_route.json()["request_id"]


def test_metrics_label_routes_by_template_only(client: TestClient, platform: dict[str, str]) -> None:
    secret_id = "cust-secret-4711"
    client.get(f"/v1/customers/{secret_id}/profile", headers=platform)
    client.get(f"/v1/{secret_id}")
    client.post("/v1/events", content=b" " * (11 * 1024 * 1024), headers=platform)
    text = client.get("/metrics").text
    assert secret_id not in text
    assert ('marksman_http_requests_total{method="GET",route="/v1/customers/{customer_id}/profile",status="404"}'
            in text)
    assert 'route="unmatched"' in text
    assert 'marksman_http_requests_total{method="POST",route="/v1/events",status="413"}' in text
    assert "marksman_http_request_duration_seconds_bucket" in text
    assert "marksman_http_requests_in_flight" in text


def test_openapi_describes_the_events_body(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/events"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EventsIn"}
    schemas = document["components"]["schemas"]
    assert schemas["EventsIn"]["properties"]["events"]["items"] == {"$ref": "#/components/schemas/EventIn"}
    assert schemas["EventsIn"]["properties"]["events"]["maxItems"] == 5000
    assert {"EventIn", "LineIn", "ErrorOut"} <= set(schemas)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            if path.startswith("/v1/"):
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert operation["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}
    assert client.get("/docs").status_code == 200


def test_an_unhandled_error_is_a_json_500_with_the_request_id(settings: GatewaySettings, keys: KeyStore) -> None:
    app = create_app(settings, keys=keys)

    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom, summary="fails")
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; see the gateway log", "detail": None, "request_id": "req-500"}
    assert response.headers["X-Request-ID"] == "req-500"
