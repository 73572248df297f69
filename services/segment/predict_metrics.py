"""Held-out quality of a predictive model: AUC with its standard error, top-decile lift, and a chance flag."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

# A model counts as better than chance only if its AUC is at least this, and its 95% lower bound
# (Hanley & McNeil standard error) is above 0.5: "clearly above 0.5", not noise on a small sample.
MIN_AUC = 0.55
Z95 = 1.96
TOP_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class Quality:
    """The held-out figures of one model; `better_than_chance` is False when the AUC is not clearly above 0.5."""

    auc: float
    auc_se: float
    top_decile_lift: float
    base_rate: float
    positives: int
    size: int
    better_than_chance: bool


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC from the class sizes."""
    if positives == 0 or negatives == 0:
        return math.nan
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc)
        + (positives - 1) * (q1 - auc * auc)
        + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def top_lift(labels: npt.ArrayLike, scores: npt.ArrayLike, share: float = TOP_SHARE) -> float:
    """Positive rate among the top `share` by score (at least one row, ties by input order) over the base rate."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    if y.size == 0 or not y.any():
        return math.nan
    count = max(1, math.ceil(share * y.size))
    top = np.argsort(-s, kind="stable")[:count]
    return float(y[top].mean() / y.mean())


def quality(labels: npt.ArrayLike, scores: npt.ArrayLike) -> Quality:
    """AUC, its standard error, top-decile lift, base rate and the chance flag of scores against 0/1 labels."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    positives = int(y.sum())
    negatives = int(y.size - positives)
    if positives == 0 or negatives == 0:
        return Quality(math.nan, math.nan, math.nan, positives / y.size if y.size else math.nan,
                       positives, int(y.size), better_than_chance=False)
    auc = float(roc_auc_score(y, s))
    se = auc_standard_error(auc, positives, negatives)
    return Quality(
        auc=auc,
        auc_se=se,
        top_decile_lift=top_lift(y, s),
        base_rate=positives / y.size,
        positives=positives,
        size=int(y.size),
        better_than_chance=auc >= MIN_AUC and auc - Z95 * se > 0.5,
    )
