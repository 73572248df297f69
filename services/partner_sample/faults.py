"""Fault injection for tests and demos: fail the next N batches or for a while, or answer slowly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """What the next intake requests suffer; read with `failure()` and `delay_s()` once per request."""

    fail_next: int = 0
    fail_status: int = 500
    fail_until: float = 0.0
    delay_ms: int = 0
    # 0: every request is slow while delay_ms > 0; N: only the next N requests are.
    delay_next: int = 0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def set(self, fail_next: int | None = None, fail_status: int | None = None, fail_for_s: float | None = None,
            delay_ms: int | None = None, delay_next: int | None = None) -> None:
        """Changes only the given settings; a window (`fail_for_s`) starts now."""
        if fail_status is not None:
            if not 400 <= fail_status <= 599:
                raise ValueError(f"fail_status must be an HTTP error status (400-599); got {fail_status}")
            self.fail_status = fail_status
        for name, value in (("fail_next", fail_next), ("delay_ms", delay_ms), ("delay_next", delay_next),
                            ("fail_for_s", fail_for_s)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative; got {value}")
        if fail_next is not None:
            self.fail_next = fail_next
        if fail_for_s is not None:
            self.fail_until = self.clock() + fail_for_s if fail_for_s else 0.0
        if delay_ms is not None:
            self.delay_ms = delay_ms
        if delay_next is not None:
            self.delay_next = delay_next

    def failure(self) -> int | None:
        """The status to answer this request with instead of taking it, or None to take it."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.fail_status
        if self.fail_until and self.clock() < self.fail_until:
            return self.fail_status
        return None

    def delay_s(self) -> float:
        """Seconds to hold this request's answer (after it was recorded: the sender may time out)."""
        if self.delay_ms <= 0:
            return 0.0
        if self.delay_next > 0:
            self.delay_next -= 1
            if self.delay_next == 0:
                self.delay_ms, delay = 0, self.delay_ms
                return delay / 1000
        return self.delay_ms / 1000

    def describe(self) -> dict[str, Any]:
        left = max(0.0, self.fail_until - self.clock()) if self.fail_until else 0.0
        return {"fail_next": self.fail_next, "fail_status": self.fail_status, "fail_for_s": round(left, 3),
                "delay_ms": self.delay_ms, "delay_next": self.delay_next}
