"""The segment servicer over a real in-process gRPC server, syncing from a fake profile served over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2_grpc
from marksman.segment.v1 import segment_pb2 as pb
from marksman.segment.v1 import segment_pb2_grpc

from services.common.db import make_engine
from services.common.grpc_server import Registration, RunningServer, start
from services.segment.segments import Segments
from services.segment.server import SegmentServicer
from services.segment.store import SegmentStore
from tests.support.rpc import rpc_error
from tests.unit.segment.segment_fakes import (
    NOW,
    FakeProfile,
    start_fake_profile,
    synthetic_protos,
)

N = 300


@dataclass
class Running:
    stub: segment_pb2_grpc.SegmentServiceStub
    profile: FakeProfile
    profile_server: RunningServer


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    fake = FakeProfile()
    fake.put(synthetic_protos(N))
    profile_server = start_fake_profile(fake)
    profile_channel = grpc.insecure_channel(f"127.0.0.1:{profile_server.port}")
    profile_stub = profile_pb2_grpc.ProfileServiceStub(profile_channel)
    store = SegmentStore(make_engine(f"sqlite:///{tmp_path / 'segment.db'}"))
    store.migrate()
    segments = Segments(store, lambda: NOW, export=lambda r: profile_stub.ExportPortraits(r, timeout=10),
                        sync_page_size=100)
    segments.install_built_ins()
    server = start("segment", [Registration(segment_pb2_grpc.add_SegmentServiceServicer_to_server,
                                            SegmentServicer(segments), "marksman.segment.v1.SegmentService")],
                   metrics_port=None, workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Running(segment_pb2_grpc.SegmentServiceStub(channel), fake, profile_server)
    finally:
        channel.close()
        server.stop(0)
        profile_channel.close()
        profile_server.stop(0)


def test_sync_preview_create_refresh_and_read(running: Running) -> None:
    stub = running.stub
    synced = stub.SyncPortraits(pb.SyncPortraitsRequest())
    assert (synced.received, synced.portraits) == (N, N)
    rule = 'monetary > 1000 and "Home" in top_categories or frequency >= 5'
    preview = stub.PreviewRule(pb.PreviewRuleRequest(rule=rule, sample_size=5))
    assert preview.portraits == N and 5 <= preview.count < N
    assert len(preview.sample_customer_ids) == 5 and list(preview.sample_customer_ids) == sorted(preview.sample_customer_ids)

    created = stub.CreateSegment(pb.CreateSegmentRequest(name="vip", rule=rule, description="big spenders"))
    assert created.segment.kind == pb.SEGMENT_KIND_RULE and not created.segment.HasField("current")
    version = stub.RefreshSegment(pb.RefreshSegmentRequest(name="vip")).version
    assert (version.number, version.size, version.portraits, version.rule) == (1, preview.count, N, rule)
    assert version.seconds > 0 and version.created_at.ToDatetime().year == 2011

    got = stub.GetSegment(pb.GetSegmentRequest(name="vip"))
    assert got.segment.current.number == 1 and [v.size for v in got.versions] == [preview.count]
    listed = {s.name: s for s in stub.ListSegments(pb.ListSegmentsRequest()).segments}
    assert "vip" in listed and listed["rfm_champions"].built_in and len(listed) == 12

    pages = list(stub.StreamMembers(pb.StreamMembersRequest(name="vip", page_size=10)))
    ids = [cid for page in pages for cid in page.customer_ids]
    assert len(ids) == preview.count and {p.version for p in pages} == {1} and pages[-1].next_page_token == ""
    assert set(preview.sample_customer_ids) <= set(ids)

    held = stub.ListCustomerSegments(pb.ListCustomerSegmentsRequest(customer_id=ids[0])).segments
    assert [(s.name, s.version) for s in held] == [("vip", 1)]


def test_validate_rule_returns_problems_with_positions(running: Running) -> None:
    reply = running.stub.ValidateRule(pb.ValidateRuleRequest(rule='frequency >= 2 and monetry > 1\nor region > "A"'))
    assert not reply.valid
    assert [(p.line, p.column) for p in reply.problems] == [(1, 20), (2, 11)]
    assert reply.problems[0].message == "unknown trait 'monetry' — did you mean 'monetary'?"
    ok = running.stub.ValidateRule(pb.ValidateRuleRequest(rule='in_segment("rfm_lost") and views > carts'))
    assert ok.valid and list(ok.traits) == ["carts", "views"] and list(ok.segments) == ["rfm_lost"]


def test_bad_rules_and_names_are_invalid_arguments(running: Running) -> None:
    error = rpc_error(lambda: running.stub.CreateSegment(pb.CreateSegmentRequest(name="x", rule="frequency = 2")))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "line 1, column 11: use '==' to compare; a single '=' is not an operator"
    error = rpc_error(lambda: running.stub.PreviewRule(pb.PreviewRuleRequest(rule="lifecycle == churn")))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    error = rpc_error(lambda: running.stub.RefreshSegment(pb.RefreshSegmentRequest(name="nope")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    error = rpc_error(lambda: list(running.stub.StreamMembers(pb.StreamMembersRequest(name="rfm_lost"))))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    error = rpc_error(lambda: running.stub.CreateSegment(pb.CreateSegmentRequest(name="rfm_lost", rule="true")))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS


def test_erase_reaches_versions_and_cache(running: Running) -> None:
    stub = running.stub
    stub.SyncPortraits(pb.SyncPortraitsRequest())
    stub.CreateSegment(pb.CreateSegmentRequest(name="everyone", rule="true"))
    stub.RefreshSegment(pb.RefreshSegmentRequest(name="everyone"))
    reply = stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="c0000003"))
    assert reply.erased and reply.records_deleted == 2
    ids = [c for p in stub.StreamMembers(pb.StreamMembersRequest(name="everyone")) for c in p.customer_ids]
    assert len(ids) == N - 1 and "c0000003" not in ids
    assert stub.PreviewRule(pb.PreviewRuleRequest(rule="true")).count == N - 1
    assert not stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="c0000003")).erased
    error = rpc_error(lambda: stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="bad id")))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_an_unreachable_profile_is_unavailable(running: Running) -> None:
    running.profile_server.stop(0)
    error = rpc_error(lambda: running.stub.SyncPortraits(pb.SyncPortraitsRequest()))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "portrait export failed" in (error.details() or "")
