"""Runs the recommend service: settings -> store -> model files, serving, trainer, follower -> gRPC server."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import grpc
from marksman.profile.v1 import profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2, recommend_pb2_grpc

from services.common import clock, logs
from services.common.db import make_engine
from services.common.grpc_server import SERVER_OPTIONS, Registration, serve
from services.recommend.config import RecommendSettings
from services.recommend.erasure import Eraser
from services.recommend.follow import Follower
from services.recommend.modelfiles import ModelFiles
from services.recommend.popular import popularity_recommender
from services.recommend.recommender import Recommender
from services.recommend.server import RecommendServicer
from services.recommend.serving import Serving
from services.recommend.source import ProfileSource, Source
from services.recommend.store import RecommendStore
from services.recommend.training import Trainer


@dataclass(frozen=True, slots=True)
class Parts:
    servicer: RecommendServicer
    # Polls for versions promoted by other processes; None when follow_interval_s is 0.
    follower: Follower | None


def build(settings: RecommendSettings, store: RecommendStore, source: Source | None) -> RecommendServicer:
    """The servicer and what it needs, the serving version loaded from its files."""
    return parts(settings, store, source).servicer


def parts(settings: RecommendSettings, store: RecommendStore, source: Source | None) -> Parts:
    """The servicer, the serving version loaded from its files, and the follower (not started)."""

    def popular() -> Recommender | None:
        if source is None:
            return None
        return popularity_recommender(source.interactions(), store.items(), list(store.customer_features().values()))

    serving = Serving(popular, settings.popular_ttl_s)
    files = ModelFiles(settings.models_dir())
    guard = threading.Lock()
    trainer = Trainer(store, source, files, serving, guard, clock.now, currency=settings.default_currency,
                      versions_kept=settings.versions_kept)
    # Made before the first load, so an erasure during the load is seen by its first poll.
    follower = Follower(store, trainer, serving, guard, settings.follow_interval_s) if settings.follow_interval_s \
        else None
    trainer.load_serving()
    threads = settings.train_threads or os.cpu_count() or 1
    return Parts(RecommendServicer(store, serving, trainer, Eraser(store, files, serving, guard, clock.now),
                                   clock.now, threads), follower)


def main() -> None:
    settings = RecommendSettings()
    logs.configure("recommend", settings.log_level)
    store = RecommendStore(make_engine(settings.resolved_database_url()))
    store.migrate()
    store.fail_interrupted(clock.now())
    channel: grpc.Channel | None = None
    source: ProfileSource | None = None
    if settings.profile_addr:
        # The server's message limits apply to the pages profile sends us.
        channel = grpc.insecure_channel(settings.profile_addr, options=SERVER_OPTIONS[:2])
        source = ProfileSource(profile_pb2_grpc.ProfileServiceStub(channel), settings.profile_timeout_s,
                               settings.export_page_size)
    built = parts(settings, store, source)
    if built.follower is not None:
        built.follower.start()

    def stop() -> None:
        # A training run in flight is recorded as failed ("interrupted") at the next start.
        if built.follower is not None:
            built.follower.stop()
        if channel is not None:
            channel.close()

    serve(
        "recommend",
        [Registration(recommend_pb2_grpc.add_RecommendServiceServicer_to_server, built.servicer,
                      recommend_pb2.DESCRIPTOR.services_by_name["RecommendService"].full_name)],
        host=settings.host, port=settings.grpc_port, metrics_port=settings.metrics_port,
        workers=settings.grpc_workers, grace=settings.shutdown_grace_s, on_stop=stop,
    )


if __name__ == "__main__":
    main()
