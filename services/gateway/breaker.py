"""A circuit breaker per upstream: closed, open after repeated failures, half-open with one probe."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import grpc

from services.gateway.errors import UpstreamError

# Our own small state machine rather than a library (looked at: purgatory 3.0, aiobreaker 1.2, pybreaker 1.4):
# none opens on a failure ratio over recent calls, only on failures in a row; purgatory's half-open state lets
# every waiting call through at once (a stampede on a service that is just coming back) and goes through an
# awaited unit of work and message bus on every call (the quote path's budget is a few ms); pybreaker is
# synchronous (its async path needs tornado); aiobreaker has had no release since 2021. All three read the wall
# clock, so their tests would have to sleep through cool-downs.
# What says "the upstream is not answering": an answer such as NOT_FOUND or INVALID_ARGUMENT proves it is up.
FAILURE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class State(IntEnum):
    """The gauge's values: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True)
class Policy:
    """When a breaker opens (`failures` in a row, or `ratio` of the last `window` calls) and for how long."""

    failures: int = 5
    window: int = 20
    ratio: float = 0.5
    cooldown_s: float = 10.0


class CircuitOpen(UpstreamError):
    """Refused without calling: the upstream's breaker is open (503 with Retry-After)."""

    def __init__(self, service: str, retry_in_s: float) -> None:
        super().__init__(service, grpc.StatusCode.UNAVAILABLE, "circuit open")
        self.retry_in_s = max(1, math.ceil(retry_in_s))
        self.error = f"{service} is unavailable (circuit open, retry in {self.retry_in_s} s)"
        self.detail = {"grpc_status": "UNAVAILABLE", "circuit": "open"}
        self.headers["Retry-After"] = str(self.retry_in_s)


class Breaker:
    """The state machine of one upstream; the caller asks `admit()` before a call and reports its outcome.

    Used from one event loop only, so it needs no lock."""

    def __init__(self, name: str, policy: Policy, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._state = State.CLOSED
        self._opened_at = 0.0
        self._in_a_row = 0
        self._recent: deque[bool] = deque(maxlen=policy.window)  # True: the call failed
        self._probing = False

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self._clock() - self._opened_at >= self.policy.cooldown_s:
            self._set(State.HALF_OPEN)
        return self._state

    def retry_in_s(self) -> float:
        """Seconds until a probe may go through (0 when calls pass now)."""
        state = self.state
        if state is State.OPEN:
            return self.policy.cooldown_s - (self._clock() - self._opened_at)
        # Half-open with the probe out: its answer decides within one deadline; ask again shortly.
        return 1.0 if state is State.HALF_OPEN and self._probing else 0.0

    def admit(self) -> bool:
        """Lets the call through (True when it is the half-open probe, the one call let through then), or
        raises CircuitOpen."""
        state = self.state
        if state is State.CLOSED:
            return False
        if state is State.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        raise CircuitOpen(self.name, self.retry_in_s())

    def record(self, failed: bool, probe: bool = False) -> None:
        """The outcome of an admitted call; only the probe decides a half-open breaker."""
        if probe:
            self._probing = False
            if failed:
                self._open()
            else:
                self._close()
            return
        if self._state is not State.CLOSED:  # admitted before the breaker opened: it has been judged already
            return
        self._in_a_row = self._in_a_row + 1 if failed else 0
        self._recent.append(failed)
        full = len(self._recent) == self.policy.window
        if self._in_a_row >= self.policy.failures or (full and sum(self._recent) >= self.policy.ratio * len(self._recent)):
            self._open()

    def release(self, probe: bool) -> None:
        """An admitted call ended without an outcome (cancelled): a probe's slot is free again."""
        if probe:
            self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._in_a_row = 0
        self._recent.clear()
        self._set(State.OPEN)

    def _close(self) -> None:
        self._in_a_row = 0
        self._recent.clear()
        self._set(State.CLOSED)

    def _set(self, state: State) -> None:
        self._state = state


def is_failure(code: grpc.StatusCode) -> bool:
    return code in FAILURE_CODES
