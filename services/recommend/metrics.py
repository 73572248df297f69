"""Ranking metrics over a score matrix: precision@k, recall@k, AUC and catalogue coverage."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt


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
    """
    raise NotImplementedError
