"""Per-request access to what the app holds: the upstream clients and the settings."""

from __future__ import annotations

from fastapi import Request

from services.gateway.clients import Upstreams
from services.gateway.config import GatewaySettings
from services.gateway.errors import ApiError


def upstreams(request: Request) -> Upstreams:
    found: Upstreams | None = getattr(request.app.state, "upstreams", None)
    if found is None:  # only before the lifespan has started (or after it ended)
        raise ApiError(503, "gateway is starting or stopping: no upstream connections")
    return found


def settings(request: Request) -> GatewaySettings:
    value: GatewaySettings = request.app.state.settings
    return value
