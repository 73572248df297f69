"""Per-API-key rate limits of the current rule set, enforced with 429 + Retry-After (moving windows from `limits`).

The counters live in this process's memory: N gateway replicas behind a load balancer allow N times the
configured rate in total (README, gateway section). Keeping them in the gateway's database would cost a
write per request; a shared store (Redis) is one `limits` storage URI away if that ever matters.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import Counter

from services.gateway.channel_rules import RateLimit
from services.gateway.errors import ApiError
from services.gateway.store import PricingStore, Principal

log = logging.getLogger(__name__)
# The sustained rate is held over this many seconds; the burst over one.
SUSTAIN_WINDOW_S = 10

RATE_LIMITED = Counter(
    "marksman_gateway_rate_limited_total",
    "Requests refused with 429, by scope: the API key's name when the rule set gives that key its own limit "
    "(so bounded by the configured keys), else 'default'.",
    ["scope"],
)


@lru_cache(maxsize=4096)
def _windows(limit: RateLimit) -> tuple[RateLimitItem, RateLimitItem]:
    return (RateLimitItemPerSecond(limit.burst, 1),
            RateLimitItemPerSecond(limit.requests_per_s * SUSTAIN_WINDOW_S, SUSTAIN_WINDOW_S))


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: str
    limit: RateLimit
    retry_after_s: int


class KeyRateLimiter:
    """Counts each key's requests in memory; `check` consumes one request, or says how long to wait."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, key_name: str, scope: str, limit: RateLimit) -> Refusal | None:
        """None when the request may go (and is counted); else the refusal, Retry-After >= 1 s."""
        windows = _windows(limit)
        # A refused request consumes nothing, so a client that waits as told gets through.
        if all(self._limiter.test(window, key_name) for window in windows):
            for window in windows:
                self._limiter.hit(window, key_name)
            return None
        stats = [self._limiter.get_window_stats(window, key_name) for window in windows]
        # Every full window must have a slot free again; reset_time is when its oldest request leaves it.
        resets = [s.reset_time for s in stats if s.remaining == 0]
        wait_s = max(resets) - time.time() if resets else 1.0
        return Refusal(scope, limit, max(1, math.ceil(wait_s)))


async def enforce(request: Request, principal: Principal) -> None:
    """429 with Retry-After when the key is over its limit under the current rule set; nothing without one."""
    limiter: KeyRateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    store: PricingStore | None = getattr(request.app.state, "pricing", None)
    if limiter is None or store is None or getattr(request.state, "rate_checked", False):
        return
    request.state.rate_checked = True  # a route with two auth dependencies counts once
    rule_set = store.current_rule_set()
    found = rule_set.spec.channel_rules.key_limit(principal.name) if rule_set is not None else None
    if found is None:
        return
    refusal = limiter.check(principal.name, *found)
    if refusal is None:
        return
    RATE_LIMITED.labels(refusal.scope).inc()
    log.info("rate limited", extra={"api_key_name": principal.name, "scope": refusal.scope,
                                    "retry_after_s": refusal.retry_after_s})
    raise ApiError(429, "rate limit exceeded", {
        "scope": refusal.scope, "requests_per_s": refusal.limit.requests_per_s, "burst": refusal.limit.burst,
        "retry_after_s": refusal.retry_after_s,
    }, headers={"Retry-After": str(refusal.retry_after_s)})
