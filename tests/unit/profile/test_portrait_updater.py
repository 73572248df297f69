"""The background updater: drains stale portraits when idle, yields to writes, and backs off when there is nothing to do."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any, cast

from services.profile.portraits import PortraitKeeper, Updater


class FakeStore:
    def __init__(self) -> None:
        self.newest: int | None = None

    def newest_pending_ns(self) -> int | None:
        return self.newest

    def oldest_pending_ns(self) -> int | None:
        return self.newest

    def pending_count(self) -> int:
        return 0


class FakeKeeper:
    """Counts the updater's polls; `dirty` customers wait to be refreshed."""

    def __init__(self) -> None:
        self.store = FakeStore()
        self.polls = 0
        self.dirty = 0
        self.lock = threading.Lock()

    def base(self) -> Any:
        return SimpleNamespace(rfm=SimpleNamespace(frequency=(1, 2, 3)))

    def refresh_dirty(self, limit: int) -> int:
        with self.lock:
            self.polls += 1
            done, self.dirty = min(self.dirty, limit), max(self.dirty - limit, 0)
            return done

    def recompute_all(self) -> None:
        raise AssertionError("no scheduled recompute in these tests")


def start(keeper: FakeKeeper, **kwargs: float) -> Updater:
    updater = Updater(cast(PortraitKeeper, keeper), interval_s=0.01, batch_size=10, recompute_interval_s=0,
                      quiet_s=0.05, **kwargs)
    updater.start()
    return updater


def test_an_idle_updater_polls_less_and_less_often() -> None:
    keeper = FakeKeeper()
    updater = start(keeper, max_idle_s=0.2)
    try:
        time.sleep(1.0)
    finally:
        updater.stop()
    # At a fixed 10 ms it would have polled ~100 times; doubling up to 200 ms leaves about a dozen.
    assert 3 <= keeper.polls <= 20


def test_a_write_wakes_a_backed_off_updater_and_the_dirty_customers_are_drained() -> None:
    keeper = FakeKeeper()
    updater = start(keeper, max_idle_s=5.0)
    try:
        time.sleep(0.5)  # long enough to back off well past the interval
        keeper.dirty = 25
        updater.wake()
        deadline = time.monotonic() + 3.0
        while keeper.dirty and time.monotonic() < deadline:
            time.sleep(0.01)
        # Woken at once, it drains after the quiet period instead of sleeping its 5 s back-off.
        assert keeper.dirty == 0
    finally:
        updater.stop()
