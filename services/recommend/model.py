"""Training and offline evaluation of the LightFM hybrid recommender (pure: frames in, Recommender out)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from services.recommend.metrics import RankingMetrics
from services.recommend.recommender import Recommender
from services.recommend.weights import InteractionWeights

# Why rectools-lightfm: LightFM is the well-kept hybrid matrix factorisation library (item and user
# features, WARP/BPR losses, OpenMP); the PyPI "lightfm" sdist does not build under PEP 517 here
# (DESIGN.md section 7), rectools-lightfm 1.17.3 is the same code, MIT, and imports as `lightfm`.

Loss = Literal["warp", "bpr", "logistic", "warp-kos"]
Schedule = Literal["adagrad", "adadelta"]


@dataclass(frozen=True, slots=True)
class TrainParams:
    """LightFM's knobs plus which features to use; the defaults are the validated choice (bench/recommend_quality.py)."""

    no_components: int = 32
    loss: Loss = "warp"
    epochs: int = 20
    learning_rate: float = 0.05
    learning_schedule: Schedule = "adagrad"
    item_alpha: float = 0.0
    user_alpha: float = 0.0
    max_sampled: int = 10
    seed: int = 42
    threads: int = 2
    use_item_features: bool = True
    use_user_features: bool = True
    item_identity: bool = True
    user_identity: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainParams:
        """The inverse of to_dict."""
        return cls(**data)


@dataclass(frozen=True, slots=True)
class OfflineReport:
    """A time-split evaluation of the model and of the popularity baseline on the same users and exclusions."""

    k: int
    cutoff: str
    model: RankingMetrics
    popularity: RankingMetrics
    users_evaluated: int
    users_skipped_not_in_train: int
    users_skipped_no_new_purchase: int
    train_interactions: int
    test_purchases: int
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def train(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    params: TrainParams | None = None,
    weights: InteractionWeights | None = None,
    as_of: pd.Timestamp | None = None,
) -> Recommender:
    """Fits LightFM on the weighted interactions with item/user features; precomputes everything serving needs.

    interactions: customer_id, sku, kind (view/cart/order/refund), quantity, occurred_at (UTC), amount_minor.
    items: sku, category, brand, price_band ("p1".."p5"), in_stock, tags (list[str]); skus seen only in
    interactions are added with no features. users: customer_id plus any categorical columns ("col=value").
    as_of anchors the time decay (default: the last interaction). Raises ValueError on malformed input.
    """
    raise NotImplementedError


def evaluate(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    users: pd.DataFrame | None,
    cutoff: pd.Timestamp | str,
    k: int = 10,
    params: TrainParams | None = None,
    weights: InteractionWeights | None = None,
) -> OfflineReport:
    """Trains on events before `cutoff`, tests on orders after it of items the customer had not ordered before.

    Customers unknown at the cutoff or without such a purchase are skipped (and counted). The popularity
    baseline ranks by distinct buyers before the cutoff; both rankings drop items already bought.
    """
    raise NotImplementedError
