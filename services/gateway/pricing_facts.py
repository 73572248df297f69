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


async def _profile(clients: Upstreams, customer_id: str, windows: list[int], traits: bool, at: datetime,
                   timeout_s: float) -> tuple[dict[int, Totals], dict[str, float]]:
    """Trailing totals and (when asked) the traits, in one call."""
    request = profile_pb2.GetCustomerTotalsRequest(
        customer_id=customer_id, since=[_stamp(at - timedelta(days=days)) for days in windows or [0]],
        until=_stamp(at), with_portrait=traits)
    reply = await _ask(clients, "profile", clients.profile.GetCustomerTotals, request, timeout_s)
    totals = {days: Totals(t.net_spend.amount_minor, t.orders, t.net_spend.currency)
              for days, t in zip(windows, reply.totals, strict=False)}
    portrait = reply.portrait
    # A portrait without orders has no meaningful shares yet: offers see "no portrait".
    found = {name: float(getattr(portrait, name)) for name in TRAIT_NAMES} if portrait.has_orders else {}
    return totals, found


async def _segments(clients: Upstreams, customer_id: str, timeout_s: float) -> frozenset[str]:
    if clients.segment is None:
        raise UpstreamError("segment", grpc.StatusCode.UNAVAILABLE, "not configured (no MARKSMAN_GATEWAY_SEGMENT_ADDR)")
    request = segment_pb2.ListCustomerSegmentsRequest(customer_id=customer_id)
    reply = await _ask(clients, "segment", clients.segment.ListCustomerSegments, request, timeout_s)
    return frozenset(s.name for s in reply.segments)


async def _settled(call: Awaitable[Any]) -> Any:
    """The call's answer, or the exception it raised (as gather(return_exceptions=True) gives it)."""
    try:
        return await call
    except Exception as error:
        return error


async def gather(
    clients: Upstreams, customer_id: str, sources: set[str], windows: list[int], at: datetime, timeout_s: float
) -> tuple[CustomerFacts, dict[str, str]]:
    """The facts the sources name, and upstream -> why it could not answer (empty when all did)."""
    calls: dict[str, Awaitable[Any]] = {}
    if TOTALS in sources or TRAITS in sources:
        calls["profile"] = _profile(clients, customer_id, windows, TRAITS in sources, at, timeout_s)
    if SEGMENTS in sources:
        calls["segment"] = _segments(clients, customer_id, timeout_s)
    if len(calls) == 1:  # the usual case: awaited in place, without the task gather wraps each call in
        answers: list[Any] = [await _settled(next(iter(calls.values())))]
    else:
        answers = await asyncio.gather(*calls.values(), return_exceptions=True)
    found: dict[str, Any] = {}
    missing: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    known = True
    for upstream, answer in zip(calls, answers, strict=True):
        served = [s for s in sorted(sources) if UPSTREAM[s] == upstream]
        if isinstance(answer, _Unknown):
            known = False
            found.update({s: frozenset() if s == SEGMENTS else {} for s in served})
        elif isinstance(answer, UpstreamError):
            missing.update({s: answer.error for s in served})
            unavailable[upstream] = answer.error
        elif isinstance(answer, BaseException):
            raise answer
        elif upstream == "profile":
            found[TOTALS], found[TRAITS] = answer
        else:
            found[SEGMENTS] = answer
    facts = CustomerFacts(customer_id, known=known, totals=found.get(TOTALS), traits=found.get(TRAITS),
                          segments=found.get(SEGMENTS), missing=missing)
    return facts, unavailable
