"""Segment routes through a real gRPC server with a fake SegmentService: auth, 503 when not configured,
rule errors with positions, versions, member pages, a customer's segments, sync, erasure and readiness."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health_pb2
from marksman.segment.v1 import segment_pb2

from services.gateway import convert
from services.gateway.app import create_app
from services.gateway.clients import SERVICE_NAMES
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import SEGMENT_CUSTOMERS, FakeServer

TYPO_RULE = "frequency > 5 or recncy_days <= 90"
TYPO_MESSAGE = "unknown trait 'recncy_days' — did you mean 'recency_days'?"
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/segments", {"name": "vip", "rule": "frequency >= 5"}),
    ("POST", "/v1/segments/preview", {"rule": "frequency >= 5"}),
    ("POST", "/v1/segments/validate", {"rule": "frequency >= 5"}),
    ("GET", "/v1/segments", None),
    ("GET", "/v1/segments/vip", None),
    ("POST", "/v1/segments/vip/refresh", None),
    ("GET", "/v1/segments/vip/versions/1/members", None),
    ("POST", "/v1/admin/segments/sync", None),
]
CUSTOMER_ROUTE: tuple[str, str, dict[str, Any] | None] = ("GET", "/v1/customers/c-1/segments", None)


@pytest.fixture
def wired(settings: GatewaySettings, upstream: FakeServer) -> GatewaySettings:
    return settings.model_copy(update={"segment_addr": upstream.address})


@pytest.fixture
def seg(wired: GatewaySettings, keys: KeyStore) -> Iterator[TestClient]:
    """A gateway with the segment service configured (the fake, on the same server as profile)."""
    with TestClient(create_app(wired, keys=keys)) as test_client:
        yield test_client


def create(client: TestClient, headers: dict[str, str], name: str = "vip", rule: str = "frequency >= 5") -> Any:
    response = client.post("/v1/segments", json={"name": name, "rule": rule}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def refresh(client: TestClient, headers: dict[str, str], name: str = "vip") -> Any:
    response = client.post(f"/v1/segments/{name}/refresh", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# ---- auth and configuration ----

def test_every_segment_route_needs_a_key(seg: TestClient) -> None:
    for method, path, body in [*ADMIN_ROUTES, CUSTOMER_ROUTE]:
        response = seg.request(method, path, json=body)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_platform_key_on_admin_segment_routes_is_403(seg: TestClient, platform: dict[str, str],
                                                     upstream: FakeServer) -> None:
    for method, path, body in ADMIN_ROUTES:
        response = seg.request(method, path, json=body, headers=platform)
        assert response.status_code == 403, path
        assert "'admin' scope" in response.json()["error"]
    assert upstream.segment.deadlines == {}  # refused before any call
    method, path, _ = CUSTOMER_ROUTE
    assert seg.request(method, path, headers=platform).status_code == 200


def test_segment_not_configured_is_503(client: TestClient, admin: dict[str, str], platform: dict[str, str]) -> None:
    for method, path, body in [*ADMIN_ROUTES, CUSTOMER_ROUTE]:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == 503, path
        assert response.json()["error"] == "segment service not configured"
        assert "MARKSMAN_GATEWAY_SEGMENT_ADDR" in response.json()["detail"]
    # The key is still checked first.
    assert client.get("/v1/segments", headers=platform).status_code == 403


def test_segment_down_is_503_within_the_deadline(settings: GatewaySettings, keys: KeyStore,
                                                 admin: dict[str, str]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    with TestClient(create_app(settings.model_copy(update={"segment_addr": dead}), keys=keys)) as client:
        response = client.get("/v1/segments", headers=admin)
        members = client.get("/v1/segments/vip/versions/0/members", headers=admin)  # the streaming call too
    assert response.status_code == 503 and response.json()["error"].startswith("segment service unavailable")
    assert response.headers["Retry-After"] == "1"
    assert members.status_code == 503 and members.json()["error"].startswith("segment service unavailable")


# ---- create, validate, preview ----

def test_create_segment(seg: TestClient, admin: dict[str, str], upstream: FakeServer) -> None:
    body = {"name": "big-spenders", "rule": "monetary > 1000", "description": "  Spent over 1,000  "}
    response = seg.post("/v1/segments", json=body, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "big-spenders", "kind": "rule", "rule": "monetary > 1000", "model": None,
        "description": "Spent over 1,000", "built_in": False, "created_at": "2011-12-10T00:00:00Z", "current": None,
    }
    assert upstream.segment.segments["big-spenders"].description == "Spent over 1,000"
    again = seg.post("/v1/segments", json=body, headers=admin)
    assert again.status_code == 409 and again.json()["error"] == "a segment named 'big-spenders' exists"


def test_bad_names_and_bodies_are_422_before_any_call(seg: TestClient, admin: dict[str, str],
                                                      upstream: FakeServer) -> None:
    for name in ("Big Spenders", "-vip", "x" * 65, ""):
        response = seg.post("/v1/segments", json={"name": name, "rule": "frequency >= 5"}, headers=admin)
        assert response.status_code == 422, name
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", "name"] and "a segment name is 1-64 lower-case" in detail[0]["msg"]
    for body in ({"name": "vip"}, {"name": "vip", "rule": ""}, {"name": "vip", "rule": "x", "extra": 1},
                 {"name": "vip", "rule": "x" * 10_001}):
        assert seg.post("/v1/segments", json=body, headers=admin).status_code == 422, body
    for sample_size in (0, 1001):
        response = seg.post("/v1/segments/preview", json={"rule": "frequency >= 5", "sample_size": sample_size},
                            headers=admin)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "sample_size"]
    assert upstream.segment.deadlines == {}


def test_rule_error_is_422_with_line_and_column(seg: TestClient, admin: dict[str, str]) -> None:
    for path, body in (("/v1/segments", {"name": "vip", "rule": TYPO_RULE}),
                       ("/v1/segments/preview", {"rule": TYPO_RULE})):
        response = seg.post(path, json=body, headers=admin)
        assert response.status_code == 422, path
        error = response.json()
        assert error["error"] == f"line 1, column 18: {TYPO_MESSAGE}"
        assert error["detail"] == {"grpc_status": "INVALID_ARGUMENT",
                                   "problems": [{"line": 1, "column": 18, "message": TYPO_MESSAGE}]}
        assert error["request_id"] == response.headers["X-Request-ID"]


def test_rule_positions_count_the_text_as_sent(seg: TestClient, admin: dict[str, str]) -> None:
    # Leading blank lines and indentation are kept: the positions must match what the marketer typed.
    rule = '\n  frequency > 5 and\n  monetory > 1 or regoin == "x"'
    response = seg.post("/v1/segments/preview", json={"rule": rule}, headers=admin)
    assert response.status_code == 422
    problems = response.json()["detail"]["problems"]
    assert [(p["line"], p["column"]) for p in problems] == [(3, 3), (3, 19)]
    assert problems[0]["message"].startswith("unknown trait 'monetory'")
    assert response.json()["error"].startswith("line 3, column 3: unknown trait 'monetory'")


def test_validate_rule(seg: TestClient, admin: dict[str, str]) -> None:
    ok = seg.post("/v1/segments/validate", json={"rule": "recency_days <= 90 and monetary > 1000"}, headers=admin)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"valid": True, "traits": ["monetary", "recency_days"], "segments": []}
    bad = seg.post("/v1/segments/validate", json={"rule": TYPO_RULE}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["error"] == f"line 1, column 18: {TYPO_MESSAGE}"
    assert bad.json()["detail"] == {"problems": [{"line": 1, "column": 18, "message": TYPO_MESSAGE}]}


def test_preview(seg: TestClient, admin: dict[str, str]) -> None:
    response = seg.post("/v1/segments/preview", json={"rule": "frequency >= 5", "sample_size": 3}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"count": 25, "portraits": 25, "sample": sorted(SEGMENT_CUSTOMERS)[:3]}
    default = seg.post("/v1/segments/preview", json={"rule": "frequency >= 5"}, headers=admin)
    assert len(default.json()["sample"]) == 10


# ---- refresh, read ----

def test_refresh_then_get_with_versions(seg: TestClient, admin: dict[str, str]) -> None:
    create(seg, admin)
    first = refresh(seg, admin)
    assert first == {"name": "vip", "version": 1, "size": 25, "portraits": 25, "seconds": 0.05,
                     "created_at": "2011-12-10T00:00:00Z", "rule": "frequency >= 5", "model_version": None}
    assert refresh(seg, admin)["version"] == 2
    got = seg.get("/v1/segments/vip", headers=admin)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["current"]["version"] == 2 and body["current"]["size"] == 25
    assert [(v["version"], v["size"]) for v in body["versions"]] == [(2, 25), (1, 25)]
    listed = seg.get("/v1/segments", headers=admin)
    assert listed.status_code == 200
    segments = {s["name"]: s for s in listed.json()["segments"]}
    assert set(segments) == {"rfm_champions", "vip"}
    assert segments["rfm_champions"]["built_in"] and segments["rfm_champions"]["current"] is None
    assert segments["vip"]["current"]["version"] == 2 and "versions" not in segments["vip"]


def test_unknown_segment_is_404(seg: TestClient, admin: dict[str, str]) -> None:
    for method, path in (("GET", "/v1/segments/nobody"), ("POST", "/v1/segments/nobody/refresh"),
                         ("GET", "/v1/segments/nobody/versions/1/members")):
        response = seg.request(method, path, headers=admin)
        assert response.status_code == 404, path
        assert response.json()["error"] == "there is no segment named 'nobody'"
        assert response.json()["detail"] == {"grpc_status": "NOT_FOUND"}


def test_bad_path_and_query_params_are_422(seg: TestClient, admin: dict[str, str], upstream: FakeServer) -> None:
    name = seg.get("/v1/segments/Big%20Spenders", headers=admin)
    assert name.status_code == 422
    assert name.json()["detail"][0]["loc"] == ["path", "name"]
    assert "a segment name is 1-64 lower-case letters" in name.json()["detail"][0]["msg"]
    assert seg.post("/v1/segments/UPPER/refresh", headers=admin).status_code == 422
    for query in ("versions/-1/members", "versions/x/members", "versions/1/members?limit=0",
                  "versions/1/members?limit=10001", "versions/1/members?cursor=a%20b"):
        response = seg.get(f"/v1/segments/vip/{query}", headers=admin)
        assert response.status_code == 422, query
    customer = seg.get("/v1/customers/bad%20id/segments", headers=admin)
    assert customer.status_code == 422 and customer.json()["detail"][0]["loc"] == ["path", "customer_id"]
    assert upstream.segment.deadlines == {}


def test_refresh_of_a_rule_that_no_longer_checks_is_409_with_positions(seg: TestClient, admin: dict[str, str],
                                                                        upstream: FakeServer) -> None:
    upstream.segment.segments["stale"] = segment_pb2.Segment(name="stale", rule="broken")
    upstream.segment.versions["stale"] = []
    response = seg.post("/v1/segments/stale/refresh", headers=admin)
    assert response.status_code == 409
    assert response.json()["error"].startswith("the stored rule of 'stale' no longer checks: line 1, column 1")
    assert response.json()["detail"]["problems"] == [{"line": 1, "column": 1, "message": "unknown trait 'broken'"}]


# ---- members ----

def test_members_are_paged_by_the_service_token(seg: TestClient, admin: dict[str, str],
                                                upstream: FakeServer) -> None:
    create(seg, admin)
    refresh(seg, admin)
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = "limit=10" + (f"&cursor={cursor}" if cursor else "")
        response = seg.get(f"/v1/segments/vip/versions/1/members?{query}", headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["name"] == "vip" and body["version"] == 1
        pages.append(body["customer_ids"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [c for p in pages for c in p] == sorted(SEGMENT_CUSTOMERS)
    sent = upstream.segment.member_requests
    assert [(r.page_size, r.limit, r.version) for r in sent] == [(10, 10, 1)] * 3
    assert [r.page_token for r in sent] == ["", "10", "20"]


def test_members_of_the_current_version_and_errors(seg: TestClient, admin: dict[str, str]) -> None:
    create(seg, admin)
    never = seg.get("/v1/segments/vip/versions/0/members", headers=admin)
    assert never.status_code == 409 and "refresh it first" in never.json()["error"]
    refresh(seg, admin)
    refresh(seg, admin)
    current = seg.get("/v1/segments/vip/versions/0/members", headers=admin)
    assert current.status_code == 200
    body = current.json()
    assert body["version"] == 2 and len(body["customer_ids"]) == 25 and body["next_cursor"] is None  # limit 1000
    assert seg.get("/v1/segments/vip/versions/1/members", headers=admin).json()["version"] == 1
    missing = seg.get("/v1/segments/vip/versions/9/members", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"] == "segment 'vip' has no version 9"
    forged = seg.get("/v1/segments/vip/versions/1/members?cursor=abc", headers=admin)
    assert forged.status_code == 422 and forged.json()["error"] == "page_token is not a token this service gave out"


# ---- a customer's segments, sync ----

def test_customer_segments(seg: TestClient, admin: dict[str, str], platform: dict[str, str]) -> None:
    empty = seg.get("/v1/customers/c-1/segments", headers=platform)
    assert empty.status_code == 200 and empty.json() == {"customer_id": "c-1", "segments": []}
    create(seg, admin)
    refresh(seg, admin)
    refresh(seg, admin)
    refresh(seg, admin, "rfm_champions")
    held = seg.get("/v1/customers/c-1/segments", headers=platform)
    assert held.json() == {"customer_id": "c-1", "segments": [{"name": "rfm_champions", "version": 1},
                                                               {"name": "vip", "version": 2}]}
    outsider = seg.get("/v1/customers/c-99/segments", headers=platform)
    assert outsider.json() == {"customer_id": "c-99", "segments": []}


def test_sync_portraits(seg: TestClient, admin: dict[str, str], upstream: FakeServer) -> None:
    changed = seg.post("/v1/admin/segments/sync", headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"received": 3, "portraits": 25, "seconds": 0.5}
    full = seg.post("/v1/admin/segments/sync?full=true", headers=admin)
    assert full.json()["received"] == 25
    assert upstream.segment.sync_requests == [False, True]


# ---- erasure, readiness, deadlines ----

def test_erasure_includes_segment(seg: TestClient, admin: dict[str, str], platform: dict[str, str],
                                  upstream: FakeServer) -> None:
    seg.post("/v1/customers", json={"customers": [{"customer_id": "c-1"}]}, headers=admin)
    create(seg, admin)
    refresh(seg, admin)
    response = seg.delete("/v1/customers/c-1", headers=admin)
    assert response.status_code == 200, response.text
    # segment: one stored membership and the cached portrait.
    assert response.json() == {"customer_id": "c-1", "services": {"gateway": 0, "profile": 3, "segment": 2},
                               "skipped": ["recommend", "campaign"]}
    assert upstream.segment.erased == ["c-1"] and upstream.profile.erased == ["c-1"]
    members = seg.get("/v1/segments/vip/versions/1/members", headers=admin).json()["customer_ids"]
    assert "c-1" not in members and len(members) == 24
    assert seg.get("/v1/customers/c-1/segments", headers=platform).json()["segments"] == []


def test_erasure_skips_segment_when_not_configured(client: TestClient, admin: dict[str, str],
                                                   upstream: FakeServer) -> None:
    response = client.delete("/v1/customers/c-1", headers=admin)
    assert response.status_code == 200
    assert response.json()["services"] == {"gateway": 0, "profile": 0} and "segment" in response.json()["skipped"]
    assert upstream.segment.erased == []


def test_readyz_includes_segment_when_configured(seg: TestClient, upstream: FakeServer) -> None:
    ready = seg.get("/readyz")
    assert ready.status_code == 200
    assert {n: u["state"] for n, u in ready.json()["upstreams"].items()} == {"profile": "serving", "segment": "serving"}
    upstream.health.set(SERVICE_NAMES["segment"], health_pb2.HealthCheckResponse.NOT_SERVING)
    draining = seg.get("/readyz")
    # segment is optional: the gateway stays ready and names it as degraded
    assert draining.status_code == 200 and draining.json()["degraded"] == ["segment"]
    assert draining.json()["upstreams"]["segment"]["state"] == "not_serving"


def test_every_segment_call_carries_a_deadline(seg: TestClient, admin: dict[str, str],
                                               platform: dict[str, str], upstream: FakeServer,
                                               wired: GatewaySettings) -> None:
    for method, path, body in ADMIN_ROUTES:
        seg.request(method, path, json=body, headers=admin)
    seg.request(CUSTOMER_ROUTE[0], CUSTOMER_ROUTE[1], headers=platform)
    seg.delete("/v1/customers/c-1", headers=admin)
    deadlines = upstream.segment.deadlines
    assert set(deadlines) == {"CreateSegment", "PreviewRule", "ValidateRule", "ListSegments", "GetSegment",
                              "RefreshSegment", "StreamMembers", "SyncPortraits", "ListCustomerSegments",
                              "EraseCustomer"}
    for method, remaining in deadlines.items():
        assert remaining is not None, method
        long = method in ("RefreshSegment", "SyncPortraits")  # evaluating a large base takes longer
        limit = wired.ingest_timeout_s if long else wired.upstream_timeout_s
        assert 0 < remaining <= limit + 0.05, method  # the deadline travels in milliseconds, rounded
        if long:
            assert remaining > wired.upstream_timeout_s, method


# ---- OpenAPI and the rule problem parser ----

def test_openapi_documents_the_segment_routes(seg: TestClient) -> None:
    document = seg.get("/openapi.json").json()
    paths = document["paths"]
    expected = {
        ("post", "/v1/segments"), ("post", "/v1/segments/preview"), ("post", "/v1/segments/validate"),
        ("get", "/v1/segments"), ("get", "/v1/segments/{name}"), ("post", "/v1/segments/{name}/refresh"),
        ("get", "/v1/segments/{name}/versions/{version}/members"), ("get", "/v1/customers/{customer_id}/segments"),
        ("post", "/v1/admin/segments/sync"),
    }
    for method, path in expected:
        operation = paths[path][method]
        assert operation["summary"], path
        assert {"401", "403", "503"} <= set(operation["responses"]), path
    create_op = paths["/v1/segments"]["post"]
    assert "201" in create_op["responses"] and "409" in create_op["responses"]
    rule_422 = create_op["responses"]["422"]["content"]["application/json"]
    assert rule_422["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
    assert rule_422["example"]["detail"]["problems"][0]["column"] == 18
    schemas = document["components"]["schemas"]
    assert schemas["SegmentIn"]["examples"][0]["name"] == "big-spenders"
    assert schemas["SegmentIn"]["properties"]["name"]["pattern"]
    assert schemas["MembersOut"]["examples"]
    members = paths["/v1/segments/{name}/versions/{version}/members"]["get"]
    params = {p["name"]: p for p in members["parameters"]}
    assert set(params) == {"name", "version", "cursor", "limit"}
    assert params["limit"]["schema"]["maximum"] == 10_000 and params["name"]["schema"]["pattern"]


def test_parse_problems() -> None:
    two = "line 1, column 3: unknown trait 'x'; line 2, column 1: use 'or' to combine conditions"
    assert [(p.line, p.column, p.message) for p in convert.parse_problems(two)] == [
        (1, 3, "unknown trait 'x'"), (2, 1, "use 'or' to combine conditions")]
    prefixed = "the stored rule of 'vip' no longer checks: line 4, column 7: unknown segment 'gone'"
    assert [(p.line, p.column) for p in convert.parse_problems(prefixed)] == [(4, 7)]
    assert convert.parse_problems("a segment name is 1-64 lower-case letters") == []
    assert convert.parse_problems("sample_size must be between 0 and 1000") == []
