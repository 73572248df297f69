"""Keeps portraits current: the incremental updater, the batch recompute, and fresh reads of one customer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from services.profile import traits
from services.profile.domain import BaseStats, Portrait
from services.profile.store import ProfileStore, StoredPortrait

log = logging.getLogger(__name__)

RECOMPUTE_SECONDS = Histogram(
    "marksman_profile_recompute_seconds", "Time of a full portrait recompute.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
UNSCORED_RECOMPUTE_S = 30.0
UPDATED = Counter("marksman_profile_portraits_updated_total", "Portraits rewritten, by path.", ["path"])
PENDING = Gauge("marksman_profile_portraits_pending", "Customers whose portrait trails their events.")


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    customers: int
    seconds: float
    computed_at: datetime


class PortraitKeeper:
    """Computes portraits with traits.py from the store's raw events; the clock is injected."""

    def __init__(self, store: ProfileStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self._recompute_lock = threading.Lock()

    def refresh_dirty(self, limit: int) -> int:
        """Recomputes the portraits of up to `limit` customers whose events changed; returns how many."""
        batch = self.store.dirty_batch(limit)
        if not batch:
            return 0
        base, now = self.store.load_base_stats(), self.clock()
        events = self.store.events_by_customer([key for key, _ in batch])
        portraits = [(key, traits.compute_portrait(cid, evs, base, now)) for key, (cid, evs) in events.items()]
        self.store.save_portraits(portraits, cleared=batch)
        UPDATED.labels("incremental").inc(len(portraits))
        return len(batch)

    def recompute_all(self) -> RecomputeResult:
        """Recomputes base-relative values (RFM edges, price percentiles) and then every portrait."""
        with self._recompute_lock:
            started, now, marker = time.perf_counter(), self.clock(), self.store.marker()
            facts: list[tuple[int, traits.CustomerFacts]] = []
            for page in self.store.iter_all_customers():
                facts.extend((key, traits.summarize(cid, evs)) for key, (cid, evs) in page.items())
            base = traits.compute_base_stats((f for _, f in facts), now)
            self.store.save_base_stats(base)
            chunk = 5000
            for start in range(0, len(facts), chunk):
                part = facts[start : start + chunk]
                self.store.save_portraits([(key, traits.build_portrait(f, base, now)) for key, f in part])
            self.store.clear_dirty_before(marker)
            seconds = time.perf_counter() - started
            RECOMPUTE_SECONDS.observe(seconds)
            UPDATED.labels("batch").inc(len(facts))
            log.info("portraits recomputed", extra={"customers": len(facts), "seconds": round(seconds, 3)})
            return RecomputeResult(len(facts), seconds, now)

    def current(self, customer_id: str) -> StoredPortrait | None:
        """The customer's portrait, computed now if events arrived since it was stored; None if unknown."""
        found = self.store.find_portrait(customer_id)
        if found is None:
            return None
        key, stored, stale = found
        if stored is not None and not stale:
            return stored
        _cid, events = self.store.events_by_customer([key]).get(key, (customer_id, []))
        portrait: Portrait = traits.compute_portrait(customer_id, events, self.base(), self.clock())
        region, zone, consents = self.store.customer_extras(key)
        return StoredPortrait(portrait, region, zone, consents)

    def base(self) -> BaseStats:
        return self.store.load_base_stats()


class Updater(threading.Thread):
    """Drains stale portraits in the background and runs the scheduled full recompute.

    Ingest comes first: while events keep arriving the updater only works off customers whose
    portrait has trailed for more than `max_lag_s`, one batch at a time, so a burst of writes is
    not slowed by recomputing the same customers again and again; once ingest pauses for
    `quiet_s` it drains everything.
    """

    def __init__(self, keeper: PortraitKeeper, *, interval_s: float, batch_size: int, recompute_interval_s: float,
                 max_lag_s: float = 5.0, quiet_s: float = 0.3, max_idle_s: float = 2.0) -> None:
        super().__init__(name="portrait-updater", daemon=True)
        self.keeper = keeper
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.recompute_interval_s = recompute_interval_s
        self.max_lag_s = max_lag_s
        self.quiet_s = quiet_s
        self.max_idle_s = max(max_idle_s, interval_s)
        self._last_write = 0.0
        self._halt = threading.Event()
        self._nudge = threading.Event()
        self._backing_off = False

    def wake(self) -> None:
        """Called on every write: marks the service busy (the updater yields while it is)."""
        self._last_write = time.monotonic()
        if self._backing_off:  # only an idle updater needs waking; a busy one polls every interval
            self._nudge.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        self._nudge.set()
        self.join(timeout)

    def _busy(self) -> bool:
        """Writes arrived within `quiet_s`, here or in another process of the same database."""
        if time.monotonic() - self._last_write < self.quiet_s:
            return True
        newest = self.keeper.store.newest_pending_ns()
        return newest is not None and (time.time_ns() - newest) / 1e9 < self.quiet_s

    def _lagging(self) -> bool:
        oldest = self.keeper.store.oldest_pending_ns()
        return oldest is not None and (time.time_ns() - oldest) / 1e9 >= self.max_lag_s

    def run(self) -> None:
        last_recompute = time.monotonic() if self.keeper.base().rfm.frequency else 0.0
        wait = self.interval_s
        while not self._halt.is_set():
            worked = False
            try:
                # Until the base has RFM edges (a new or just-loaded store), retry the batch often.
                interval = self.recompute_interval_s
                if interval and not self.keeper.base().rfm.frequency:
                    interval = min(interval, UNSCORED_RECOMPUTE_S)
                if interval and not self._busy() and time.monotonic() - last_recompute >= interval:
                    self.keeper.recompute_all()
                    last_recompute = time.monotonic()
                    worked = True
                if self._busy():
                    worked = True
                    if self._lagging():
                        self.keeper.refresh_dirty(self.batch_size)
                else:
                    while not self._halt.is_set() and not self._busy():
                        done = self.keeper.refresh_dirty(self.batch_size)
                        worked = worked or done > 0
                        if done < self.batch_size:
                            break
                    # Counting is a scan: only when idle, where the table is (nearly) empty.
                    PENDING.set(self.keeper.store.pending_count())
            except Exception:  # the loop must survive a bad batch; the error is logged with its trace
                log.exception("portrait update failed")
            # Each poll is a handful of queries: with nothing to do, poll less and less often (up to
            # max_idle_s; an idle updater cost a fifth of a core at 0.2 s). A write here wakes it at
            # once; one through another process of the same database is seen within max_idle_s.
            wait = self.interval_s if worked else min(wait * 2, self.max_idle_s)
            self._backing_off = wait > self.interval_s
            self._nudge.wait(wait)
            self._nudge.clear()
