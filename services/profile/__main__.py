"""Runs the profile service: settings -> store -> portrait updater -> gRPC server."""

from __future__ import annotations

from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common import clock, gctune, logs
from services.common.db import make_engine
from services.common.grpc_server import Registration, serve
from services.profile.config import ProfileSettings
from services.profile.portraits import PortraitKeeper, Updater
from services.profile.server import ProfileServicer
from services.profile.store import ProfileStore


def main() -> None:
    settings = ProfileSettings()
    logs.configure("profile", settings.log_level)
    store = ProfileStore(make_engine(settings.resolved_database_url()))
    store.migrate()
    keeper = PortraitKeeper(store, clock.now)
    updater = Updater(keeper, interval_s=settings.update_interval_s, batch_size=settings.update_batch_size,
                      recompute_interval_s=settings.recompute_interval_s, max_lag_s=settings.update_max_lag_s,
                      max_idle_s=settings.update_max_idle_s)
    servicer = ProfileServicer(store, keeper, clock.now, on_ingest=updater.wake)
    if settings.background_work:
        updater.start()
    gctune.tune()
    serve(
        "profile",
        [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server, servicer,
                      profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name)],
        host=settings.host, port=settings.grpc_port, metrics_port=settings.metrics_port,
        workers=settings.grpc_workers, grace=settings.shutdown_grace_s,
        on_stop=updater.stop if settings.background_work else None,
    )


if __name__ == "__main__":
    main()
