"""The segment operations behind the RPCs: check, preview, create, refresh (rules and model audiences), read, sync, erase."""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.segment import evaluate, metrics, rfm, sync
from services.segment.audiences import ModelAudience, ScoredMembers
from services.segment.checks import Rule, compile_rule
from services.segment.frame import PortraitFrame
from services.segment.rules import RuleError
from services.segment.store import KIND_MODEL, KIND_RULE, NewSegment, SegmentInfo, SegmentStore, VersionInfo

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_RULE_CHARS = 10_000
MAX_SAMPLE = 1000
DEFAULT_SAMPLE = 10
MAX_PAGE = 10_000
DEFAULT_PAGE = 1000
# Member keys of recent versions, for in_segment(); a version's members change only by erasure.
MEMBER_CACHE_VERSIONS = 32


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    portraits: int
    sample: list[str]


@dataclass(frozen=True, slots=True)
class SyncResult:
    received: int
    portraits: int
    seconds: float


@dataclass(frozen=True, slots=True)
class MemberPage:
    customer_ids: list[str]
    version: int
    next_token: str
    # One per customer id for a model audience; empty for a rule segment.
    scores: list[float]


class AudienceScorer(Protocol):
    def members(self, audience: ModelAudience, frame: PortraitFrame) -> ScoredMembers: ...


class CustomerData(Protocol):
    """What else holds a customer's data in this service (the interaction lines)."""

    def erase(self, customer_id: str) -> int: ...


def _check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidArgument("a segment name is 1-64 lower-case letters, digits, '_' or '-', starting with a "
                              f"letter or digit; got {name!r}")
    return name


def _require_portraits(frame: PortraitFrame) -> None:
    if frame.size == 0:
        # An empty version would look like a real audience of nobody to a campaign.
        raise FailedPrecondition("no portraits are cached yet; sync them from profile first")


def _check_text(text: str) -> str:
    if len(text) > MAX_RULE_CHARS:
        raise InvalidArgument(f"a rule is at most {MAX_RULE_CHARS} characters")
    return text


class Segments:
    """Holds the portrait frame (replaced whole, never changed in place, so readers need no lock)."""

    def __init__(self, store: SegmentStore, clock: Callable[[], datetime], *, export: sync.Export | None = None,
                 versions_kept: int = 10, sync_page_size: int = 5000, scorer: AudienceScorer | None = None,
                 customer_data: CustomerData | None = None) -> None:
        self.store = store
        self.clock = clock
        self.export = export
        self.scorer = scorer
        self.customer_data = customer_data
        self.versions_kept = versions_kept
        self.sync_page_size = sync_page_size
        self._frame = PortraitFrame.empty()
        # Frame replacement (sync, erase) is serialised; a sync holds its own lock for its whole run.
        self._frame_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._erased_during_sync: set[int] = set()
        self._refresh_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._members: OrderedDict[int, np.ndarray] = OrderedDict()
        self._members_guard = threading.Lock()

    # ---- the frame ----

    @property
    def frame(self) -> PortraitFrame:
        return self._frame

    def _set_frame(self, frame: PortraitFrame) -> None:
        self._frame = frame
        metrics.PORTRAITS.set(frame.size)

    def load(self) -> None:
        """Builds the frame from the cached portraits (at start)."""
        with self._frame_lock:
            self._set_frame(PortraitFrame.from_rows(self.store.load_portraits()))

    def install_built_ins(self) -> int:
        return self.store.ensure_segments(rfm.built_in_segments(), self.clock())

    # ---- rules ----

    def compile(self, text: str) -> Rule:
        names = self.store.segment_names()
        known = set(names)
        return compile_rule(_check_text(text), known.__contains__, names)

    def _members_of(self, name: str) -> np.ndarray:
        segment = self.store.get_segment(name)
        if segment is None or segment.current is None:
            return np.empty(0, dtype="int64")
        version_id = segment.current.id
        with self._members_guard:
            cached = self._members.get(version_id)
            if cached is not None:
                self._members.move_to_end(version_id)
                return cached
        keys = self.store.member_keys(version_id)
        with self._members_guard:
            self._members[version_id] = keys
            while len(self._members) > MEMBER_CACHE_VERSIONS:
                self._members.popitem(last=False)
        return keys

    def _evaluate(self, rule: Rule, frame: PortraitFrame) -> np.ndarray:
        return evaluate.mask(rule.condition, frame, self._members_of)

    def preview(self, text: str, sample_size: int = 0) -> Preview:
        if sample_size < 0 or sample_size > MAX_SAMPLE:
            raise InvalidArgument(f"sample_size must be between 0 and {MAX_SAMPLE}")
        rule = self.compile(text)
        frame = self._frame
        positions = np.flatnonzero(self._evaluate(rule, frame))
        wanted = min(sample_size or DEFAULT_SAMPLE, positions.size)
        # A fixed seed: the same rule over the same portraits shows the same sample.
        chosen = np.random.default_rng(0).choice(positions, size=wanted, replace=False) if wanted else positions[:0]
        return Preview(int(positions.size), frame.size, sorted(frame.customer_ids(chosen)))

    # ---- segments ----

    def create(self, name: str, text: str, description: str = "", model: ModelAudience | None = None) -> SegmentInfo:
        """A rule segment, or a model audience when `model` is given (checked by audiences.check_audience)."""
        if model is not None:
            if text:
                raise InvalidArgument("a segment is defined by a rule or by a model, not both")
            segment = NewSegment(name=_check_name(name), kind=KIND_MODEL, rule="", description=description.strip(),
                                 model=model)
        else:
            self.compile(text)
            segment = NewSegment(name=_check_name(name), kind=KIND_RULE, rule=text, description=description.strip())
        return self.store.create_segment(segment, self.clock())

    def get(self, name: str) -> tuple[SegmentInfo, list[VersionInfo]]:
        segment = self._segment(name)
        return segment, self.store.versions(segment.id)

    def list_segments(self) -> list[SegmentInfo]:
        return self.store.list_segments()

    def _segment(self, name: str) -> SegmentInfo:
        segment = self.store.get_segment(name)
        if segment is None:
            raise NotFound(f"there is no segment named '{name}'")
        return segment

    def _refresh_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._refresh_locks.setdefault(name, threading.Lock())

    def refresh(self, name: str) -> VersionInfo:
        """Evaluates the segment (its rule, or its model's scores) over the current frame and stores the
        members as its next version."""
        segment = self._segment(name)
        with self._refresh_lock(name):
            started = time.perf_counter()
            frame = self._frame
            if segment.model is not None:
                version = self._refresh_model(segment, segment.model, frame, started)
            else:
                try:
                    rule = self.compile(segment.rule)
                except RuleError as error:
                    raise FailedPrecondition(f"the stored rule of '{name}' no longer checks: {error}") from None
                _require_portraits(frame)
                keys = frame.keys[self._evaluate(rule, frame)]
                version = self.store.write_version(segment.id, segment.rule, keys, frame.size, started, self.clock())
            metrics.REFRESH_SECONDS.observe(version.seconds)
        self.store.prune_versions(segment.id, self.versions_kept)
        return version

    def _refresh_model(self, segment: SegmentInfo, audience: ModelAudience, frame: PortraitFrame,
                       started: float) -> VersionInfo:
        if self.scorer is None:
            raise FailedPrecondition("model audiences need profile's interactions, and no profile address is "
                                     "configured")
        _require_portraits(frame)
        scored = self.scorer.members(audience, frame)
        return self.store.write_version(segment.id, scored.description, scored.keys, frame.size, started,
                                        self.clock(), scores=scored.scores, model_version=scored.model_version)

    def _version(self, segment: SegmentInfo, number: int) -> VersionInfo:
        if number == 0:
            if segment.current is None:
                raise FailedPrecondition(f"segment '{segment.name}' has no version yet; refresh it first")
            return segment.current
        version = self.store.version(segment.id, number)
        if version is None:
            raise NotFound(f"segment '{segment.name}' has no version {number} (old versions are pruned after "
                           f"the newest {self.versions_kept})")
        return version

    def members(self, name: str, number: int = 0, page_size: int = 0, token: str = "",
                limit: int = 0) -> Iterator[MemberPage]:
        """The members of one version in pages of customer ids, resumable from a page's token."""
        if page_size < 0 or page_size > MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 0 and {MAX_PAGE}")
        if limit < 0 or number < 0:
            raise InvalidArgument("limit and version must not be negative")
        if token and not token.isdigit():
            raise InvalidArgument("page_token is not a token this service gave out")
        version = self._version(self._segment(name), number)
        size = page_size or DEFAULT_PAGE
        after, remaining = int(token or 0), limit or None
        while True:
            want = size if remaining is None else min(size, remaining)
            # One row more than the page tells whether another page follows.
            rows = self.store.member_page(version.id, after, want + 1)
            more = len(rows) > want
            rows = rows[:want]
            if rows:
                after = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)
            scores = [score for _, _, score in rows if score is not None]
            yield MemberPage([customer_id for _, customer_id, _ in rows], version.number, str(after) if more else "",
                             scores if len(scores) == len(rows) else [])
            if not more or remaining == 0:
                return

    def customer_segments(self, customer_id: str) -> list[tuple[str, int]]:
        return self.store.customer_segments(customer_id)

    # ---- sync and erasure ----

    def sync(self, full: bool = False) -> SyncResult:
        """Pulls the portraits changed in profile into the cache, then into the frame."""
        if self.export is None:
            raise FailedPrecondition("no profile address is configured; portraits cannot be synced")
        with self._sync_lock:
            started = time.perf_counter()
            with self._frame_lock:
                self._erased_during_sync = set()
            if full:
                self.store.reset_cursor()
            pages: list[list[tuple[Any, ...]]] = []
            try:
                received = sync.pull(self.export, self.store, self.store.cursor(), self.sync_page_size, self.clock(),
                                     pages.append)
            finally:
                self._apply(pages)
            return SyncResult(received, self._frame.size, time.perf_counter() - started)

    def _apply(self, pages: list[list[tuple[Any, ...]]]) -> None:
        """Puts the synced rows into the frame, skipping customers erased while the sync ran."""
        # The newest row of each key wins (a customer can change twice during one sync).
        latest = {row[0]: row for page in pages for row in page}
        if not latest:
            return
        with self._frame_lock:
            for key in self._erased_during_sync:
                latest.pop(key, None)
            self._set_frame(self._frame.upsert(PortraitFrame.from_rows(list(latest.values()))))

    def erase(self, customer_id: str) -> tuple[bool, int]:
        if self.customer_data is not None:
            self.customer_data.erase(customer_id)
        with self._frame_lock:
            key = self.store.key_of(customer_id)
            erased, count = self.store.erase(customer_id, self.clock())
            if key is not None:
                self._erased_during_sync.add(key)
                self._set_frame(self._frame.without([key]))
        with self._members_guard:
            self._members.clear()
        return erased, count
