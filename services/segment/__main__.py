"""Runs the segment service: settings -> store -> interactions, trainer, scorer -> segments (frame, built-ins)
-> periodic sync -> gRPC server."""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.common import clock, logs
from services.common.db import make_engine
from services.common.grpc_server import SERVER_OPTIONS, Registration, serve
from services.segment import interactions
from services.segment.config import SegmentSettings
from services.segment.interactions import InteractionCache
from services.segment.scoring import Scorer
from services.segment.segments import Segments
from services.segment.server import SegmentServicer
from services.segment.store import SegmentStore
from services.segment.sync import Export, PeriodicSync
from services.segment.training import Trainer


def _profile_exports(settings: SegmentSettings) -> tuple[Export, interactions.Export, grpc.Channel] | None:
    if not settings.profile_addr:
        return None
    # The server's message limits apply to the pages profile sends us.
    channel = grpc.insecure_channel(settings.profile_addr, options=SERVER_OPTIONS[:2])
    stub = profile_pb2_grpc.ProfileServiceStub(channel)

    def export(request: profile_pb2.ExportPortraitsRequest) -> Iterable[profile_pb2.ExportPortraitsResponse]:
        return stub.ExportPortraits(request, timeout=settings.profile_timeout_s)

    def export_interactions(
        request: profile_pb2.ExportInteractionsRequest,
    ) -> Iterable[profile_pb2.ExportInteractionsResponse]:
        return stub.ExportInteractions(request, timeout=settings.profile_timeout_s)

    return export, export_interactions, channel


def main() -> None:
    settings = SegmentSettings()
    logs.configure("segment", settings.log_level)
    store = SegmentStore(make_engine(settings.resolved_database_url()))
    store.migrate()
    exports = _profile_exports(settings)
    export, channel = (exports[0], exports[2]) if exports else (None, None)
    trainer: Trainer | None = None
    scorer: Scorer | None = None
    lines: InteractionCache | None = None
    if exports is not None:
        # Models learn from profile's interactions; without a profile address there are none.
        lines = InteractionCache(exports[1], page_size=settings.interactions_page_size,
                                 max_age_s=settings.interactions_max_age_s)
        trainer = Trainer(store, lines, clock.now, models_kept=settings.models_kept,
                          threads=settings.training_threads)
        trainer.publish()
        scorer = Scorer(store, lines, clock.now)
    segments = Segments(store, clock.now, export=export, versions_kept=settings.versions_kept,
                        sync_page_size=settings.sync_page_size, scorer=scorer, customer_data=lines)
    segments.install_built_ins()
    segments.load()
    syncer = PeriodicSync(segments.sync, settings.sync_interval_s) if export is not None else None
    if syncer is not None:
        syncer.start()

    def stop() -> None:
        # Closing the channel first cancels a sync in flight; its committed pages stay cached.
        if channel is not None:
            channel.close()
        if syncer is not None:
            syncer.stop()
        if trainer is not None:
            trainer.close()

    serve(
        "segment",
        [Registration(segment_pb2_grpc.add_SegmentServiceServicer_to_server, SegmentServicer(segments, trainer),
                      segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name)],
        host=settings.host, port=settings.grpc_port, metrics_port=settings.metrics_port,
        workers=settings.grpc_workers, grace=settings.shutdown_grace_s, on_stop=stop,
    )


if __name__ == "__main__":
    main()
