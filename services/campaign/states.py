"""The campaign state machine: which transitions are valid, and the error naming the states otherwise."""

from __future__ import annotations

from enum import StrEnum

from services.common.errors import FailedPrecondition


class State(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Action(StrEnum):
    LAUNCH = "launch"
    START = "start"  # a scheduled campaign's start time has come
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPLETE = "complete"  # every delivery is settled, or the budget is spent


FINAL = frozenset({State.COMPLETED, State.CANCELLED})

# action -> the states it may start from
_FROM: dict[Action, frozenset[State]] = {
    Action.LAUNCH: frozenset({State.DRAFT}),
    Action.START: frozenset({State.SCHEDULED}),
    Action.PAUSE: frozenset({State.SCHEDULED, State.RUNNING}),
    Action.RESUME: frozenset({State.PAUSED}),
    Action.CANCEL: frozenset({State.DRAFT, State.SCHEDULED, State.RUNNING, State.PAUSED}),
    Action.COMPLETE: frozenset({State.RUNNING}),
}


def allowed_from(action: Action) -> frozenset[State]:
    return _FROM[action]


def check(action: Action, current: State) -> None:
    """Raises FailedPrecondition naming the current state and the states the action needs."""
    if current not in _FROM[action]:
        needed = ", ".join(sorted(_FROM[action]))
        raise FailedPrecondition(f"cannot {action.value} a campaign that is {current.value}; "
                                 f"it must be {needed}")


def after(action: Action, current: State, *, start_ahead: bool = False) -> State:
    """The state an action leads to from `current` (checked first); `start_ahead`: the start time is
    still in the future, so a launch or a resume waits as scheduled."""
    check(action, current)
    if action in (Action.LAUNCH, Action.RESUME):
        return State.SCHEDULED if start_ahead else State.RUNNING
    return {
        Action.START: State.RUNNING,
        Action.PAUSE: State.PAUSED,
        Action.CANCEL: State.CANCELLED,
        Action.COMPLETE: State.COMPLETED,
    }[action]
