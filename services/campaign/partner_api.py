"""The partner HTTP API (/partner/v1/): pull leases and acks, receipts and responses, served by the campaign process.

A partner authenticates with its API key (`Authorization: Bearer <key>`) and sees only its own
deliveries: a key of another partner's message is answered 403. Batches answer per item, so one bad
item never drops the good ones: 200 when every item was taken, 207 when some were not, 403 when every
item belonged to someone else. (No `from __future__ import annotations` here: FastAPI resolves the
dependency annotations of the routes defined inside create_partner_app at run time.)
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
import uvicorn
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from services.campaign import signing
from services.campaign.clients import Contacts
from services.campaign.metrics import RESPONSES
from services.campaign.policy import CONSENT_FOR
from services.campaign.store import (
    PENDING,
    QUEUED,
    RECEIPT_COLUMNS,
    SENT,
    CampaignStore,
    KeyedDelivery,
    PartnerInfo,
)
from services.common.clock import parse_instant
from services.common.errors import Unavailable

log = logging.getLogger(__name__)
MAX_ITEMS = 5000
MAX_LEASE_S = 3600
OK, DUPLICATE, NOT_FOUND, FORBIDDEN, INVALID, CONFLICT, RETRY = (
    "ok", "duplicate", "not_found", "forbidden", "invalid", "conflict", "retry")
# Receipts make sense for a message the partner has, or is about to confirm (a push still being recorded).
RECEIPT_STATES = frozenset({SENT, PENDING, QUEUED})
ALL_CONTACT_CHANNELS = ("email", "sms", "push")


class LeaseIn(BaseModel):
    max_messages: int = Field(default=0, ge=0, le=MAX_ITEMS, description="0: the partner's batch size.")
    lease_seconds: float = Field(default=0, ge=0, le=MAX_LEASE_S, description="0: the service's default.")


class ApiProblem(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _items(body: bytes, field: str) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ApiProblem(400, "body is not JSON") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get(field), list):
        raise ApiProblem(400, f'body must be {{"{field}": [...]}}')
    items: list[Any] = parsed[field]
    if len(items) > MAX_ITEMS:
        raise ApiProblem(413, f"at most {MAX_ITEMS} {field} a request")
    return items


def _answer(results: list[dict[str, str]]) -> Response:
    statuses = {r["status"] for r in results}
    if results and statuses == {FORBIDDEN}:
        code = 403
    elif statuses <= {OK, DUPLICATE}:
        code = 200
    else:
        code = 207
    return Response(orjson.dumps({"results": results}), status_code=code, media_type="application/json")


def create_partner_app(store: CampaignStore, contacts: Contacts, clock: Callable[[], datetime],
                       wall: Callable[[], datetime], default_lease_s: float) -> FastAPI:
    app = FastAPI(title="Marksman partner API", version="1", docs_url="/partner/v1/docs",
                  openapi_url="/partner/v1/openapi.json", redoc_url=None)

    @app.exception_handler(ApiProblem)
    async def problem(_request: Request, error: ApiProblem) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    def partner(authorization: Annotated[str, Header()] = "") -> PartnerInfo:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiProblem(401, "missing API key: send Authorization: Bearer <key>")
        found = store.partner_by_key(signing.key_hash(key.strip()))
        if found is None:
            raise ApiProblem(401, "unknown API key")
        return found

    Partner = Annotated[PartnerInfo, Depends(partner)]

    def owned(found: dict[str, KeyedDelivery], key: str, who: PartnerInfo) -> tuple[KeyedDelivery | None, str]:
        delivery = found.get(key)
        if delivery is None:
            return None, NOT_FOUND
        if delivery.partner_id != who.id:
            return None, FORBIDDEN
        return delivery, OK

    @app.post("/partner/v1/leases", summary="Lease a batch of this partner's queued messages")
    def lease(body: LeaseIn, who: Partner) -> dict[str, Any]:
        if who.mode != "pull":
            raise ApiProblem(409, f"partner {who.name} is a push partner: its messages are POSTed to its endpoint")
        now = wall()
        until = now + timedelta(seconds=body.lease_seconds or default_lease_s)
        leased = store.lease(who.id, body.max_messages or who.batch_size, now, until)
        return {"lease_expires_at": until.isoformat(), "messages": [orjson.loads(r.payload) for r in leased]}

    @app.post("/partner/v1/acks", summary="Acknowledge leased messages: accepted (sent) or rejected (failed)")
    async def acks(request: Request, who: Partner) -> Response:
        items = _items(await request.body(), "acks")
        return _answer(await _in_thread(lambda: _acks(items, who)))

    def _acks(items: list[Any], who: PartnerInfo) -> list[dict[str, str]]:
        keys = [i.get("idempotency_key") for i in items if isinstance(i, dict)]
        found = store.by_keys([k for k in keys if isinstance(k, str)])
        results: list[dict[str, str]] = []
        accepted: list[int] = []
        rejected: dict[int, str] = {}
        pending: list[tuple[int, KeyedDelivery]] = []
        for item in items:
            key = item.get("idempotency_key") if isinstance(item, dict) else None
            status = item.get("status") if isinstance(item, dict) else None
            if not isinstance(key, str) or status not in ("accepted", "rejected"):
                results.append({"idempotency_key": key if isinstance(key, str) else "", "status": INVALID,
                                "reason": 'each ack needs idempotency_key and status "accepted" or "rejected"'})
                continue
            delivery, verdict = owned(found, key, who)
            results.append({"idempotency_key": key, "status": verdict, "reason": ""})
            if delivery is None:
                continue
            pending.append((len(results) - 1, delivery))
            if status == "accepted":
                accepted.append(delivery.id)
            else:
                rejected[delivery.id] = str(item.get("reason") or "rejected by the partner")[:500]
        changed = store.ack(who.id, accepted, rejected, clock())
        for position, delivery in pending:
            if delivery.id not in changed:
                already = delivery.state in (SENT, "failed")
                results[position]["status"] = DUPLICATE if already else CONFLICT
                if not already:
                    results[position]["reason"] = f"the message is {delivery.state}, not leased"
        return results

    @app.post("/partner/v1/receipts",
              summary="Report delivered, opened, clicked or unsubscribed per message (idempotent)")
    async def receipts(request: Request, who: Partner) -> Response:
        items = _items(await request.body(), "receipts")
        return _answer(await _in_thread(lambda: _receipts(items, who)))

    def _receipts(items: list[Any], who: PartnerInfo) -> list[dict[str, str]]:
        keys = [i.get("idempotency_key") for i in items if isinstance(i, dict)]
        found = store.by_keys([k for k in keys if isinstance(k, str)])
        results = []
        for item in items:
            key = item.get("idempotency_key") if isinstance(item, dict) else None
            event = item.get("event") if isinstance(item, dict) else None
            if not isinstance(key, str) or event not in RECEIPT_COLUMNS:
                results.append({"idempotency_key": key if isinstance(key, str) else "", "status": INVALID,
                                "reason": "each receipt needs idempotency_key and event: "
                                          + ", ".join(RECEIPT_COLUMNS)})
                continue
            try:
                at = parse_instant(item["occurred_at"]) if item.get("occurred_at") else clock()
            except (TypeError, ValueError):
                results.append({"idempotency_key": key, "status": INVALID, "reason": "occurred_at is not an ISO time"})
                continue
            delivery, verdict = owned(found, key, who)
            if delivery is None:
                results.append({"idempotency_key": key, "status": verdict, "reason": ""})
            elif delivery.state not in RECEIPT_STATES:
                results.append({"idempotency_key": key, "status": CONFLICT,
                                "reason": f"the message was never sent ({delivery.state})"})
            else:
                results.append({"idempotency_key": key, "status": _receipt(delivery, event, at), "reason": ""})
        return results

    def _receipt(delivery: KeyedDelivery, event: str, at: datetime) -> str:
        if delivery.receipts.get(event) is not None:
            return DUPLICATE
        if event == "unsubscribed":
            # Consent first: if profile cannot be reached the receipt is not stamped, and a retry does both.
            needed = CONSENT_FOR.get(delivery.channel)
            try:
                contacts.revoke(delivery.customer_id, [needed] if needed else list(ALL_CONTACT_CHANNELS), at)
            except Unavailable:
                return RETRY
        if not store.set_receipt(delivery.id, event, at):
            return DUPLICATE
        RESPONSES.labels(event).inc()
        return OK

    @app.get("/partner/v1/deliveries/{key}", summary="One of this partner's messages")
    def delivery(key: str, who: Partner) -> dict[str, Any]:
        found, verdict = owned(store.by_keys([key]), key, who)
        if found is None:
            raise ApiProblem(403 if verdict == FORBIDDEN else 404,
                             "this message belongs to another partner" if verdict == FORBIDDEN else "no such message")
        return {"idempotency_key": key, "state": found.state, "channel": found.channel,
                **{f"{event}_at": (v.isoformat() if v else None) for event, v in found.receipts.items()}}

    return app


async def _in_thread(work: Callable[[], list[dict[str, str]]]) -> list[dict[str, str]]:
    # The store is synchronous: its work runs on the thread pool, never on the event loop.
    return await run_in_threadpool(work)


class PartnerApi:
    """Serves the partner app with uvicorn on a thread of the campaign process."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                                    lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, name="partner-api", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the partner API did not start (is its port free?)")
            time.sleep(0.02)
        log.info("partner API serving", extra={"port": self.port})

    @property
    def port(self) -> int:
        sockets: Sequence[Any] = self.server.servers[0].sockets if self.server.servers else []
        return int(sockets[0].getsockname()[1]) if sockets else 0

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
