"""create_app(): the sample partner's HTTP API (signed batch intake, stats, messages, fault control)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.partner_sample import signing
from services.partner_sample.faults import Faults
from services.partner_sample.intake import BadBatch, Ledger, parse_batch


class FaultsIn(BaseModel):
    """Runtime fault settings; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    fail_next: int | None = Field(default=None, ge=0)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_for_s: float | None = Field(default=None, ge=0)
    delay_ms: int | None = Field(default=None, ge=0)
    delay_next: int | None = Field(default=None, ge=0)


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def create_app(secret: str, *, faults: Faults | None = None, ledger: Ledger | None = None,
               clock: Callable[[], float] = time.time, max_skew_s: float = signing.MAX_SKEW_S) -> FastAPI:
    """The receiver for partners signing with `secret`; `clock` is the wall clock that timestamps are checked against."""
    if not secret:
        raise ValueError("the receiver needs a non-empty secret")
    app = FastAPI(title="Marksman sample partner", version="1", docs_url="/docs", redoc_url=None)
    app.state.faults = faults = faults or Faults()
    app.state.ledger = ledger = ledger or Ledger(clock=clock)
    counters = ledger.counters

    @app.post("/messages")
    async def intake(request: Request) -> Response:
        """A signed batch (FORMAT.md): per-message results, or 401/400/413 for the whole request."""
        counters.requests += 1
        status = faults.failure()
        if status is not None:
            counters.failed_injected += 1
            return _json({"detail": "injected failure"}, status)
        body = await request.body()
        reason = signing.check(secret, request.headers.get(signing.TIMESTAMP_HEADER),
                               request.headers.get(signing.SIGNATURE_HEADER), body, clock(), max_skew_s)
        if reason is not None:
            counters.unauthorized += 1
            return _json({"detail": reason}, 401)
        try:
            messages = parse_batch(orjson.loads(body))
        except orjson.JSONDecodeError as error:
            counters.bad_requests += 1
            return _json({"detail": f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"}, 400)
        except BadBatch as error:
            counters.bad_requests += 1
            return _json({"detail": error.reason}, error.status)
        # No await between validation and recording: one event loop, so a batch is taken whole.
        results = ledger.take(messages)
        delay = faults.delay_s()
        if delay:
            await asyncio.sleep(delay)
        return _json({"results": results})

    @app.get("/stats")
    async def stats() -> Response:
        return _json(asdict(counters))

    @app.get("/messages")
    async def messages(campaign_id: str | None = None,
                       offset: Annotated[int, Query(ge=0)] = 0,
                       limit: Annotated[int | None, Query(ge=1)] = None) -> Response:
        return _json({"messages": ledger.listing(campaign_id, offset, limit)})

    @app.post("/faults")
    async def set_faults(change: FaultsIn) -> Response:
        faults.set(**change.model_dump())
        return _json(faults.describe())

    @app.get("/faults")
    async def get_faults() -> Response:
        return _json(faults.describe())

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    return app
