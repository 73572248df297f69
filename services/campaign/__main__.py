"""Runs the campaign service: settings -> store -> clients -> dispatch workers, partner API, gRPC server."""

from __future__ import annotations

import logging

import grpc
from marksman.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from marksman.profile.v1 import profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2_grpc
from marksman.segment.v1 import segment_pb2_grpc

from services.campaign.campaigns import Campaigns
from services.campaign.clients import (
    NoRecommendations,
    ProfileContacts,
    Recommendations,
    RecommendItems,
    SegmentAudiences,
)
from services.campaign.config import CampaignSettings
from services.campaign.dispatch import Dispatcher, DispatchSettings, wall_clock
from services.campaign.estimating import Estimator
from services.campaign.partner_api import PartnerApi, create_partner_app
from services.campaign.pusher import Pusher
from services.campaign.reporting import ProfileOrders, Reports
from services.campaign.server import CampaignServicer
from services.campaign.store import CampaignStore
from services.common import clock, logs
from services.common.db import is_sqlite, make_engine
from services.common.grpc_server import SERVER_OPTIONS, Registration, serve

log = logging.getLogger(__name__)


def main() -> None:
    settings = CampaignSettings()
    logs.configure("campaign", settings.log_level)
    engine = make_engine(settings.resolved_database_url())
    store = CampaignStore(engine)
    store.migrate()
    channels: list[grpc.Channel] = []

    def channel(address: str) -> grpc.Channel:
        # Round robin over every address of a target ("ipv4:h:p1,h:p2"): send-time lookups are spread
        # over all profile processes.
        opened = grpc.insecure_channel(address, options=[*SERVER_OPTIONS[:2], ("grpc.lb_policy_name", "round_robin")])
        channels.append(opened)
        return opened

    if not settings.profile_addr:
        raise SystemExit("MARKSMAN_CAMPAIGN_PROFILE_ADDR is required: consent is checked before every message")
    profile = profile_pb2_grpc.ProfileServiceStub(channel(settings.profile_addr))
    contacts = ProfileContacts(profile, settings.upstream_timeout_s)
    orders = ProfileOrders(profile, settings.stream_timeout_s)
    audiences = (SegmentAudiences(segment_pb2_grpc.SegmentServiceStub(channel(settings.segment_addr)),
                                  settings.stream_timeout_s) if settings.segment_addr else None)
    recommendations: Recommendations = (
        RecommendItems(recommend_pb2_grpc.RecommendServiceStub(channel(settings.recommend_addr)),
                       settings.upstream_timeout_s, settings.lookup_concurrency)
        if settings.recommend_addr else NoRecommendations())
    workers = settings.workers
    if is_sqlite(engine) and workers > 1:
        # SQLite has one writer: more workers would only queue on it (PostgreSQL shares with SKIP LOCKED).
        log.info("one dispatch worker on SQLite", extra={"configured": workers})
        workers = 1
    pusher = Pusher(settings.partner_timeout_s)
    dispatcher = Dispatcher(store, contacts, recommendations, pusher, clock.now, DispatchSettings(
        claim_size=settings.claim_size, lease_s=settings.lease_s, poll_s=settings.poll_s,
        max_attempts=settings.max_attempts, backoff_base_s=settings.backoff_base_s,
        backoff_max_s=settings.backoff_max_s, in_flight=settings.in_flight))
    partner_api = None
    if settings.partner_port >= 0:
        partner_api = PartnerApi(create_partner_app(store, contacts, clock.now, wall_clock, settings.pull_lease_s),
                                 settings.host, settings.partner_port)
        partner_api.start()
    dispatcher.start(workers)
    campaigns = Campaigns(store, audiences, clock.now, wall_clock)
    reports = Reports(store, orders)

    def stop() -> None:
        dispatcher.stop()
        if partner_api is not None:
            partner_api.stop()
        pusher.close()
        for opened in channels:
            opened.close()

    serve(
        "campaign",
        [Registration(campaign_pb2_grpc.add_CampaignServiceServicer_to_server,
                      CampaignServicer(campaigns, store, reports.report, clock.now, compare=reports.compare,
                                       estimator=Estimator(audiences)),
                      campaign_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name)],
        host=settings.host, port=settings.grpc_port, metrics_port=settings.metrics_port,
        workers=settings.grpc_workers, grace=settings.shutdown_grace_s, on_stop=stop,
    )


if __name__ == "__main__":
    main()
