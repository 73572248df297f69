"""Replicas follow the store: a promoted model version is loaded, customers erased elsewhere are dropped, and
items changed elsewhere get their stock and hidden flags.

Every process of the service serves; only the one that trains a version, or receives an erasure or items,
changes its memory at once. The others poll two small reads every few seconds and catch up.
"""

from __future__ import annotations

import logging
import threading

from services.recommend.serving import Serving
from services.recommend.store import Changes, RecommendStore
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
        # What the store said before the process loaded its first version (which leaves out what was erased
        # before and reads the items as they are): a change after that is seen as new.
        self._seen: Changes = store.changes()
        # A version whose files could not be read is not tried again on every poll.
        self._unreadable: int | None = None

    def check(self) -> None:
        """One poll: loads a newly promoted version, drops newly erased customers, applies changed items."""
        now = self.store.changes()
        before, self._seen = self._seen, now
        if (now.erasures, now.newest_erasure) != (before.erasures, before.newest_erasure):
            self._forget_erased()
        if now.catalogue != before.catalogue:
            in_stock, hidden = self.store.item_flags()
            self.serving.update_items(in_stock, hidden)
            FOLLOWS.labels("items").inc()
        version = now.serving_version
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
