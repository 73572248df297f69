"""Ranking metrics on a hand-computed example: precision@k, recall@k, AUC (ties a half), coverage."""

from __future__ import annotations

import numpy as np
import pytest

from services.recommend.metrics import ranking_metrics, top_indices


def _mask(rows: list[list[int]], width: int = 5) -> np.ndarray:
    mask = np.zeros((len(rows), width), dtype=bool)
    for row, columns in enumerate(rows):
        mask[row, columns] = True
    return mask


def test_metrics_match_the_hand_computed_example() -> None:
    scores = np.array([
        [0.9, 0.8, 0.7, 0.1, 0.5],
        [0.1, 0.2, 0.3, 0.4, 0.5],
        [0.5, 0.4, 0.3, 0.2, 0.1],
    ])
    # User 2's only relevant item is excluded (already bought): no relevant candidate, left out.
    relevant = _mask([[2, 3], [4], [0]])
    excluded = _mask([[0], [], [0]])
    metrics = ranking_metrics(scores, relevant, excluded, k=2)
    # User 0: item 0 excluded, top 2 = items 1, 2; one hit of two relevant. AUC: positives 2 (0.7) and
    # 3 (0.1) against negatives 1 (0.8) and 4 (0.5): only 2 > 4 is right, 1 of 4 pairs.
    # User 1: top 2 = items 4, 3; one hit of one relevant; AUC 1.
    assert metrics.precision == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics.recall == pytest.approx((1 / 2 + 1) / 2)
    assert metrics.auc == pytest.approx((0.25 + 1.0) / 2)
    # Shown: items 1, 2 (user 0) and 4, 3 (user 1): 4 of 5.
    assert metrics.coverage == pytest.approx(4 / 5)


def test_ties_count_a_half_in_the_auc() -> None:
    metrics = ranking_metrics(np.ones((1, 4)), _mask([[1]], 4), _mask([[]], 4), k=1)
    assert metrics.auc == pytest.approx(0.5)


def test_excluded_items_are_never_shown_even_when_fewer_candidates_than_k_remain() -> None:
    scores = np.array([[3.0, 2.0, 1.0]])
    metrics = ranking_metrics(scores, _mask([[2]], 3), _mask([[0, 1]], 3), k=3)
    assert metrics.precision == pytest.approx(1 / 3)
    assert metrics.recall == 1.0
    assert metrics.coverage == pytest.approx(1 / 3)


def test_no_user_to_evaluate_gives_nan_and_k_must_be_positive() -> None:
    empty = ranking_metrics(np.ones((1, 3)), _mask([[]], 3), _mask([[]], 3), k=2)
    assert np.isnan(empty.precision) and empty.coverage == 0.0
    with pytest.raises(ValueError, match="k must be positive"):
        ranking_metrics(np.ones((1, 3)), _mask([[1]], 3), _mask([[]], 3), k=0)


def test_top_indices_are_best_first() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_array_equal(top_indices(scores, 3), [[1, 3, 2], [0, 1, 2]])
    np.testing.assert_array_equal(top_indices(scores, 9), [[1, 3, 2, 0], [0, 1, 2, 3]])
