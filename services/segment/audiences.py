"""Model audiences: a goal with exactly one cut (top K or a score threshold), its checks, and scores to members."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.common.errors import InvalidArgument
from services.segment import predict

GOALS: tuple[str, ...] = predict.GOALS
# A top K above any plausible customer base is a typo, not an audience.
MAX_TOP_K = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ModelAudience:
    """The customers `goal`'s current model scores highest: the `top_k` best, or those >= `threshold`."""

    goal: str
    top_k: int | None = None
    threshold: float | None = None

    def describe(self) -> str:
        cut = f"top {self.top_k}" if self.top_k is not None else f"score >= {self.threshold:g}"
        return f"{self.goal} model, {cut}"


@dataclass(frozen=True, slots=True)
class ScoredMembers:
    """A model audience's members (portrait keys, sorted) with their scores, and what chose them."""

    keys: np.ndarray
    scores: np.ndarray
    model_version: int
    description: str


def check_goal(goal: str) -> str:
    if goal not in GOALS:
        raise InvalidArgument(f"unknown goal {goal!r}; expected one of: {', '.join(GOALS)}")
    return goal


def check_audience(goal: str, top_k: int | None, threshold: float | None) -> ModelAudience:
    """The audience, or InvalidArgument saying what is wrong with it."""
    check_goal(goal)
    if (top_k is None) == (threshold is None):
        raise InvalidArgument("a model audience needs exactly one of top_k (the K best scores) and threshold "
                              "(every score at or above it)")
    if top_k is not None and not 1 <= top_k <= MAX_TOP_K:
        raise InvalidArgument(f"top_k must be between 1 and {MAX_TOP_K:,}; got {top_k}")
    if threshold is not None and not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise InvalidArgument(f"threshold is a probability between 0 and 1; got {threshold}")
    return ModelAudience(goal, top_k, threshold)


def members(scores: pd.Series, keys: pd.Series, audience: ModelAudience) -> tuple[np.ndarray, np.ndarray]:
    """The chosen customers' keys (sorted) and scores.

    `scores` is indexed by customer id; `keys` maps customer id -> portrait key. Only customers with a
    cached portrait can be members (a version stores keys); ties in a top K go to the earlier customer
    id, so the same scores always give the same members.
    """
    known = scores[scores.index.isin(keys.index)].sort_index(kind="stable")
    chosen = predict.audience(known, top_k=audience.top_k, threshold=audience.threshold)
    member_keys = keys.reindex(chosen.index).to_numpy(dtype="int64")
    order = np.argsort(member_keys, kind="stable")
    return member_keys[order], chosen.to_numpy(dtype=float)[order]
