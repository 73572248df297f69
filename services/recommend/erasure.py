"""EraseCustomer: the customer's features, their rows in every stored model version and in memory go."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from services.recommend.forget import without_customers
from services.recommend.modelfiles import ModelFiles
from services.recommend.serving import Serving
from services.recommend.store import RecommendStore


class Eraser:
    def __init__(self, store: RecommendStore, files: ModelFiles, serving: Serving, guard: threading.Lock,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.files = files
        self.serving = serving
        self.guard = guard
        self.clock = clock

    def erase(self, customer_id: str) -> tuple[bool, int]:
        """Returns whether anything was held and how many rows (features, model rows per version) went.

        A tombstone stays, so a training run that read the customer before now leaves them out too.
        """
        with self.guard:
            deleted = self.store.erase_customer(customer_id, self.clock())
            self.serving.forget(customer_id)
            for version in self.files.versions():
                if self.files.holds(version, customer_id):
                    trimmed, count = without_customers(self.files.load(version), [customer_id])
                    self.files.save(version, trimmed)
                    deleted += count
        return deleted > 0, deleted
