"""Retry delays: exponential backoff with jitter, so retries of many messages do not arrive in step."""

from __future__ import annotations

import random


def delay_s(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base * 2^(attempt-1), capped at
    max_s, of which the upper half is random ("equal jitter": never shorter than half the step)."""
    step = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    return step / 2 + (rng or random).uniform(0, step / 2)
