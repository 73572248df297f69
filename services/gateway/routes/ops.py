"""Operations routes without auth: liveness, readiness (upstream health) and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from services.gateway.clients import Upstreams
from services.gateway.deps import upstreams
from services.gateway.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["operations"])
SERVING = "SERVING"


@router.get("/healthz", summary="Liveness: the process answers", response_model=HealthOut)
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: every configured upstream reports SERVING",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Some upstream is not serving (listed)."}},
)
async def readyz(clients: Annotated[Upstreams, Depends(upstreams)], response: Response) -> ReadyOut:
    names = list(clients.upstreams)
    states = await asyncio.gather(*(clients.check_health(n) for n in names))
    found = dict(zip(names, states, strict=True))
    ready = all(s == SERVING for s in states)
    response.status_code = 200 if ready else 503
    return ReadyOut(status="ready" if ready else "not ready", upstreams=found)


@router.get("/metrics", summary="Prometheus metrics (text exposition format)", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
