"""Customer routes: upsert, portrait, consent, identity merge and erasure."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from marksman.profile.v1 import profile_pb2
from starlette.concurrency import run_in_threadpool

from services.common import clock
from services.gateway import convert
from services.gateway.auth import ADMIN, PLATFORM, require
from services.gateway.clients import Upstreams
from services.gateway.deps import upstreams
from services.gateway.errors import ApiError, UpstreamError
from services.gateway.openapi import errors
from services.gateway.schemas import (
    ID_PATTERN,
    ConsentsIn,
    ConsentsOut,
    CustomersIn,
    CustomersOut,
    ErasureOut,
    MergeIdentityIn,
    MergeIdentityOut,
    PortraitOut,
)

router = APIRouter(tags=["customers"])
CustomerId = Annotated[
    str, Path(pattern=ID_PATTERN, description="The platform's customer id.", examples=["17850"])
]
Clients = Annotated[Upstreams, Depends(upstreams)]


@router.post(
    "/v1/customers",
    summary="Create or update customers",
    response_model=CustomersOut,
    responses={207: {"model": CustomersOut, "description": "Some customers failed; see each result."},
               **errors(400, 401, 403, 413, 415, 422, 503)},
    dependencies=[Depends(require(PLATFORM))],
)
async def upsert_customers(body: CustomersIn, clients: Clients, response: Response) -> CustomersOut:
    now = clock.now()
    request = profile_pb2.UpsertCustomersRequest(customers=[convert.customer_to_proto(c, now) for c in body.customers])
    answer = await clients.call("profile", clients.profile.UpsertCustomers, request)
    out = convert.upserts_out(answer)
    response.status_code = 200 if all(r.ok for r in out.results) else 207
    return out


@router.get(
    "/v1/customers/{customer_id}/profile",
    summary="The customer's portrait (traits computed from their events)",
    response_model=PortraitOut,
    responses=errors(401, 403, 404, 422, 503),
    dependencies=[Depends(require(PLATFORM))],
)
async def get_portrait(customer_id: CustomerId, clients: Clients) -> PortraitOut:
    request = profile_pb2.GetPortraitRequest(customer_id=customer_id)
    response = await clients.call("profile", clients.profile.GetPortrait, request)
    return convert.portrait_out(response.portrait)


@router.put(
    "/v1/customers/{customer_id}/consent",
    summary="Record consent changes per contact channel",
    response_model=ConsentsOut,
    responses=errors(400, 401, 403, 404, 415, 422, 503),
    dependencies=[Depends(require(PLATFORM))],
)
async def update_consent(customer_id: CustomerId, body: ConsentsIn, clients: Clients) -> ConsentsOut:
    now = clock.now()
    request = profile_pb2.UpdateConsentRequest(
        customer_id=customer_id, consents=[convert.consent_to_proto(c, now) for c in body.consents]
    )
    response = await clients.call("profile", clients.profile.UpdateConsent, request)
    return ConsentsOut(customer_id=customer_id, consents=convert.consents_out(response.consents))


@router.post(
    "/v1/identities/merge",
    summary="Attach an anonymous/device id to a customer",
    response_model=MergeIdentityOut,
    responses=errors(400, 401, 403, 404, 409, 415, 422, 503),
    dependencies=[Depends(require(PLATFORM))],
)
async def merge_identity(body: MergeIdentityIn, clients: Clients) -> MergeIdentityOut:
    request = profile_pb2.MergeIdentityRequest(customer_id=body.customer_id, anonymous_id=body.anonymous_id)
    response = await clients.call("profile", clients.profile.MergeIdentity, request)
    return MergeIdentityOut(events_moved=response.events_moved)


@router.delete(
    "/v1/customers/{customer_id}",
    summary="Erase a customer in every service (idempotent: retry on 503)",
    response_model=ErasureOut,
    responses=errors(401, 403, 422, 502, 503),
    dependencies=[Depends(require(ADMIN))],
)
async def erase_customer(customer_id: CustomerId, clients: Clients, request: Request) -> ErasureOut:
    names = list(clients.erasers)
    outcomes = await asyncio.gather(*(clients.erase(n, customer_id) for n in names), return_exceptions=True)
    # The gateway's own records of the customer: quotes (deleted) and redemptions (kept without the id).
    erased: dict[str, int] = {"gateway": await run_in_threadpool(request.app.state.pricing.erase, customer_id)}
    failed: dict[str, str] = {}
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, UpstreamError):
            failed[name] = outcome.error if outcome.error.startswith(name) else f"{name} service: {outcome.error}"
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            erased[name] = outcome
    if failed:
        raise ApiError(
            503,
            f"erasure incomplete: {'; '.join(failed.values())}; retry (erasure is idempotent)",
            {"erased": erased, "failed": failed, "skipped": clients.not_deployed},
            {"Retry-After": "1"},
        )
    return ErasureOut(customer_id=customer_id, services=erased, skipped=list(clients.not_deployed))
