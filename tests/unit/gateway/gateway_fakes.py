"""Fakes of the gateway's upstreams (a ProfileService and a SegmentService) and request helpers."""

from __future__ import annotations

import time
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from marksman.segment.v1 import segment_pb2_grpc

from services.gateway.clients import SERVICE_NAMES

NOW = datetime(2011, 12, 10, tzinfo=UTC)
SLOW_CUSTOMER = "slow-customer"
SLOW_SECONDS = 2.0


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
        return profile_pb2.GetPortraitResponse(portrait=portrait)

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


class FakeSegment(segment_pb2_grpc.SegmentServiceServicer):
    def EraseCustomer(self, request: Any, context: Any) -> Any:
        return common_pb2.EraseCustomerResponse(erased=True, records_deleted=7)


@dataclass
class FakeServer:
    server: grpc.Server
    port: int
    profile: FakeProfile
    health: health.HealthServicer
    stopped: bool = field(default=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.stop(0).wait()


def start_fake_server() -> FakeServer:
    """A real gRPC server on a free port: fake profile and segment services plus standard health."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    fake = FakeProfile()
    profile_pb2_grpc.add_ProfileServiceServicer_to_server(fake, server)
    segment_pb2_grpc.add_SegmentServiceServicer_to_server(FakeSegment(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAMES["profile"], SERVICE_NAMES["segment"]):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return FakeServer(server, port, fake, health_servicer)


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
