"""gRPC channels to the upstream services: one per service, opened at start; every call with a deadline,
through the upstream's circuit breaker, idempotent reads retried by the channel's retry policy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2, recommend_pb2_grpc
from marksman.segment.v1 import segment_pb2_grpc

from services.gateway.breaker import Breaker, CircuitOpen, Policy, State, is_failure
from services.gateway.config import GatewaySettings
from services.gateway.errors import UpstreamError
from services.gateway.metrics import CIRCUIT_STATE, SHORT_CIRCUITED
from services.gateway.popular import Items, PopularCache
from services.gateway.retries import READS, full_service_name, service_config

# As the servers (services.common.grpc_server): a batch of 5,000 events fits easily.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Spread calls over every address of a target ("ipv4:host:p1,host:p2", or a DNS name with
    # several records): replicas of a service then share the work call by call.
    ("grpc.lb_policy_name", "round_robin"),
]
# The full proto service names, as registered with each server's health servicer.
SERVICE_NAMES = {name: full_service_name(name) for name in READS}
# Asked for recommend's popular items: an id no model knows, so the answer is the overall popular list.
POPULAR_PROBE_ID = "gateway:popular"
POPULAR_SIZE = 100
_ERASER_STUBS: dict[str, Callable[[grpc.aio.Channel], Any]] = {
    "segment": segment_pb2_grpc.SegmentServiceStub,
    "recommend": recommend_pb2_grpc.RecommendServiceStub,
    "campaign": campaign_pb2_grpc.CampaignServiceStub,
}

Response = TypeVar("Response")
HealthState = Literal["serving", "not_serving", "unreachable", "circuit_open"]


@dataclass
class Upstream:
    name: str
    address: str
    channel: grpc.aio.Channel
    health: health_pb2_grpc.HealthStub
    breaker: Breaker


@dataclass(frozen=True)
class Health:
    """One upstream's readiness: state serving / not_serving / unreachable / circuit_open, why, how fast."""

    state: HealthState
    detail: str | None
    latency_s: float


@dataclass
class Upstreams:
    """The open channels; `profile` is required, the others only when configured (`segment` None if not)."""

    profile: profile_pb2_grpc.ProfileServiceAsyncStub
    upstreams: dict[str, Upstream]
    timeout_s: float
    ingest_timeout_s: float
    health_timeout_s: float
    # name -> EraseCustomer callable of every configured service, profile first
    erasers: dict[str, Any] = field(default_factory=dict)
    # services without an address: erasure skips them and says so
    not_deployed: list[str] = field(default_factory=list)
    segment: segment_pb2_grpc.SegmentServiceAsyncStub | None = None
    recommend: recommend_pb2_grpc.RecommendServiceAsyncStub | None = None
    campaign: campaign_pb2_grpc.CampaignServiceAsyncStub | None = None
    # /readyz needs these; the others only degrade some routes
    required: frozenset[str] = frozenset({"profile"})
    # recommend's popular items, kept for when it cannot answer (None when recommend is not deployed)
    popular: PopularCache | None = None

    @classmethod
    def connect(cls, settings: GatewaySettings) -> Upstreams:
        """Opens the channels (lazily connecting); call inside the running event loop."""
        profile = _open("profile", settings.profile_addr, settings)
        upstreams = {"profile": profile}
        erasers: dict[str, Any] = {}
        profile_stub = profile_pb2_grpc.ProfileServiceStub(profile.channel)
        erasers["profile"] = profile_stub.EraseCustomer
        not_deployed: list[str] = []
        stubs: dict[str, Any] = {}
        for name, address in settings.other_upstreams().items():
            if not address:
                not_deployed.append(name)
                continue
            upstreams[name] = _open(name, address, settings)
            stubs[name] = _ERASER_STUBS[name](upstreams[name].channel)
            erasers[name] = stubs[name].EraseCustomer
        clients = cls(
            profile=profile_stub,
            upstreams=upstreams,
            timeout_s=settings.upstream_timeout_s,
            ingest_timeout_s=settings.ingest_timeout_s,
            health_timeout_s=settings.health_timeout_s,
            erasers=erasers,
            not_deployed=not_deployed,
            segment=stubs.get("segment"),
            recommend=stubs.get("recommend"),
            campaign=stubs.get("campaign"),
            required=frozenset(settings.required_upstreams),
        )
        if clients.recommend is not None:
            clients.popular = PopularCache(clients.fetch_popular, settings.popular_refresh_s)
            clients.popular.refresh_soon()
        return clients

    async def close(self) -> None:
        if self.popular is not None:
            await self.popular.close()
        await asyncio.gather(*(u.channel.close(None) for u in self.upstreams.values()))

    async def fetch_popular(self) -> Items:
        """recommend's overall popular items, as a customer no model knows gets them."""
        assert self.recommend is not None
        request = recommend_pb2.RecommendRequest(customer_id=POPULAR_PROBE_ID, k=POPULAR_SIZE)
        answer = await self.call("recommend", self.recommend.Recommend, request)
        return [(item.sku, item.score) for item in answer.items]

    def breaker(self, service: str) -> Breaker | None:
        upstream = self.upstreams.get(service)
        return upstream.breaker if upstream is not None else None

    def _admit(self, service: str) -> tuple[Breaker | None, bool]:
        breaker = self.breaker(service)
        if breaker is None:
            return None, False
        try:
            return breaker, breaker.admit()
        except CircuitOpen:
            SHORT_CIRCUITED.labels(service).inc()
            raise

    def _judge(self, code: grpc.StatusCode, timeout: float) -> bool | None:
        """Whether a failed call counts against the upstream (None: no verdict)."""
        if code is grpc.StatusCode.DEADLINE_EXCEEDED and timeout < self.timeout_s:
            # A caller's own short budget (a quote waits 0.25 s) ran out: that says little about the upstream.
            return None
        return is_failure(code)

    async def call(
        self,
        service: str,
        method: Callable[..., Awaitable[Response]],
        request: Any,
        *,
        timeout_s: float | None = None,
    ) -> Response:
        """Calls with a deadline through the service's breaker; a failed call becomes UpstreamError naming the
        service (CircuitOpen when refused without calling)."""
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        breaker, probe = self._admit(service)
        try:
            answer = await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            self._settle(breaker, probe, self._judge(error.code(), timeout))
            raise UpstreamError(service, error.code(), error.details() or "", timeout) from None
        except BaseException:
            self._settle(breaker, probe, None)
            raise
        self._settle(breaker, probe, False)
        return answer

    async def stream(
        self,
        service: str,
        method: Callable[..., AsyncIterable[Response]],
        request: Any,
        *,
        timeout_s: float | None = None,
    ) -> list[Response]:
        """Reads a whole server stream under one deadline (the caller bounds its length in the request)."""
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        breaker, probe = self._admit(service)
        try:
            messages = [message async for message in method(request, timeout=timeout)]
        except grpc.aio.AioRpcError as error:
            self._settle(breaker, probe, self._judge(error.code(), timeout))
            raise UpstreamError(service, error.code(), error.details() or "", timeout) from None
        except BaseException:
            self._settle(breaker, probe, None)
            raise
        self._settle(breaker, probe, False)
        return messages

    @staticmethod
    def _settle(breaker: Breaker | None, probe: bool, failed: bool | None) -> None:
        if breaker is None:
            return
        if failed is None:
            breaker.release(probe)
        else:
            breaker.record(failed, probe)

    async def erase(self, service: str, customer_id: str) -> int:
        response: common_pb2.EraseCustomerResponse = await self.call(
            service, self.erasers[service], common_pb2.EraseCustomerRequest(customer_id=customer_id)
        )
        return int(response.records_deleted)

    async def check_health(self, service: str) -> Health:
        """The upstream's health check within the health deadline (not through its breaker: it is the probe
        an operator wants even while calls are refused); an open circuit is reported as such."""
        upstream = self.upstreams[service]
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAMES[service])
        started = time.perf_counter()
        try:
            response = await upstream.health.Check(request, timeout=self.health_timeout_s)
        except grpc.aio.AioRpcError as error:
            latency = time.perf_counter() - started
            health = Health("unreachable", f"{error.code().name}: {error.details() or ''}".strip(), latency)
        else:
            latency = time.perf_counter() - started
            status = str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
            health = Health("serving", None, latency) if status == "SERVING" else Health("not_serving", status, latency)
        if upstream.breaker.state is State.OPEN:
            retry_in = upstream.breaker.retry_in_s()
            return Health("circuit_open", f"calls refused for {retry_in:.0f} s more; health check: "
                          f"{health.detail or 'SERVING'}", latency)
        return health


def _open(name: str, address: str, settings: GatewaySettings) -> Upstream:
    options = [*CHANNEL_OPTIONS,
               ("grpc.enable_retries", 1),
               ("grpc.service_config", service_config(name, settings.read_retries, settings.retry_backoff_s))]
    channel = grpc.aio.insecure_channel(address, options=options)
    policy = Policy(failures=settings.breaker_failures, window=settings.breaker_window,
                    ratio=settings.breaker_failure_ratio, cooldown_s=settings.breaker_cooldown_s)
    breaker = Breaker(name, policy)
    # Read at every scrape, so the gauge shows an open breaker turning half-open without a call.
    CIRCUIT_STATE.labels(name).set_function(lambda: int(breaker.state))
    return Upstream(name, address, channel, health_pb2_grpc.HealthStub(channel), breaker)
