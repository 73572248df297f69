"""The popular items recommendations fall back to when recommend cannot answer, refreshed while it can."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from marksman.recommend.v1 import recommend_pb2 as pb

log = logging.getLogger(__name__)

FALLBACK = "gateway_popular_cache"
Items = list[tuple[str, float]]


@dataclass(frozen=True)
class Popular:
    """Items by popularity (sku, score) as recommend last gave them, and when (monotonic seconds)."""

    items: tuple[tuple[str, float], ...]
    fetched_at: float


def pick(popular: Popular, k: int, excluded: set[str]) -> Items:
    """The first k items not excluded."""
    return [item for item in popular.items if item[0] not in excluded][:k]


def fallback_answer(popular: Popular | None, customer_id: str, k: int, filters: pb.Filters, segment: str,
                    reason: str, now: float) -> dict[str, Any] | None:
    """The labelled popular-items answer for a customer, or None when there is no list yet or the request
    constrains the catalogue (categories, stock, brands: a channel rule's own-brand filter) in ways a list of
    SKUs cannot check: breaking a business filter would be worse than a 503. Personal preferences the list cannot honour are named as relaxed."""
    if (popular is None or filters.categories_in or filters.categories_not_in or filters.only_in_stock
            or filters.brands_in or filters.brands_not_in):
        return None
    relaxed = [name for name, asked in (("exclude_bought", filters.exclude_bought),
                                        ("within_budget", filters.respect_purchasing_power),
                                        ("segment", bool(segment))) if asked]
    items = pick(popular, k, set(filters.exclude_skus))
    return {"customer_id": customer_id, "model_version": None, "fallback": FALLBACK,
            "items": [{"sku": sku, "score": score} for sku, score in items],
            "degraded": True, "degraded_reason": reason, "relaxed_filters": relaxed,
            "fallback_age_s": round(now - popular.fetched_at, 1)}


class PopularCache:
    """The last popular list, and a refresh started (one at a time, in the background) when it is older than
    `max_age_s`; `fetch` asks recommend for it."""

    def __init__(self, fetch: Callable[[], Awaitable[Items]], max_age_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._max_age_s = max_age_s
        self._clock = clock
        self.current: Popular | None = None
        self._task: asyncio.Task[None] | None = None

    def stale(self) -> bool:
        return self.current is None or self._clock() - self.current.fetched_at >= self._max_age_s

    def refresh_soon(self) -> None:
        """Starts a refresh when stale and none is running; the caller does not wait for it."""
        if self.stale() and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self.refresh())

    async def refresh(self) -> None:
        try:
            self.current = Popular(tuple(await self._fetch()), self._clock())
        except Exception as error:
            log.warning("popular items refresh failed", extra={"error": type(error).__name__})

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
