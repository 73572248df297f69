"""Per-request access to what the app holds: the upstream clients and the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from marksman.segment.v1 import segment_pb2_grpc

from services.gateway.clients import Upstreams
from services.gateway.config import GatewaySettings
from services.gateway.errors import ApiError

if TYPE_CHECKING:
    SegmentStub = segment_pb2_grpc.SegmentServiceAsyncStub
else:  # the async stub class exists for type checkers only; FastAPI evaluates annotations at runtime
    SegmentStub = segment_pb2_grpc.SegmentServiceStub


def upstreams(request: Request) -> Upstreams:
    found: Upstreams | None = getattr(request.app.state, "upstreams", None)
    if found is None:  # only before the lifespan has started (or after it ended)
        raise ApiError(503, "gateway is starting or stopping: no upstream connections")
    return found


def segment(clients: Annotated[Upstreams, Depends(upstreams)]) -> SegmentStub:
    """The segment service's stub; 503 when no segment address is configured (not deployed here)."""
    if clients.segment is None:
        raise ApiError(503, "segment service not configured",
                       "the gateway has no MARKSMAN_GATEWAY_SEGMENT_ADDR; segment routes are off")
    return clients.segment


def settings(request: Request) -> GatewaySettings:
    value: GatewaySettings = request.app.state.settings
    return value
