"""The segment store and operations on SQLite and PostgreSQL: sync, versions, failure, erasure, retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from services.common.db import make_engine
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.segment.rfm import built_in_segments
from services.segment.rules import RuleError
from services.segment.segments import Segments
from services.segment.store import SegmentStore, members_t
from tests.unit.segment.segment_fakes import NOW, FakeProfile, direct_export, portrait_proto, synthetic_protos

N = 400


@pytest.fixture
def profile() -> FakeProfile:
    fake = FakeProfile()
    fake.put(synthetic_protos(N))
    return fake


@pytest.fixture
def store(database_url: str) -> SegmentStore:
    store = SegmentStore(make_engine(database_url))
    store.migrate()
    store.migrate()  # applying migrations twice is a no-op
    return store


def make_segments(store: SegmentStore, profile: FakeProfile, **options: Any) -> Segments:
    segments = Segments(store, lambda: NOW, export=direct_export(profile), sync_page_size=150, **options)
    segments.install_built_ins()
    segments.sync()
    return segments


@pytest.fixture
def segments(store: SegmentStore, profile: FakeProfile) -> Segments:
    return make_segments(store, profile)


def members(segments: Segments, name: str, version: int = 0) -> list[str]:
    return [cid for page in segments.members(name, version, page_size=70) for cid in page.customer_ids]


def count(segments: Segments, rule: str) -> int:
    return segments.preview(rule).count


def change(profile: FakeProfile, customer_ids: list[str], **fields: Any) -> None:
    """Profile recomputed these customers: the next sync exports their new portraits."""
    by_id = {p.customer_id: p for p in profile.changes}
    for cid in customer_ids:
        portrait = type(by_id[cid])()
        portrait.CopyFrom(by_id[cid])
        for name, value in fields.items():
            setattr(portrait, name, value)
        profile.put([portrait])


def test_sync_caches_every_page_and_resumes_from_the_cursor(store: SegmentStore, profile: FakeProfile) -> None:
    segments = make_segments(store, profile)
    assert store.portrait_count() == N and segments.frame.size == N
    assert store.cursor() == str(N) and profile.requests[-1].since_cursor == ""
    change(profile, ["c0000001"], frequency=42)
    result = segments.sync()
    assert (result.received, result.portraits) == (1, N)
    assert profile.requests[-1].since_cursor == str(N)
    assert segments.preview("frequency == 42").sample == ["c0000001"]
    assert segments.sync(full=True).received == N + 1


def test_a_sync_that_fails_half_way_keeps_the_pages_it_cached(store: SegmentStore, profile: FakeProfile) -> None:
    segments = Segments(store, lambda: NOW, export=direct_export(profile), sync_page_size=150)
    profile.fail_after_pages = 2
    with pytest.raises(Unavailable, match=r"profile is restarting.*300 portraits were cached"):
        segments.sync()
    assert store.portrait_count() == 300 and segments.frame.size == 300 and store.cursor() == "300"
    profile.fail_after_pages = None
    assert segments.sync().received == N - 300 and segments.frame.size == N


def test_built_in_rfm_segments_are_created_once(store: SegmentStore, segments: Segments) -> None:
    assert segments.install_built_ins() == 0
    names = {s.name for s in segments.list_segments() if s.built_in}
    assert names == {s.name for s in built_in_segments()} and len(names) == 11
    champions = segments.refresh("rfm_champions")
    assert champions.size == count(segments, 'rfm_segment == "champions"') > 0


def test_create_checks_the_rule_and_the_name(segments: Segments) -> None:
    with pytest.raises(RuleError, match="line 1, column 1: unknown trait 'monetry'"):
        segments.create("big", "monetry > 10")
    with pytest.raises(InvalidArgument, match="lower-case letters"):
        segments.create("Big Spenders", "monetary > 10")
    with pytest.raises(InvalidArgument, match="lower-case letters"):
        segments.create("big\n", "monetary > 10")
    segments.create("big", "monetary > 10", "  spent over 10  ")
    with pytest.raises(AlreadyExists):
        segments.create("big", "monetary > 20")
    assert segments.get("big")[0].description == "spent over 10"


def test_versions_are_numbered_and_never_change(segments: Segments, profile: FakeProfile) -> None:
    segments.create("frequent", "frequency >= 3")
    first = segments.refresh("frequent")
    before = members(segments, "frequent", 1)
    assert first.number == 1 and first.size == len(before) == count(segments, "frequency >= 3")
    # Profile says everyone outside the segment now orders a lot; a refresh makes version 2.
    outside = sorted({p.customer_id for p in profile.changes} - set(before))[:25]
    change(profile, outside, frequency=9)
    segments.sync()
    second = segments.refresh("frequent")
    assert (second.number, second.size) == (2, first.size + 25)
    assert members(segments, "frequent", 1) == before
    assert sorted(members(segments, "frequent")) == sorted(before + outside)
    segment, versions = segments.get("frequent")
    assert segment.current is not None and segment.current.number == 2
    assert [(v.number, v.size) for v in versions] == [(2, second.size), (1, first.size)]


def test_a_refresh_that_fails_half_way_leaves_the_previous_version_current(
        segments: Segments, store: SegmentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    segments.create("everyone", "true")
    first = segments.refresh("everyone")
    write: Callable[..., None] = store._write_members

    def half_then_fail(conn: Any, version_id: int, keys: np.ndarray, scores: np.ndarray | None) -> None:
        write(conn, version_id, keys[: len(keys) // 2], scores)
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_members", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        segments.refresh("everyone")
    monkeypatch.undo()
    segment, versions = segments.get("everyone")
    assert segment.current == first and [v.number for v in versions] == [1]
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(members_t)).scalar_one() == N
    assert segments.refresh("everyone").number == 2  # the failed number is free again


def test_retention_keeps_the_newest_versions(store: SegmentStore, profile: FakeProfile) -> None:
    segments = make_segments(store, profile, versions_kept=2)
    segments.create("buyers", "has_orders")
    numbers = [segments.refresh("buyers").number for _ in range(4)]
    assert numbers == [1, 2, 3, 4]
    assert [v.number for v in segments.get("buyers")[1]] == [4, 3]
    with pytest.raises(NotFound, match="no version 1"):
        list(segments.members("buyers", 1))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(members_t)).scalar_one() == 2 * count(segments, "has_orders")


def test_members_come_in_pages_with_a_resumable_token(segments: Segments) -> None:
    segments.create("everyone", "true")
    with pytest.raises(FailedPrecondition, match="refresh it first"):
        list(segments.members("everyone"))
    segments.refresh("everyone")
    pages = list(segments.members("everyone", page_size=150))
    assert [len(p.customer_ids) for p in pages] == [150, 150, 100]
    assert [bool(p.next_token) for p in pages] == [True, True, False]
    limited = list(segments.members("everyone", page_size=70, limit=100))
    assert [len(p.customer_ids) for p in limited] == [70, 30]
    rest = [c for p in segments.members("everyone", page_size=1000, token=limited[-1].next_token)
            for c in p.customer_ids]
    assert limited[0].customer_ids + limited[1].customer_ids + rest == pages[0].customer_ids + pages[1].customer_ids + pages[2].customer_ids
    with pytest.raises(InvalidArgument):
        list(segments.members("everyone", token="abc"))


def test_in_segment_reads_the_current_version(segments: Segments) -> None:
    segments.create("buyers", "has_orders")
    assert count(segments, 'in_segment("buyers")') == 0  # not refreshed yet: no members
    version = segments.refresh("buyers")
    assert count(segments, 'in_segment("buyers")') == version.size == count(segments, "has_orders")
    segments.create("loyal-buyers", 'in_segment("buyers") and frequency >= 3')
    assert segments.refresh("loyal-buyers").size == count(segments, "frequency >= 3")


def test_customer_segments_lists_current_versions_that_hold_the_customer(segments: Segments) -> None:
    segments.create("everyone", "true")
    segments.create("nobody", "false")
    segments.refresh("everyone")
    segments.refresh("nobody")
    segments.refresh("everyone")
    cid = segments.preview("true", 1).sample[0]
    assert segments.customer_segments(cid) == [("everyone", 2)]
    assert segments.customer_segments("unknown") == []


def test_erasure_removes_the_customer_from_every_version_and_the_cache(
        segments: Segments, store: SegmentStore, profile: FakeProfile) -> None:
    segments.create("everyone", "true")
    segments.refresh("everyone")
    segments.refresh("everyone")
    cid = "c0000007"
    assert segments.erase(cid) == (True, 3)  # two memberships and the cached portrait
    assert all(cid not in members(segments, "everyone", n) for n in (1, 2))
    assert [v.size for v in segments.get("everyone")[1]] == [N - 1, N - 1]
    assert segments.frame.size == N - 1 and store.key_of(cid) is None
    assert segments.customer_segments(cid) == []
    assert segments.erase(cid) == (False, 0)


def test_a_portrait_computed_before_the_erasure_is_not_cached_again(
        segments: Segments, store: SegmentStore, profile: FakeProfile) -> None:
    cid = "c0000009"
    row = next(p for p in profile.changes if p.customer_id == cid)
    segments.erase(cid)
    profile.put([row])  # a sync page read before profile erased it
    segments.sync()
    assert store.key_of(cid) is None and cid not in segments.preview("true", 1000).sample
    # The customer signs up again later: the new portrait is computed after the erasure.
    later = portrait_proto({**_row(row), "customer_id": cid}, computed_at=NOW + timedelta(days=1))
    profile.put([later])
    segments.sync()
    assert store.key_of(cid) is not None


def _row(portrait: Any) -> dict[str, Any]:
    from services.segment.sync import record_from_proto

    record = record_from_proto(portrait, NOW)
    record["lifecycle"] = record["lifecycle"] or "new"
    return record


def test_a_customer_erased_while_a_sync_runs_stays_out_of_the_frame(store: SegmentStore, profile: FakeProfile) -> None:
    segments = make_segments(store, profile)
    change(profile, ["c0000005", "c0000006"], frequency=50)
    export = direct_export(profile)

    def erase_between_pages(request: Any) -> Any:
        for page in export(request):
            yield page
            segments.erase("c0000005")  # the gateway's DELETE arrives while the pages are applied

    segments.export = erase_between_pages
    segments.sync()
    assert segments.preview("frequency == 50").sample == ["c0000006"]
    assert store.key_of("c0000005") is None


def test_no_version_is_written_before_the_first_sync(store: SegmentStore, profile: FakeProfile) -> None:
    segments = Segments(store, lambda: NOW, export=direct_export(profile))
    segments.install_built_ins()
    with pytest.raises(FailedPrecondition, match="sync them from profile first"):
        segments.refresh("rfm_lost")
    assert segments.get("rfm_lost")[1] == []
    assert Segments(store, lambda: NOW).preview("true").count == 0
    with pytest.raises(FailedPrecondition, match="no profile address"):
        Segments(store, lambda: NOW).sync()
