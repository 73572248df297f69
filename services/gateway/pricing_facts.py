"""A customer's pricing facts from profile and segment, asked concurrently under a short deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.profile.v1 import profile_pb2
from marksman.segment.v1 import segment_pb2

from services.gateway.clients import Upstreams
from services.gateway.errors import UpstreamError
from services.gateway.pricing import SEGMENTS, TOTALS, TRAITS, CustomerFacts, Totals
from services.gateway.pricing_rules import TRAITS as TRAIT_NAMES

# Which upstream answers each source.
UPSTREAM = {TOTALS: "profile", TRAITS: "profile", SEGMENTS: "segment"}


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


class _Unknown(Exception):
    """The upstream does not know the customer: a new customer, not an outage."""


async def _ask(clients: Upstreams, service: str, method: Callable[..., Awaitable[Any]], request: Any,
               timeout_s: float) -> Any:
    try:
        return await clients.call(service, method, request, timeout_s=timeout_s)
    except UpstreamError as error:
        if error.code is grpc.StatusCode.NOT_FOUND:
            raise _Unknown from None
        raise


async def _totals(clients: Upstreams, customer_id: str, windows: list[int], at: datetime,
                  timeout_s: float) -> dict[int, Totals]:
    request = profile_pb2.GetCustomerTotalsRequest(
        customer_id=customer_id, since=[_stamp(at - timedelta(days=days)) for days in windows], until=_stamp(at))
    reply = await _ask(clients, "profile", clients.profile.GetCustomerTotals, request, timeout_s)
    return {days: Totals(t.net_spend.amount_minor, t.orders, t.net_spend.currency)
            for days, t in zip(windows, reply.totals, strict=True)}


async def _traits(clients: Upstreams, customer_id: str, timeout_s: float) -> dict[str, float]:
    request = profile_pb2.GetPortraitRequest(customer_id=customer_id)
    reply = await _ask(clients, "profile", clients.profile.GetPortrait, request, timeout_s)
    portrait = reply.portrait
    # A portrait without orders has no meaningful shares yet: offers see "no portrait".
    return {name: float(getattr(portrait, name)) for name in TRAIT_NAMES} if portrait.has_orders else {}


async def _segments(clients: Upstreams, customer_id: str, timeout_s: float) -> frozenset[str]:
    if clients.segment is None:
        raise UpstreamError("segment", grpc.StatusCode.UNAVAILABLE, "not configured (no MARKSMAN_GATEWAY_SEGMENT_ADDR)")
    request = segment_pb2.ListCustomerSegmentsRequest(customer_id=customer_id)
    reply = await _ask(clients, "segment", clients.segment.ListCustomerSegments, request, timeout_s)
    return frozenset(s.name for s in reply.segments)


async def gather(
    clients: Upstreams, customer_id: str, sources: set[str], windows: list[int], at: datetime, timeout_s: float
) -> tuple[CustomerFacts, dict[str, str]]:
    """The facts the sources name, and upstream -> why it could not answer (empty when all did)."""
    calls: dict[str, Awaitable[Any]] = {}
    if TOTALS in sources and windows:
        calls[TOTALS] = _totals(clients, customer_id, windows, at, timeout_s)
    if TRAITS in sources:
        calls[TRAITS] = _traits(clients, customer_id, timeout_s)
    if SEGMENTS in sources:
        calls[SEGMENTS] = _segments(clients, customer_id, timeout_s)
    answers = await asyncio.gather(*calls.values(), return_exceptions=True)
    found: dict[str, Any] = {}
    missing: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    known = True
    for source, answer in zip(calls, answers, strict=True):
        if isinstance(answer, _Unknown):
            known = False
            found[source] = {} if source != SEGMENTS else frozenset()
        elif isinstance(answer, UpstreamError):
            missing[source] = answer.error
            unavailable[UPSTREAM[source]] = answer.error
        elif isinstance(answer, BaseException):
            raise answer
        else:
            found[source] = answer
    facts = CustomerFacts(customer_id, known=known, totals=found.get(TOTALS), traits=found.get(TRAITS),
                          segments=found.get(SEGMENTS), missing=missing)
    return facts, unavailable
