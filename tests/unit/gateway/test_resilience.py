"""The gateway against real gRPC servers that fail: reads retried and writes not, the breaker opening, failing
fast, half-opening and closing, /readyz per upstream, and the labelled popular-items fallback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from marksman.profile.v1 import profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2 as pb
from marksman.recommend.v1 import recommend_pb2_grpc

from services.gateway.app import create_app
from services.gateway.breaker import State
from services.gateway.clients import POPULAR_PROBE_ID, SERVICE_NAMES, Upstreams
from services.gateway.config import GatewaySettings
from services.gateway.pricing import TOTALS
from services.gateway.pricing_facts import gather
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import FakeProfile

CUSTOMER = "c-1"


class FlakyProfile(FakeProfile):
    """The fake profile, counting calls per method; the next `failing` calls (of any method) answer UNAVAILABLE,
    and every call sleeps `delay_s` first."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self.failing = 0
        self.delay_s = 0.0

    def _enter(self, method: str, context: Any) -> None:
        self.calls[method] += 1
        time.sleep(self.delay_s)
        if self.failing > 0:
            self.failing -= 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded")

    def GetPortrait(self, request: Any, context: Any) -> Any:
        self._enter("GetPortrait", context)
        return super().GetPortrait(request, context)

    def UpsertCustomers(self, request: Any, context: Any) -> Any:
        self._enter("UpsertCustomers", context)
        return super().UpsertCustomers(request, context)


class PopularRecommend(recommend_pb2_grpc.RecommendServiceServicer):
    """Answers every customer with the same ranked list (A0, A1, ...); keeps the customer ids it was asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def Recommend(self, request: Any, context: Any) -> Any:
        self.asked.append(request.customer_id)
        items = [pb.ScoredItem(sku=f"A{n}", score=1.0 - n / 100) for n in range(request.k)]
        return pb.RecommendResponse(items=items, model_version=2, fallback="popular_overall")


class Server:
    """A real gRPC server on a free port with the given servicers and a health service."""

    def __init__(self, profile: FlakyProfile | None = None, recommend: PopularRecommend | None = None) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if profile is not None:
            profile_pb2_grpc.add_ProfileServiceServicer_to_server(profile, self.server)
            self.health.set(SERVICE_NAMES["profile"], health_pb2.HealthCheckResponse.SERVING)
        if recommend is not None:
            recommend_pb2_grpc.add_RecommendServiceServicer_to_server(recommend, self.server)
            self.health.set(SERVICE_NAMES["recommend"], health_pb2.HealthCheckResponse.SERVING)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(0).wait()


@pytest.fixture
def profile() -> FlakyProfile:
    fake = FlakyProfile()
    fake.customers[CUSTOMER] = fake.customers.get(CUSTOMER) or _customer()
    return fake


def _customer() -> Any:
    from marksman.profile.v1 import profile_pb2

    return profile_pb2.Customer(customer_id=CUSTOMER)


@pytest.fixture
def profile_server(profile: FlakyProfile) -> Iterator[Server]:
    server = Server(profile=profile)
    yield server
    server.stop()


def gateway(tmp_path: Path, keys: KeyStore, profile_addr: str, **overrides: Any) -> TestClient:
    settings = GatewaySettings(**{
        "data_dir": tmp_path, "profile_addr": profile_addr, "segment_addr": "", "recommend_addr": "",
        "campaign_addr": "", "upstream_timeout_s": 2.0, "health_timeout_s": 0.5, "breaker_failures": 3,
        "breaker_cooldown_s": 30.0, "retry_backoff_s": 0.01, **overrides})
    return TestClient(create_app(settings, keys=keys))


def clients_of(client: TestClient) -> Upstreams:
    found: Upstreams = client.app.state.upstreams  # type: ignore[attr-defined]
    return found


def metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start} in /metrics")


def test_a_read_is_retried_on_unavailable_at_most_twice(tmp_path: Path, keys: KeyStore, platform: dict[str, str],
                                                        profile: FlakyProfile, profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address) as client:
        profile.failing = 2
        answer = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
        assert answer.status_code == 200, answer.text
        assert profile.calls["GetPortrait"] == 3
        profile.failing = 5
        gave_up = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
        assert gave_up.status_code == 503 and gave_up.json()["error"] == "profile service unavailable: overloaded"
        assert profile.calls["GetPortrait"] == 6  # one call and two retries, no more


def test_a_write_is_never_retried(tmp_path: Path, keys: KeyStore, platform: dict[str, str], profile: FlakyProfile,
                                  profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address) as client:
        profile.failing = 1
        answer = client.post("/v1/customers", json={"customers": [{"customer_id": "c-2"}]}, headers=platform)
        assert answer.status_code == 503
        assert profile.calls["UpsertCustomers"] == 1


def test_the_breaker_opens_on_a_stopped_upstream_and_refuses_at_once(
        tmp_path: Path, keys: KeyStore, platform: dict[str, str], profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address) as client:
        assert client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform).status_code == 200
        profile_server.stop()
        for _ in range(3):
            down = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
            assert down.status_code == 503 and down.json()["error"].startswith("profile service unavailable")
        refused = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
        assert refused.status_code == 503
        assert refused.json()["error"].startswith("profile is unavailable (circuit open, retry in ")
        assert int(refused.headers["Retry-After"]) in range(25, 31)
        assert metric(client, 'marksman_gateway_upstream_circuit_state{upstream="profile"}') == State.OPEN
        assert metric(client, 'marksman_gateway_upstream_short_circuited_total{upstream="profile"}') >= 1
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["upstreams"]["profile"]["state"] == "circuit_open"


def test_an_open_breaker_fails_fast_instead_of_waiting_for_the_deadline(
        tmp_path: Path, keys: KeyStore, platform: dict[str, str], profile: FlakyProfile,
        profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address, upstream_timeout_s=1.0, breaker_failures=2) as client:
        profile.delay_s = 1.5  # past the deadline
        for _ in range(2):
            started = time.monotonic()
            slow = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
            assert slow.status_code == 503 and time.monotonic() - started >= 1.0
        started = time.monotonic()
        refused = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
        elapsed = time.monotonic() - started
        assert refused.status_code == 503 and "circuit open" in refused.json()["error"]
        assert elapsed < 0.5, elapsed  # the deadline is 1 s; refusing takes no upstream time at all


def test_the_breaker_half_opens_after_the_cool_down_and_closes_when_the_probe_succeeds(
        tmp_path: Path, keys: KeyStore, platform: dict[str, str], profile: FlakyProfile,
        profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address, breaker_cooldown_s=0.5, read_retries=0) as client:
        breaker = clients_of(client).breaker("profile")
        assert breaker is not None
        profile.failing = 100
        for _ in range(3):
            client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)
        assert breaker.state is State.OPEN and profile.calls["GetPortrait"] == 3
        assert "circuit open" in client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform).json()["error"]
        assert profile.calls["GetPortrait"] == 3  # refused without calling
        time.sleep(0.6)
        assert breaker.state is State.HALF_OPEN
        assert metric(client, 'marksman_gateway_upstream_circuit_state{upstream="profile"}') == State.HALF_OPEN
        probe = client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform)  # still failing: open again
        assert probe.status_code == 503 and profile.calls["GetPortrait"] == 4 and breaker.state is State.OPEN
        profile.failing = 0
        time.sleep(0.6)
        assert client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform).status_code == 200
        assert breaker.state is State.CLOSED
        assert client.get(f"/v1/customers/{CUSTOMER}/profile", headers=platform).status_code == 200


def test_answers_that_prove_the_upstream_is_up_never_open_the_breaker(
        tmp_path: Path, keys: KeyStore, platform: dict[str, str], profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address) as client:
        for _ in range(5):
            assert client.get("/v1/customers/nobody/profile", headers=platform).status_code == 404
        breaker = clients_of(client).breaker("profile")
        assert breaker is not None and breaker.state is State.CLOSED


def test_readyz_reports_each_upstream_and_needs_only_the_required_ones(
        tmp_path: Path, keys: KeyStore, profile_server: Server) -> None:
    recommend = Server(recommend=PopularRecommend())
    try:
        with gateway(tmp_path, keys, profile_server.address, recommend_addr=recommend.address) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "ready" and body["degraded"] == []
            assert body["upstreams"]["profile"]["state"] == "serving" and body["upstreams"]["profile"]["required"]
            assert body["upstreams"]["profile"]["latency_ms"] >= 0
            recommend.stop()
            degraded = client.get("/readyz")
            assert degraded.status_code == 200 and degraded.json()["degraded"] == ["recommend"]
            assert degraded.json()["upstreams"]["recommend"] | {"latency_ms": 0} == {
                "state": "unreachable", "required": False, "latency_ms": 0,
                "detail": degraded.json()["upstreams"]["recommend"]["detail"]}
            assert degraded.json()["upstreams"]["recommend"]["detail"].startswith("UNAVAILABLE")
            profile_server.health.set(SERVICE_NAMES["profile"], health_pb2.HealthCheckResponse.NOT_SERVING)
            draining = client.get("/readyz")
            assert draining.status_code == 503 and draining.json()["status"] == "not ready"
            assert draining.json()["upstreams"]["profile"] | {"latency_ms": 0} == {
                "state": "not_serving", "required": True, "latency_ms": 0, "detail": "NOT_SERVING"}
            profile_server.stop()
            started = time.monotonic()
            down = client.get("/readyz")
            assert down.status_code == 503 and down.json()["upstreams"]["profile"]["state"] == "unreachable"
            assert time.monotonic() - started < 2
    finally:
        recommend.stop()


def test_recommendations_fall_back_to_the_popular_items_labelled_when_recommend_is_down(
        tmp_path: Path, keys: KeyStore, platform: dict[str, str], profile_server: Server) -> None:
    fake = PopularRecommend()
    recommend = Server(recommend=fake)
    try:
        with gateway(tmp_path, keys, profile_server.address, recommend_addr=recommend.address) as client:
            popular = clients_of(client).popular
            assert popular is not None
            deadline = time.monotonic() + 10
            while popular.current is None and time.monotonic() < deadline:
                time.sleep(0.05)  # filled at start, in the background
            assert fake.asked == [POPULAR_PROBE_ID]
            live = client.get(f"/v1/customers/{CUSTOMER}/recommendations?k=3", headers=platform)
            assert live.json()["degraded"] is False and live.json()["fallback"] == "popular_overall"
            recommend.stop()
            url = f"/v1/customers/{CUSTOMER}/recommendations?k=3&exclude=A1"
            degraded = client.get(url, headers=platform)
            assert degraded.status_code == 200, degraded.text
            body = degraded.json()
            assert body["degraded"] is True and body["fallback"] == "gateway_popular_cache"
            assert body["model_version"] is None
            assert [i["sku"] for i in body["items"]] == ["A0", "A2", "A3"]
            assert body["relaxed_filters"] == ["exclude_bought"]
            assert body["degraded_reason"].startswith("recommend service unavailable")
            # A category or stock filter is a business rule the cached SKUs cannot check: 503, not a wrong answer.
            assert client.get(f"/v1/customers/{CUSTOMER}/recommendations?in_stock=true",
                              headers=platform).status_code == 503
            for _ in range(3):
                client.get(url, headers=platform)
            # The breaker is open by now: the fallback still answers, without waiting for recommend.
            breaker = clients_of(client).breaker("recommend")
            assert breaker is not None and breaker.state is State.OPEN
            started = time.monotonic()
            refused = client.get(url, headers=platform)
            assert refused.json()["degraded"] is True and "circuit open" in refused.json()["degraded_reason"]
            assert time.monotonic() - started < 0.5
            assert metric(client, 'marksman_gateway_fallbacks_total{fallback="gateway_popular_cache"}') >= 2
    finally:
        recommend.stop()


def test_the_openapi_document_describes_the_degraded_answer(tmp_path: Path, keys: KeyStore,
                                                             profile_server: Server) -> None:
    with gateway(tmp_path, keys, profile_server.address) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"degraded", "degraded_reason", "relaxed_filters", "fallback_age_s"} <= set(
        schemas["RecommendationsOut"]["properties"])
    assert set(schemas["UpstreamHealthOut"]["properties"]["state"]["enum"]) == {
        "serving", "not_serving", "unreachable", "circuit_open"}
    assert "degraded" in schemas["ReadyOut"]["properties"]


def test_a_quote_prices_without_profile_at_once_while_its_circuit_is_open(tmp_path: Path,
                                                                          profile_server: Server) -> None:
    settings = GatewaySettings(data_dir=tmp_path, profile_addr=profile_server.address, segment_addr="",
                               recommend_addr="", campaign_addr="", breaker_failures=2, read_retries=0)
    profile_server.stop()

    async def facts_three_times() -> list[tuple[dict[str, str], float]]:
        clients = Upstreams.connect(settings)
        try:
            found = []
            for _ in range(3):
                started = time.monotonic()
                _, unavailable = await gather(clients, CUSTOMER, {TOTALS}, [365], datetime.now(UTC), 0.25)
                found.append((unavailable, time.monotonic() - started))
            return found
        finally:
            await clients.close()

    first, _, third = asyncio.run(facts_three_times())
    assert first[0]["profile"].startswith("profile service unavailable")
    assert third[0] == {"profile": "profile is unavailable (circuit open, retry in 10 s)"}
    assert third[1] < 0.05  # not even the quote's own 0.25 s budget is spent
