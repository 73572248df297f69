"""TrainModel, ListModels, GetModel and model audiences over real gRPC, with profile's exports served by a fake
over gRPC too: status codes, quality fields, scores in member pages, training on its own thread."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pandas as pd
import pytest
from marksman.profile.v1 import profile_pb2_grpc
from marksman.segment.v1 import segment_pb2 as pb
from marksman.segment.v1 import segment_pb2_grpc

from services.common.db import make_engine
from services.common.grpc_server import Registration, start
from services.segment import synthetic
from services.segment.interactions import InteractionCache
from services.segment.scoring import Scorer
from services.segment.segments import Segments
from services.segment.server import SegmentServicer
from services.segment.store import SegmentStore
from services.segment.training import Trainer
from tests.support.rpc import rpc_error
from tests.unit.segment.segment_fakes import (
    NOW,
    FakeProfile,
    start_fake_profile,
    synthetic_protos,
)

N = 300
HORIZON = 30


@dataclass
class Running:
    stub: segment_pb2_grpc.SegmentServiceStub
    profile: FakeProfile


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    fake = FakeProfile()
    fake.put(synthetic_protos(N))
    fake.put_lines(synthetic.order_lines(N, pd.Timestamp(NOW)))
    profile_server = start_fake_profile(fake)
    profile_channel = grpc.insecure_channel(f"127.0.0.1:{profile_server.port}")
    profile = profile_pb2_grpc.ProfileServiceStub(profile_channel)
    store = SegmentStore(make_engine(f"sqlite:///{tmp_path / 'segment.db'}"))
    store.migrate()
    # Small pages: a slow profile (interaction_delay_s) then makes a pull take a while.
    lines = InteractionCache(lambda r: profile.ExportInteractions(r, timeout=30), page_size=200)
    segments = Segments(store, lambda: NOW, export=lambda r: profile.ExportPortraits(r, timeout=10),
                        scorer=Scorer(store, lines, lambda: NOW), customer_data=lines)
    segments.install_built_ins()
    trainer = Trainer(store, lines, lambda: NOW)
    server = start("segment", [Registration(segment_pb2_grpc.add_SegmentServiceServicer_to_server,
                                            SegmentServicer(segments, trainer), "marksman.segment.v1.SegmentService")],
                   metrics_port=None, workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Running(segment_pb2_grpc.SegmentServiceStub(channel), fake)
    finally:
        channel.close()
        server.stop(0)
        trainer.close()
        profile_channel.close()
        profile_server.stop(0)


def test_train_list_and_get_models(running: Running) -> None:
    stub = running.stub
    assert stub.ListModels(pb.ListModelsRequest()).untrained_goals == [
        "retention", "growth", "growth_new_category", "activation", "acquisition"]
    missing = rpc_error(lambda: stub.GetModel(pb.GetModelRequest(goal="retention")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND and "no retention model" in (missing.details() or "")

    model = stub.TrainModel(pb.TrainModelRequest(goal="retention", horizon_days=HORIZON)).model
    assert (model.goal, model.version, model.horizon_days, model.current) == ("retention", 1, HORIZON, True)
    assert model.trained_at.ToDatetime().date() == NOW.date() and model.lines > 1000 and model.customers > 200
    q = model.quality
    assert q.auc > 0.6 and q.auc_se > 0 and q.top_decile_lift > 1 and 0 < q.base_rate < 1 and q.better_than_chance
    assert 0 < q.positives < q.held_out and model.train_size > 0 and model.fit_seconds > 0
    assert "HistGradientBoostingClassifier" in model.parameters and "recency_days" in model.features

    chance = stub.TrainModel(pb.TrainModelRequest(goal="activation", horizon_days=HORIZON)).model
    assert not chance.quality.better_than_chance  # reported, not hidden
    stub.TrainModel(pb.TrainModelRequest(goal="retention", horizon_days=60))

    listed = stub.ListModels(pb.ListModelsRequest())
    assert [(m.goal, m.version, m.current) for m in listed.models] == [("retention", 2, True), ("activation", 1, True)]
    assert list(listed.untrained_goals) == ["growth", "growth_new_category", "acquisition"]
    got = stub.GetModel(pb.GetModelRequest(goal="retention"))
    assert got.current.version == 2 and got.current.horizon_days == 60
    assert [(v.version, v.current) for v in got.versions] == [(2, True), (1, False)]


def test_bad_training_requests_are_invalid_or_failed_preconditions(running: Running) -> None:
    stub = running.stub
    for request, code, words in [
        (pb.TrainModelRequest(goal="churn"), grpc.StatusCode.INVALID_ARGUMENT, "unknown goal 'churn'"),
        (pb.TrainModelRequest(goal=""), grpc.StatusCode.INVALID_ARGUMENT, "unknown goal ''"),
        (pb.TrainModelRequest(goal="growth", horizon_days=1000), grpc.StatusCode.INVALID_ARGUMENT, "between 7 and 365"),
        (pb.TrainModelRequest(goal="growth", seed_segment="x"), grpc.StatusCode.INVALID_ARGUMENT, "acquisition only"),
        (pb.TrainModelRequest(goal="acquisition", seed_segment="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"),
        (pb.TrainModelRequest(goal="growth", horizon_days=365), grpc.StatusCode.FAILED_PRECONDITION,
         "cannot be trained"),
    ]:
        error = rpc_error(lambda request=request: stub.TrainModel(request))  # type: ignore[misc]
        assert error.code() == code and words in (error.details() or ""), (request, error.details())
    running.profile.interactions_unavailable = True
    down = rpc_error(lambda: stub.TrainModel(pb.TrainModelRequest(goal="growth")))
    assert down.code() == grpc.StatusCode.UNAVAILABLE and "profile is restarting" in (down.details() or "")
    assert stub.ListModels(pb.ListModelsRequest()).models == []


def test_model_audiences_create_refresh_and_stream_scores(running: Running) -> None:
    stub = running.stub
    stub.SyncPortraits(pb.SyncPortraitsRequest())
    created = stub.CreateSegment(pb.CreateSegmentRequest(
        name="churners", model=pb.ModelAudience(goal="retention", top_k=40), description="likely to lapse")).segment
    assert created.kind == pb.SEGMENT_KIND_MODEL and created.rule == ""
    assert (created.model.goal, created.model.WhichOneof("cut"), created.model.top_k) == ("retention", "top_k", 40)
    early = rpc_error(lambda: stub.RefreshSegment(pb.RefreshSegmentRequest(name="churners")))
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no retention model has been trained yet" in (early.details() or "")

    stub.TrainModel(pb.TrainModelRequest(goal="retention", horizon_days=HORIZON))
    version = stub.RefreshSegment(pb.RefreshSegmentRequest(name="churners")).version
    assert (version.number, version.size, version.model_version) == (1, 40, 1)
    assert version.rule.startswith("retention model, top 40 (model version 1")
    pages = list(stub.StreamMembers(pb.StreamMembersRequest(name="churners", page_size=15)))
    ids = [c for p in pages for c in p.customer_ids]
    scores = [s for p in pages for s in p.scores]
    assert len(ids) == len(scores) == 40 and all(0 <= s <= 1 for s in scores)
    assert all(len(p.scores) == len(p.customer_ids) for p in pages)

    threshold = stub.CreateSegment(pb.CreateSegmentRequest(
        name="likely", model=pb.ModelAudience(goal="retention", threshold=0.0))).segment
    assert threshold.model.WhichOneof("cut") == "threshold" and threshold.model.threshold == 0.0
    everyone = stub.RefreshSegment(pb.RefreshSegmentRequest(name="likely")).version
    assert everyone.size > 40
    listed = {s.name: s for s in stub.ListSegments(pb.ListSegmentsRequest()).segments}
    assert listed["churners"].current.model_version == 1 and listed["rfm_champions"].kind == pb.SEGMENT_KIND_RULE


def test_bad_model_audiences_are_invalid_arguments(running: Running) -> None:
    stub = running.stub
    for request, words in [
        (pb.CreateSegmentRequest(name="x", model=pb.ModelAudience(goal="retention")), "exactly one of top_k"),
        (pb.CreateSegmentRequest(name="x", model=pb.ModelAudience(goal="churn", top_k=5)), "unknown goal 'churn'"),
        (pb.CreateSegmentRequest(name="x", model=pb.ModelAudience(goal="growth", top_k=0)), "top_k must be"),
        (pb.CreateSegmentRequest(name="x", model=pb.ModelAudience(goal="growth", threshold=1.2)), "between 0 and 1"),
        (pb.CreateSegmentRequest(name="x", model=pb.ModelAudience(goal="growth", threshold=math.inf)), "between 0"),
        (pb.CreateSegmentRequest(name="x", rule="has_orders", model=pb.ModelAudience(goal="growth", top_k=5)),
         "a rule or by a model, not both"),
        (pb.CreateSegmentRequest(name="Bad Name", model=pb.ModelAudience(goal="growth", top_k=5)), "segment name"),
    ]:
        error = rpc_error(lambda request=request: stub.CreateSegment(request))  # type: ignore[misc]
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and words in (error.details() or ""), words
    assert [s.name for s in stub.ListSegments(pb.ListSegmentsRequest()).segments if not s.built_in] == []


def test_a_training_does_not_hold_up_other_calls(running: Running) -> None:
    stub = running.stub
    stub.SyncPortraits(pb.SyncPortraitsRequest())
    running.profile.interaction_delay_s = 0.2  # about 17 pages: a pull of over three seconds
    result: list[pb.TrainModelResponse] = []
    training = threading.Thread(target=lambda: result.append(
        stub.TrainModel(pb.TrainModelRequest(goal="growth", horizon_days=HORIZON))))
    training.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert stub.PreviewRule(pb.PreviewRuleRequest(rule="has_orders")).count > 0
    assert stub.ListModels(pb.ListModelsRequest()).models == []  # still training
    answered = time.monotonic() - started
    training.join(60)
    assert result and result[0].model.version == 1
    assert answered < 2.0, answered


def test_without_profile_there_are_no_models(tmp_path: Path) -> None:
    store = SegmentStore(make_engine(f"sqlite:///{tmp_path / 'segment.db'}"))
    store.migrate()
    servicer = SegmentServicer(Segments(store, lambda: NOW))
    server = start("segment", [Registration(segment_pb2_grpc.add_SegmentServiceServicer_to_server, servicer,
                                            "marksman.segment.v1.SegmentService")], metrics_port=None, workers=2)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = segment_pb2_grpc.SegmentServiceStub(channel)
            error = rpc_error(lambda: stub.TrainModel(pb.TrainModelRequest(goal="growth")))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "no profile address" in (error.details() or "")
            stub.CreateSegment(pb.CreateSegmentRequest(name="m", model=pb.ModelAudience(goal="growth", top_k=3)))
            error = rpc_error(lambda: stub.RefreshSegment(pb.RefreshSegmentRequest(name="m")))
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        server.stop(0)
