"""Fakes of the gateway's upstreams (a ProfileService and a SegmentService) and request helpers."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.gateway.clients import SERVICE_NAMES

NOW = datetime(2011, 12, 10, tzinfo=UTC)
SLOW_CUSTOMER = "slow-customer"
SLOW_SECONDS = 4.0


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class FakeProfile(profile_pb2_grpc.ProfileServiceServicer):
    """Keeps what it is sent; answers like the real service would, for the gateway's purposes."""

    def __init__(self) -> None:
        self.customers: dict[str, profile_pb2.Customer] = {}
        self.events: dict[str, profile_pb2.Event] = {}
        self.ingest_requests: list[profile_pb2.IngestEventsRequest] = []
        self.erased: list[str] = []
        self.drop_results = False
        # customer id -> portrait traits to answer with (price_sensitivity ...)
        self.traits: dict[str, dict[str, float]] = {}

    def UpsertCustomers(self, request: Any, context: Any) -> Any:
        results = []
        for customer in request.customers:
            if customer.region == "Atlantis":
                results.append(profile_pb2.UpsertResult(customer_id=customer.customer_id, ok=False,
                                                        error="unknown region 'Atlantis'"))
                continue
            created = customer.customer_id not in self.customers
            self.customers[customer.customer_id] = customer
            results.append(profile_pb2.UpsertResult(customer_id=customer.customer_id, ok=True, created=created))
        return profile_pb2.UpsertCustomersResponse(results=results)

    def IngestEvents(self, request: Any, context: Any) -> Any:
        self.ingest_requests.append(request)
        results = []
        for index, event in enumerate(request.events):
            occurred = event.occurred_at.ToDatetime(tzinfo=UTC)
            if occurred > NOW + timedelta(hours=24):
                status, reason = profile_pb2.INGEST_STATUS_REJECTED, "occurred_at is more than 24 hours ahead"
            elif event.event_id in self.events:
                status, reason = profile_pb2.INGEST_STATUS_DUPLICATE, ""
            else:
                self.events[event.event_id] = event
                status, reason = profile_pb2.INGEST_STATUS_ACCEPTED, ""
            results.append(profile_pb2.IngestResult(event_id=event.event_id, status=status, reason=reason, index=index))
        if self.drop_results:
            results = results[1:]
        # Results in reverse order: the gateway must place them by index, not by position.
        return profile_pb2.IngestEventsResponse(results=list(reversed(results)))

    def GetPortrait(self, request: Any, context: Any) -> Any:
        if request.customer_id == SLOW_CUSTOMER:
            time.sleep(SLOW_SECONDS)
        if request.customer_id not in self.customers:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no customer {request.customer_id!r}")
        orders = [e for e in self.events.values() if e.customer_id == request.customer_id and e.type == 4]
        portrait = profile_pb2.Portrait(
            customer_id=request.customer_id,
            computed_at=ts(NOW),
            has_orders=bool(orders),
            recency_days=3 if orders else -1,
            frequency=len(orders),
            monetary=common_pb2.Money(amount_minor=sum(
                line.quantity * line.unit_price_minor for e in orders for line in e.lines), currency="GBP"),
            lifecycle_stage=common_pb2.LIFECYCLE_STAGE_ACTIVE if orders else common_pb2.LIFECYCLE_STAGE_UNSPECIFIED,
            purchasing_power_by_category=[profile_pb2.CategoryPower(category="Home", percentile=0.5)],
            top_categories=["Home"] if orders else [],
            preferred_payment_channel=(
                common_pb2.PAYMENT_CHANNEL_ALIPAY if orders else common_pb2.PAYMENT_CHANNEL_UNSPECIFIED),
            region=self.customers[request.customer_id].region,
            consents=self.customers[request.customer_id].consents,
        )
        for name, value in self.traits.get(request.customer_id, {}).items():
            setattr(portrait, name, value)
        return profile_pb2.GetPortraitResponse(portrait=portrait)

    def GetCustomerTotals(self, request: Any, context: Any) -> Any:
        if request.customer_id == SLOW_CUSTOMER:
            time.sleep(SLOW_SECONDS)
        if request.customer_id not in self.customers:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no customer {request.customer_id!r}")
        totals = []
        for since in request.since:
            orders = [e for e in self.events.values() if e.customer_id == request.customer_id and e.type == 4
                      and since.ToDatetime() <= e.occurred_at.ToDatetime()
                      and (not request.HasField("until") or e.occurred_at.ToDatetime() < request.until.ToDatetime())]
            spend = sum(line.quantity * line.unit_price_minor for e in orders for line in e.lines)
            totals.append(profile_pb2.CustomerTotals(
                since=since, net_spend=common_pb2.Money(amount_minor=spend, currency="GBP"), orders=len(orders)))
        portrait = self.GetPortrait(request, context).portrait if request.with_portrait else None
        return profile_pb2.GetCustomerTotalsResponse(totals=totals, portrait=portrait)

    def MergeIdentity(self, request: Any, context: Any) -> Any:
        if request.customer_id not in self.customers:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no customer {request.customer_id!r}")
        moved = sum(1 for e in self.events.values() if e.anonymous_id == request.anonymous_id)
        return profile_pb2.MergeIdentityResponse(events_moved=moved)

    def UpdateConsent(self, request: Any, context: Any) -> Any:
        if request.customer_id not in self.customers:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no customer {request.customer_id!r}")
        return profile_pb2.UpdateConsentResponse(consents=request.consents)

    def RecomputePortraits(self, request: Any, context: Any) -> Any:
        return profile_pb2.RecomputePortraitsResponse(customers=len(self.customers), seconds=0.25, computed_at=ts(NOW))

    def SummarizeBase(self, request: Any, context: Any) -> Any:
        return profile_pb2.SummarizeBaseResponse(
            customers=len(self.customers), customers_with_orders=1, orders=2, events=len(self.events),
            revenue=common_pb2.Money(amount_minor=12345, currency="GBP"),
            rfm_segments=[profile_pb2.SegmentSize(name="champions", customers=1)],
            lifecycle_stages=[profile_pb2.SegmentSize(name="active", customers=1)],
            pending_portraits=0,
        )

    def GetCustomer(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not used by the gateway")

    def StreamEvents(self, request_iterator: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not used by the gateway")

    def ExportPortraits(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not used by the gateway")

    def ExportInteractions(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not used by the gateway")

    def EraseCustomer(self, request: Any, context: Any) -> Any:
        self.erased.append(request.customer_id)
        existed = self.customers.pop(request.customer_id, None) is not None
        return common_pb2.EraseCustomerResponse(erased=existed, records_deleted=3 if existed else 0)


# The fake segment service's portraits: c-1 ... c-25; every valid rule selects all of them (the gateway only
# passes rules through, so what a rule means does not matter here, only how its answers travel).
SEGMENT_CUSTOMERS = [f"c-{n}" for n in range(1, 26)]
SEGMENT_TRAITS = {"recency_days", "frequency", "monetary", "lifecycle", "top_categories", "price_sensitivity",
                  "preferred_payment", "rfm_segment", "region"}
_RULE_WORDS = {"and", "or", "not", "in", "true", "false"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r'"[^"]*"')
_SEGMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def rule_problems(rule: str) -> list[segment_pb2.RuleProblem]:
    """Unknown traits (with a did-you-mean) at their 1-based line and column, as the real service words them."""
    if not rule.strip():
        return [segment_pb2.RuleProblem(line=1, column=1, message="the rule is empty")]
    problems = []
    for number, line in enumerate(rule.split("\n"), start=1):
        blanked = _QUOTED.sub(lambda m: " " * len(m[0]), line)
        for match in _IDENTIFIER.finditer(blanked):
            word = match[0]
            if word in SEGMENT_TRAITS or word in _RULE_WORDS or blanked[match.end():].lstrip().startswith("("):
                continue
            close = difflib.get_close_matches(word, sorted(SEGMENT_TRAITS), n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            problems.append(segment_pb2.RuleProblem(line=number, column=match.start() + 1,
                                                    message=f"unknown trait '{word}'{hint}"))
    return problems


class FakeSegment(segment_pb2_grpc.SegmentServiceServicer):
    """Segments in memory, with numbered versions of member lists; records deadlines and requests."""

    def __init__(self) -> None:
        self.segments: dict[str, segment_pb2.Segment] = {}
        # name -> versions oldest first, each with its members
        self.versions: dict[str, list[tuple[segment_pb2.SegmentVersion, list[str]]]] = {}
        self.portraits = list(SEGMENT_CUSTOMERS)
        self.erased: list[str] = []
        self.sync_requests: list[bool] = []
        self.member_requests: list[segment_pb2.StreamMembersRequest] = []
        # method name -> seconds left of the call's deadline (None: no deadline)
        self.deadlines: dict[str, float | None] = {}
        champions = segment_pb2.Segment(name="rfm_champions", kind=segment_pb2.SEGMENT_KIND_RULE,
                                        rule='rfm_segment == "champions"', description="RFM: champions",
                                        built_in=True, created_at=ts(NOW))
        self.segments[champions.name] = champions
        self.versions[champions.name] = []

    def _seen(self, method: str, context: Any) -> None:
        self.deadlines[method] = context.time_remaining()

    def _check(self, rule: str, context: Any) -> None:
        problems = rule_problems(rule)
        if problems:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "; ".join(f"line {p.line}, column {p.column}: {p.message}" for p in problems))

    def _segment(self, name: str, context: Any) -> segment_pb2.Segment:
        if name not in self.segments:
            context.abort(grpc.StatusCode.NOT_FOUND, f"there is no segment named '{name}'")
        return self.segments[name]

    def CreateSegment(self, request: Any, context: Any) -> Any:
        self._seen("CreateSegment", context)
        self._check(request.rule, context)
        if not _SEGMENT_NAME.match(request.name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad segment name {request.name!r}")
        if request.name in self.segments:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"a segment named '{request.name}' exists")
        segment = segment_pb2.Segment(name=request.name, kind=segment_pb2.SEGMENT_KIND_RULE, rule=request.rule,
                                      description=request.description, created_at=ts(NOW))
        self.segments[request.name] = segment
        self.versions[request.name] = []
        return segment_pb2.CreateSegmentResponse(segment=segment)

    def ValidateRule(self, request: Any, context: Any) -> Any:
        self._seen("ValidateRule", context)
        problems = rule_problems(request.rule)
        if problems:
            return segment_pb2.ValidateRuleResponse(valid=False, problems=problems)
        traits = sorted({m[0] for m in _IDENTIFIER.finditer(_QUOTED.sub("", request.rule))} & SEGMENT_TRAITS)
        return segment_pb2.ValidateRuleResponse(valid=True, traits=traits)

    def PreviewRule(self, request: Any, context: Any) -> Any:
        self._seen("PreviewRule", context)
        if not 0 <= request.sample_size <= 1000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "sample_size must be between 0 and 1000")
        self._check(request.rule, context)
        sample = sorted(self.portraits)[: request.sample_size or 10]
        return segment_pb2.PreviewRuleResponse(count=len(self.portraits), portraits=len(self.portraits),
                                               sample_customer_ids=sample)

    def RefreshSegment(self, request: Any, context: Any) -> Any:
        self._seen("RefreshSegment", context)
        segment = self._segment(request.name, context)
        if segment.rule == "broken":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"the stored rule of '{request.name}' no longer checks: line 1, column 1: unknown trait "
                          "'broken'")
        history = self.versions[request.name]
        members = sorted(self.portraits)
        version = segment_pb2.SegmentVersion(number=len(history) + 1, size=len(members),
                                             portraits=len(self.portraits), seconds=0.05, created_at=ts(NOW),
                                             rule=segment.rule)
        history.append((version, members))
        segment.current.CopyFrom(version)
        return segment_pb2.RefreshSegmentResponse(version=version)

    def GetSegment(self, request: Any, context: Any) -> Any:
        self._seen("GetSegment", context)
        segment = self._segment(request.name, context)
        versions = [v for v, _ in reversed(self.versions[request.name])]
        return segment_pb2.GetSegmentResponse(segment=segment, versions=versions)

    def ListSegments(self, request: Any, context: Any) -> Any:
        self._seen("ListSegments", context)
        return segment_pb2.ListSegmentsResponse(segments=[self.segments[n] for n in sorted(self.segments)])

    def StreamMembers(self, request: Any, context: Any) -> Any:
        self._seen("StreamMembers", context)
        self.member_requests.append(request)
        segment = self._segment(request.name, context)
        if request.page_token and not request.page_token.isdigit():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token is not a token this service gave out")
        history = self.versions[request.name]
        if request.version == 0 and not segment.HasField("current"):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"segment '{request.name}' has no version yet; refresh it first")
        number = request.version or segment.current.number
        if not 1 <= number <= len(history):
            context.abort(grpc.StatusCode.NOT_FOUND, f"segment '{request.name}' has no version {number}")
        members = history[number - 1][1]
        size, start = request.page_size or 1000, int(request.page_token or 0)
        end = len(members) if not request.limit else min(len(members), start + request.limit)
        while True:
            stop = min(start + size, end)
            more = stop < len(members)
            yield segment_pb2.StreamMembersResponse(customer_ids=members[start:stop], version=number,
                                                    next_page_token=str(stop) if more else "")
            start = stop
            if start >= end:
                return

    def ListCustomerSegments(self, request: Any, context: Any) -> Any:
        self._seen("ListCustomerSegments", context)
        held = [segment_pb2.CustomerSegment(name=name, version=history[-1][0].number)
                for name, history in sorted(self.versions.items())
                if history and request.customer_id in history[-1][1]]
        return segment_pb2.ListCustomerSegmentsResponse(segments=held)

    def SyncPortraits(self, request: Any, context: Any) -> Any:
        self._seen("SyncPortraits", context)
        self.sync_requests.append(request.full)
        return segment_pb2.SyncPortraitsResponse(received=len(self.portraits) if request.full else 3,
                                                 portraits=len(self.portraits), seconds=0.5)

    def EraseCustomer(self, request: Any, context: Any) -> Any:
        self._seen("EraseCustomer", context)
        self.erased.append(request.customer_id)
        deleted = 0
        for history in self.versions.values():
            for _, members in history:
                if request.customer_id in members:
                    members.remove(request.customer_id)
                    deleted += 1
        if request.customer_id in self.portraits:
            self.portraits.remove(request.customer_id)
            deleted += 1
        return common_pb2.EraseCustomerResponse(erased=deleted > 0, records_deleted=deleted)


@dataclass
class FakeServer:
    server: grpc.Server
    port: int
    profile: FakeProfile
    health: health.HealthServicer
    segment: FakeSegment
    stopped: bool = field(default=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.stop(0).wait()


def start_fake_server(segments: FakeSegment | None = None) -> FakeServer:
    """A real gRPC server on a free port: fake profile and segment services plus standard health."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    fake = FakeProfile()
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(fake, server)
    segments = segments or FakeSegment()
    segment_pb2_grpc.add_SegmentServiceServicer_to_server(segments, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAMES["profile"], SERVICE_NAMES["segment"]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return FakeServer(server, port, fake, health_servicer, segments)


@contextmanager
def serving(register: Callable[[Any, grpc.Server], None], servicer: Any) -> Iterator[str]:
    """One fake servicer on a real gRPC server on a free port (`register` is the add_..._to_server of its
    service); yields the address and stops the server afterwards."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    register(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def order(event_id: str, customer: str = "c-1", when: str = "2011-12-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id, "type": "order", "customer_id": customer, "occurred_at": when,
        "currency": "GBP", "payment_channel": "alipay", "sales_channel": "app",
        "lines": [{"sku": "85123A", "quantity": 2, "unit_price_minor": 255, "list_price_minor": 295,
                   "category": "Home"}],
    }
    event.update(extra)
    return event
