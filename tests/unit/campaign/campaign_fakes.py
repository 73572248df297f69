"""Fake upstreams for campaign tests, served over real gRPC: profile (customers, consent) and segment (members)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.campaign.campaigns import Campaigns
from services.campaign.clients import SegmentAudiences
from services.campaign.estimating import Estimator
from services.campaign.reporting import ProfileOrders, Reports
from services.campaign.server import CampaignServicer
from services.campaign.store import CampaignStore
from services.common import protoenums as pe
from services.common.db import make_engine
from services.common.grpc_server import Registration, RunningServer, start


def customer(customer_id: str, *, email: bool = True, sms: bool = False, time_zone: str = "Europe/London",
             name: str = "Ann") -> profile_pb2.Customer:
    consents = [profile_pb2.Consent(channel=pe.to_number(pe.CONTACT_CHANNEL, channel), granted=granted)
                for channel, granted in (("email", email), ("sms", sms))]
    return profile_pb2.Customer(customer_id=customer_id, name=name, email=f"{customer_id}@example.com",
                                phone="+447700900123", time_zone=time_zone, consents=consents)


@dataclass
class FakeProfile(profile_pb2_grpc.ProfileServiceServicer):
    customers: dict[str, profile_pb2.Customer] = field(default_factory=dict)
    lookups: int = 0
    exports: int = 0
    # ids per GetCustomers call
    batch_sizes: list[int] = field(default_factory=list)
    unavailable: bool = False
    revoked: list[tuple[str, str]] = field(default_factory=list)
    interactions: list[profile_pb2.Interaction] = field(default_factory=list)
    # customer id -> preferred sales channel ("marketplace"), answered when asked with_sales_channels
    sales_channels: dict[str, str] = field(default_factory=dict)
    # with_sales_channels of each GetCustomers call
    asked_sales_channels: list[bool] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def GetCustomer(self, request: profile_pb2.GetCustomerRequest, context: grpc.ServicerContext) -> profile_pb2.GetCustomerResponse:
        with self._lock:
            self.lookups += 1
            found = self.customers.get(request.customer_id)
        if self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
        return profile_pb2.GetCustomerResponse(customer=found)

    def GetCustomers(self, request: profile_pb2.GetCustomersRequest, context: grpc.ServicerContext) -> profile_pb2.GetCustomersResponse:
        if not 1 <= len(request.customer_ids) <= 1000:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "customer_ids must hold 1 to 1,000 ids")
        with self._lock:
            self.lookups += 1
            self.batch_sizes.append(len(request.customer_ids))
            self.asked_sales_channels.append(request.with_sales_channels)
            found = [self.customers[cid] for cid in request.customer_ids if cid in self.customers]
        if self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        channels = {c.customer_id: pe.to_number(pe.SALES_CHANNEL, self.sales_channels[c.customer_id])
                    for c in found if request.with_sales_channels and c.customer_id in self.sales_channels}
        return profile_pb2.GetCustomersResponse(
            customers=found, not_found=[cid for cid in request.customer_ids if cid not in self.customers],
            sales_channels=channels)

    def UpdateConsent(self, request: profile_pb2.UpdateConsentRequest, context: grpc.ServicerContext) -> profile_pb2.UpdateConsentResponse:
        if self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        with self._lock:
            found = self.customers.get(request.customer_id)
            if found is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "no such customer")
            for change in request.consents:
                channel = pe.to_name(pe.CONTACT_CHANNEL, change.channel) or ""
                self.revoked.append((request.customer_id, channel))
                kept = [c for c in found.consents if c.channel != change.channel]
                del found.consents[:]
                found.consents.extend([*kept, profile_pb2.Consent(channel=change.channel, granted=change.granted)])
        return profile_pb2.UpdateConsentResponse(consents=found.consents)

    def ExportInteractions(self, request: profile_pb2.ExportInteractionsRequest, context: grpc.ServicerContext) -> Iterator[profile_pb2.ExportInteractionsResponse]:
        self.exports += 1
        size = request.page_size or 1000
        for first in range(0, max(len(self.interactions), 1), size):
            yield profile_pb2.ExportInteractionsResponse(interactions=self.interactions[first : first + size],
                                                         next_cursor=str(first + size))

    def order(self, order_id: str, customer_id: str, at: datetime, *line_amounts: int) -> None:
        stamp = Timestamp()
        stamp.FromDatetime(at)
        for amount in line_amounts:
            self.interactions.append(profile_pb2.Interaction(
                customer_id=customer_id, sku="sku", type=profile_pb2.EVENT_TYPE_ORDER, quantity=1,
                amount_minor=amount, occurred_at=stamp, event_id=order_id))

    def set_consent(self, customer_id: str, channel: str, granted: bool) -> None:
        with self._lock:
            found = self.customers[customer_id]
            number = pe.to_number(pe.CONTACT_CHANNEL, channel)
            kept = [c for c in found.consents if c.channel != number]
            del found.consents[:]
            found.consents.extend([*kept, profile_pb2.Consent(channel=number, granted=granted)])

    def granted(self, customer_id: str, channel: str) -> bool:
        number = pe.to_number(pe.CONTACT_CHANNEL, channel)
        return any(c.granted for c in self.customers[customer_id].consents if c.channel == number)


@dataclass
class FakeSegment(segment_pb2_grpc.SegmentServiceServicer):
    members: dict[str, list[str]] = field(default_factory=dict)
    version: int = 7
    # A model audience's member scores, in member order (a rule segment has none).
    scores: dict[str, list[float]] = field(default_factory=dict)

    def StreamMembers(self, request: segment_pb2.StreamMembersRequest, context: grpc.ServicerContext) -> Iterator[segment_pb2.StreamMembersResponse]:
        if request.name not in self.members:
            context.abort(grpc.StatusCode.NOT_FOUND, f"there is no segment named {request.name!r}")
        ids = self.members[request.name]
        size = request.page_size or 1000
        for first in range(0, max(len(ids), 1), size):
            yield segment_pb2.StreamMembersResponse(customer_ids=ids[first : first + size], version=self.version,
                                                    scores=self.scores.get(request.name, [])[first : first + size])


def serve_fakes(profile: FakeProfile, segment: FakeSegment) -> RunningServer:
    return start("fakes", [
        Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server, profile, "marksman.profile.v1.ProfileService"),
        Registration(segment_pb2_grpc.add_SegmentServiceServicer_to_server, segment, "marksman.segment.v1.SegmentService"),
    ], metrics_port=None, workers=16)


@dataclass
class RunningCampaign:
    stub: campaign_pb2_grpc.CampaignServiceStub
    store: CampaignStore
    profile: FakeProfile
    segment: FakeSegment


@contextmanager
def running_campaign(database: Path, now: datetime) -> Iterator[RunningCampaign]:
    """The campaign servicer (SQLite store, clock at `now`) over real gRPC, its upstreams the fakes."""
    profile, segment = FakeProfile(), FakeSegment()
    fakes = serve_fakes(profile, segment)
    upstream = grpc.insecure_channel(f"127.0.0.1:{fakes.port}")
    store = CampaignStore(make_engine(f"sqlite:///{database}"))
    store.migrate()
    audiences = SegmentAudiences(segment_pb2_grpc.SegmentServiceStub(upstream), 10)
    campaigns = Campaigns(store, audiences, lambda: now, lambda: datetime.now(UTC))
    reports = Reports(store, ProfileOrders(profile_pb2_grpc.ProfileServiceStub(upstream), 10))
    servicer = CampaignServicer(campaigns, store, reports.report, lambda: now, compare=reports.compare,
                                estimator=Estimator(audiences))
    server = start("campaign", [Registration(campaign_pb2_grpc.add_CampaignServiceServicer_to_server, servicer,
                                             "marksman.campaign.v1.CampaignService")], metrics_port=None, workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield RunningCampaign(campaign_pb2_grpc.CampaignServiceStub(channel), store, profile, segment)
    finally:
        channel.close()
        server.stop(0)
        upstream.close()
        fakes.stop(0)
