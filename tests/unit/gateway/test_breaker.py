"""The circuit breaker's state machine on a hand-driven clock: opening, failing fast, the half-open probe."""

from __future__ import annotations

import grpc
import pytest

from services.gateway.breaker import Breaker, CircuitOpen, Policy, State, is_failure


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def breaker(clock: Clock, failures: int = 3, window: int = 10, ratio: float = 0.5) -> Breaker:
    return Breaker("profile", Policy(failures=failures, window=window, ratio=ratio, cooldown_s=10.0), clock=clock)


def fail(b: Breaker, times: int = 1) -> None:
    for _ in range(times):
        b.record(True, b.admit())


def test_opens_after_failures_in_a_row_and_refuses_with_the_time_left(clock: Clock) -> None:
    b = breaker(clock)
    fail(b, 2)
    b.record(False, b.admit())  # a success in between starts the count again
    fail(b, 2)
    assert b.state is State.CLOSED
    fail(b)
    assert b.state is State.OPEN
    clock.now += 3.2
    with pytest.raises(CircuitOpen) as refused:
        b.admit()
    assert refused.value.status == 503 and refused.value.retry_in_s == 7
    assert refused.value.error == "profile is unavailable (circuit open, retry in 7 s)"
    assert refused.value.headers["Retry-After"] == "7"


def test_opens_on_the_failure_ratio_of_a_full_window(clock: Clock) -> None:
    b = breaker(clock, failures=100, window=10, ratio=0.5)
    for n in range(9):
        b.record(n % 2 == 0, b.admit())  # 5 failures of 9: the window is not full yet
    assert b.state is State.CLOSED
    b.record(False, b.admit())  # 5 of 10
    assert b.state is State.OPEN


def test_half_open_lets_one_probe_through_and_its_success_closes(clock: Clock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.now += 10
    assert b.state is State.HALF_OPEN and b.retry_in_s() == 0
    probe = b.admit()
    assert probe
    with pytest.raises(CircuitOpen) as refused:
        b.admit()  # only one probe at a time
    assert refused.value.retry_in_s == 1
    b.record(False, probe)
    assert b.state is State.CLOSED
    assert b.admit() is False


def test_a_failed_probe_opens_again_for_a_whole_cool_down(clock: Clock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.now += 11
    b.record(True, b.admit())
    assert b.state is State.OPEN and b.retry_in_s() == 10


def test_a_cancelled_probe_frees_its_slot(clock: Clock) -> None:
    b = breaker(clock)
    fail(b, 3)
    clock.now += 10
    b.release(b.admit())
    assert b.admit() is True


def test_late_answers_of_calls_admitted_before_the_opening_decide_nothing(clock: Clock) -> None:
    b = breaker(clock)
    early = b.admit()
    fail(b, 3)
    clock.now += 10
    probe = b.admit()
    b.record(False, early)  # an old call's success: not the probe
    assert b.state is State.HALF_OPEN
    with pytest.raises(CircuitOpen):
        b.admit()
    b.record(True, probe)
    assert b.state is State.OPEN


@pytest.mark.parametrize(("code", "counts"), [
    (grpc.StatusCode.UNAVAILABLE, True), (grpc.StatusCode.DEADLINE_EXCEEDED, True),
    (grpc.StatusCode.INVALID_ARGUMENT, False), (grpc.StatusCode.NOT_FOUND, False),
    (grpc.StatusCode.FAILED_PRECONDITION, False),
])
def test_only_an_upstream_that_does_not_answer_counts_as_failing(code: grpc.StatusCode, counts: bool) -> None:
    assert is_failure(code) is counts
