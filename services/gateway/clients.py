"""gRPC channels to the upstream services: one per service, opened at start, every call with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marksman.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2, recommend_pb2_grpc
from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.gateway.config import GatewaySettings
from services.gateway.errors import UpstreamError

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
SERVICE_NAMES = {
    "profile": profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name,
    "segment": segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name,
    "recommend": recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name,
    "campaign": campaign_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name,
}
_ERASER_STUBS: dict[str, Callable[[grpc.aio.Channel], Any]] = {
    "segment": segment_pb2_grpc.SegmentServiceStub,
    "recommend": recommend_pb2_grpc.RecommendServiceStub,
    "campaign": campaign_pb2_grpc.CampaignServiceStub,
}

Response = TypeVar("Response")


@dataclass
class Upstream:
    name: str
    address: str
    channel: grpc.aio.Channel
    health: health_pb2_grpc.HealthStub


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

    @classmethod
    def connect(cls, settings: GatewaySettings) -> Upstreams:
        """Opens the channels (lazily connecting); call inside the running event loop."""
        profile = _open("profile", settings.profile_addr)
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
            upstreams[name] = _open(name, address)
            stubs[name] = _ERASER_STUBS[name](upstreams[name].channel)
            erasers[name] = stubs[name].EraseCustomer
        return cls(
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
        )

    async def close(self) -> None:
        await asyncio.gather(*(u.channel.close(None) for u in self.upstreams.values()))

    async def call(
        self,
        service: str,
        method: Callable[..., Awaitable[Response]],
        request: Any,
        *,
        timeout_s: float | None = None,
    ) -> Response:
        """Calls with a deadline; a failed call becomes UpstreamError naming the service."""
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            raise UpstreamError(service, error.code(), error.details() or "", timeout) from None

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
        try:
            return [message async for message in method(request, timeout=timeout)]
        except grpc.aio.AioRpcError as error:
            raise UpstreamError(service, error.code(), error.details() or "", timeout) from None

    async def erase(self, service: str, customer_id: str) -> int:
        response: common_pb2.EraseCustomerResponse = await self.call(
            service, self.erasers[service], common_pb2.EraseCustomerRequest(customer_id=customer_id)
        )
        return int(response.records_deleted)

    async def check_health(self, service: str) -> str:
        """"SERVING", or why not (status name or the call's error), within the health deadline."""
        upstream = self.upstreams[service]
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAMES[service])
        try:
            response = await upstream.health.Check(request, timeout=self.health_timeout_s)
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details() or ''}".strip()
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def _open(name: str, address: str) -> Upstream:
    channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    return Upstream(name, address, channel, health_pb2_grpc.HealthStub(channel))
