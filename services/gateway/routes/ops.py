"""Operations routes without auth: liveness, readiness (upstream health) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel, Field

from services.gateway.clients import HealthState, Upstreams
from services.gateway.deps import upstreams
from services.gateway.schemas import HealthOut

router = APIRouter(tags=["operations"])
SERVING = "serving"


class UpstreamHealthOut(BaseModel):
    state: HealthState = Field(
        description="serving; not_serving (the service says so, e.g. draining); unreachable (no answer to the "
                    "health check in time, or no connection); circuit_open (the gateway refuses calls to it "
                    "until its cool-down ends, whatever the health check says).")
    required: bool = Field(description="Whether the gateway is ready only when this upstream is.")
    latency_ms: float = Field(description="Time the health check took (up to the health deadline).")
    detail: str | None = Field(description="Why it is not serving: the health status or the call's error.")


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    upstreams: dict[str, UpstreamHealthOut] = Field(description="Each configured upstream by name.")
    degraded: list[str] = Field(
        description="Optional upstreams that are not serving: the gateway is ready, but the routes that need "
                    "them answer 503 or a labelled fallback.")


READY_EXAMPLE = {
    "status": "ready",
    "upstreams": {
        "profile": {"state": "serving", "required": True, "latency_ms": 1.4, "detail": None},
        "recommend": {"state": "circuit_open", "required": False, "latency_ms": 1000.2,
                      "detail": "calls refused for 7 s more; health check: UNAVAILABLE: failed to connect"},
    },
    "degraded": ["recommend"],
}
NOT_READY_EXAMPLE = {
    "status": "not ready",
    "upstreams": {"profile": {"state": "unreachable", "required": True, "latency_ms": 0.8,
                              "detail": "UNAVAILABLE: failed to connect to all addresses"}},
    "degraded": [],
}


@router.get("/healthz", summary="Liveness: the process answers", response_model=HealthOut)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: every required upstream is serving (optional ones may be degraded)",
    description="Asks each configured upstream's gRPC health check (concurrently, each within the health "
                "deadline) and reads its circuit breaker. 200 when every required upstream (profile by default, "
                "`MARKSMAN_GATEWAY_REQUIRED_UPSTREAMS`) is serving; optional ones that are not are listed in "
                "`degraded`.",
    response_model=ReadyOut,
    responses={
        200: {"content": {"application/json": {"example": READY_EXAMPLE}}},
        503: {"model": ReadyOut, "description": "A required upstream is not serving (see its state and detail).",
              "content": {"application/json": {"example": NOT_READY_EXAMPLE}}},
    },
)
async def readyz(clients: Annotated[Upstreams, Depends(upstreams)], response: Response) -> ReadyOut:
    names = list(clients.upstreams)
    checks = await asyncio.gather(*(clients.check_health(n) for n in names))
    found = {
        name: UpstreamHealthOut(
            state=check.state,
            required=name in clients.required,
            latency_ms=round(check.latency_s * 1000, 1),
            detail=check.detail,
        )
        for name, check in zip(names, checks, strict=True)
    }
    ready = all(h.state == SERVING for h in found.values() if h.required)
    degraded = [name for name, h in found.items() if not h.required and h.state != SERVING]
    response.status_code = 200 if ready else 503
    return ReadyOut(status="ready" if ready else "not ready", upstreams=found, degraded=degraded)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=Response,
            responses={200: {"description": "Every metric of the process.", "content": {CONTENT_TYPE_LATEST: {
                "schema": {"type": "string"},
                "example": "# TYPE marksman_http_requests_total counter\n"
                           'marksman_http_requests_total{method="GET",route="/healthz",status="200"} 3.0\n'}}}})
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
