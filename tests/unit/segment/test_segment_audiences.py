"""Model audience definitions (goal, exactly one cut, ranges) and scores -> members (known customers, ties, order)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from services.common.errors import InvalidArgument
from services.segment.audiences import GOALS, ModelAudience, check_audience, check_goal, members

KEYS = pd.Series([10, 20, 30, 40, 50], index=["a", "b", "c", "d", "e"])


def test_the_five_goals_are_known_and_others_are_not() -> None:
    assert GOALS == ("retention", "growth", "growth_new_category", "activation", "acquisition")
    for goal in GOALS:
        assert check_goal(goal) == goal
    with pytest.raises(InvalidArgument, match="unknown goal 'churn'; expected one of: retention, growth"):
        check_goal("churn")


@pytest.mark.parametrize(("top_k", "threshold", "message"), [
    (None, None, "exactly one of top_k"),
    (5, 0.5, "exactly one of top_k"),
    (0, None, "top_k must be between 1 and"),
    (-3, None, "top_k must be between 1 and"),
    (None, 1.5, "threshold is a probability between 0 and 1; got 1.5"),
    (None, -0.1, "between 0 and 1"),
    (None, math.nan, "between 0 and 1"),
])
def test_bad_definitions_say_what_is_wrong(top_k: int | None, threshold: float | None, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_audience("retention", top_k, threshold)


def test_good_definitions_and_their_wording() -> None:
    assert check_audience("growth", 500, None) == ModelAudience("growth", 500, None)
    assert check_audience("activation", None, 0.0).threshold == 0.0
    assert check_audience("activation", None, 1.0).threshold == 1.0
    assert ModelAudience("retention", top_k=500).describe() == "retention model, top 500"
    assert ModelAudience("growth", threshold=0.25).describe() == "growth model, score >= 0.25"


def test_top_k_takes_the_best_scores_of_customers_with_a_portrait() -> None:
    # "z" scores highest but has no cached portrait: it cannot be a member.
    scores = pd.Series([0.2, 0.9, 0.5, 0.7, 0.99], index=["a", "b", "c", "d", "z"])
    keys, chosen = members(scores, KEYS, ModelAudience("retention", top_k=2))
    assert keys.tolist() == [20, 40] and chosen.tolist() == [0.9, 0.7]  # sorted by key, scores aligned
    keys, _ = members(scores, KEYS, ModelAudience("retention", top_k=100))
    assert keys.tolist() == [10, 20, 30, 40]


def test_threshold_keeps_every_score_at_or_above_it() -> None:
    scores = pd.Series([0.2, 0.9, 0.5, 0.7], index=["d", "b", "a", "c"])
    keys, chosen = members(scores, KEYS, ModelAudience("growth", threshold=0.5))
    assert keys.tolist() == [10, 20, 30] and chosen.tolist() == [0.5, 0.9, 0.7]
    keys, chosen = members(scores, KEYS, ModelAudience("growth", threshold=0.95))
    assert keys.size == 0 and chosen.size == 0


def test_ties_go_to_the_earlier_customer_id_whatever_the_input_order() -> None:
    scores = pd.Series([0.5, 0.5, 0.5, 0.5], index=["d", "b", "c", "a"])
    keys, _ = members(scores, KEYS, ModelAudience("retention", top_k=2))
    assert keys.tolist() == [10, 20]
    shuffled = scores.sample(frac=1.0, random_state=3)
    assert members(shuffled, KEYS, ModelAudience("retention", top_k=2))[0].tolist() == [10, 20]


def test_no_scores_no_members() -> None:
    keys, chosen = members(pd.Series([], dtype=float), KEYS, ModelAudience("retention", top_k=5))
    assert keys.dtype == np.int64 and keys.size == 0 and chosen.size == 0
