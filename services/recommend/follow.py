"""Replicas follow the store: a promoted model version is loaded, and customers erased elsewhere are dropped.

Every process of the service serves; only the one that trains a version, or receives an erasure, changes
its memory at once. The others poll two cheap reads every few seconds and catch up.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from services.recommend.serving import Serving
from services.recommend.store import RecommendStore
from services.recommend.telemetry import FOLLOWS
from services.recommend.training import Trainer

log = logging.getLogger(__name__)


class Follower(threading.Thread):
    def __init__(self, store: RecommendStore, trainer: Trainer, serving: Serving, guard: threading.Lock,
                 interval_s: float) -> None:
        super().__init__(name="recommend-follow", daemon=True)
        self.store = store
        self.trainer = trainer
        self.serving = serving
        self.guard = guard
        self.interval_s = interval_s
        self._halt = threading.Event()
        # The erasures seen so far (count, newest time), read before the process loads its first version
        # (which leaves out what was erased before): an erasure after that is seen as new.
        self._erasures: tuple[int, datetime | None] = store.serving_state()[1:]
        # A version whose files could not be read is not tried again on every poll.
        self._unreadable: int | None = None

    def check(self) -> None:
        """One poll: loads a newly promoted version, drops newly erased customers."""
        version, erasures, newest = self.store.serving_state()
        seen = (erasures, newest)
        if seen != self._erasures:
            self._forget_erased()
        self._erasures = seen
        loaded = self.serving.loaded
        if version is None or version == self._unreadable or (loaded is not None and loaded.version == version):
            return
        if self.trainer.follow(version):
            FOLLOWS.labels("loaded").inc()
            log.info("serving model version %d promoted by another process", version)
        else:
            self._unreadable = version
            FOLLOWS.labels("unreadable").inc()

    def _forget_erased(self) -> None:
        with self.guard:
            erased = self.store.erased_among(self.serving.known_customers())
            for customer_id in erased:
                self.serving.forget(customer_id)
        FOLLOWS.labels("erased").inc()

    def run(self) -> None:
        while not self._halt.wait(self.interval_s):
            try:
                self.check()
            except Exception:
                # A database blip must not end the thread: the next poll tries again.
                log.exception("cannot follow the serving version")
                FOLLOWS.labels("failed").inc()

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)
