"""Ranking metrics over a score matrix: precision@k, recall@k, AUC and catalogue coverage."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata


@dataclass(frozen=True, slots=True)
class RankingMetrics:
    """Means over the evaluated users; coverage is the share of catalogue items in any top-k list."""

    precision: float
    recall: float
    auc: float
    coverage: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready."""
        return asdict(self)


def ranking_metrics(
    scores: npt.NDArray[np.floating],
    relevant: npt.NDArray[np.bool_],
    excluded: npt.NDArray[np.bool_],
    k: int,
) -> RankingMetrics:
    """Metrics of one score matrix (users x items) against relevant items, never ranking excluded ones.

    precision@k = hits in the top k / k; recall@k = hits / relevant items; AUC = the share of
    (relevant, other candidate) pairs ordered correctly, ties counting a half; all averaged over users.
    Users without a relevant candidate are left out; coverage counts only candidate items.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    relevant = relevant & ~excluded
    keep = relevant.any(axis=1)
    if not keep.any():
        return RankingMetrics(precision=float("nan"), recall=float("nan"), auc=float("nan"), coverage=0.0)
    masked = np.where(excluded, -np.inf, scores.astype(np.float64))[keep]
    relevant, excluded = relevant[keep], excluded[keep]
    users, items = masked.shape
    top = top_indices(masked, k)
    rows = np.arange(users)[:, None]
    shown = np.isfinite(masked[rows, top])
    hits = (relevant[rows, top] & shown).sum(axis=1)
    positives = relevant.sum(axis=1)
    # Excluded items sit at -inf, below every candidate, so a candidate's rank among candidates is its
    # rank among all items minus the number excluded.
    ranks = rankdata(masked, method="average", axis=1) - excluded.sum(axis=1, keepdims=True)
    negatives = (~excluded).sum(axis=1) - positives
    above = (np.where(relevant, ranks, 0.0).sum(axis=1) - positives * (positives + 1) / 2.0)
    scored = negatives > 0
    auc = float(np.mean(above[scored] / (positives[scored] * negatives[scored]))) if scored.any() else float("nan")
    return RankingMetrics(
        precision=float(np.mean(hits / k)),
        recall=float(np.mean(hits / positives)),
        auc=auc,
        coverage=float(np.unique(top[shown]).size / items),
    )


def top_indices(scores: npt.NDArray[np.floating], k: int) -> npt.NDArray[np.intp]:
    """Per row, the columns of the k highest scores, best first (argpartition, then a sort of only k)."""
    width = scores.shape[1]
    if k >= width:
        return np.argsort(-scores, axis=1, kind="stable")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
