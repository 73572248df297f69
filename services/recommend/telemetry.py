"""Prometheus metrics of the recommend service; label values come from fixed sets, never from ids."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

TRAINING_SECONDS = Histogram(
    "marksman_recommend_training_seconds",
    "Time of a training run (export, evaluation, gate, final fit, files), by how it ended.",
    ["outcome"],
    buckets=(1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0),
)
SERVING_PRECISION = Gauge(
    "marksman_recommend_serving_precision_at_k",
    "Offline precision@k of the serving model version on its held-out split (0 before any).",
)
SERVING_VERSION = Gauge("marksman_recommend_serving_model_version", "The model version being served (0: none).")
SERVING_TRAINED = Gauge(
    "marksman_recommend_serving_model_trained_timestamp_seconds",
    "When the serving model version finished training (Unix seconds, by the service's clock; unset before any).",
)
FOLLOWS = Counter(
    "marksman_recommend_model_follows_total",
    "Polls of the store that found another process's promotion, erasure or item change, by what came of them.",
    ["outcome"],
)
RECOMMENDATIONS = Counter(
    "marksman_recommend_recommendations_total",
    "Answers of Recommend and SimilarItems, by what produced them (none: the model itself).",
    ["rpc", "fallback"],
)
# The outcome and fallback label values: every one a run or an answer can have.
OUTCOMES = ("serving", "rejected", "failed")
FALLBACKS = ("none", "popular_in_segment", "popular_overall", "item_features")


# The labelled children, looked up once: labels() costs as much as the rest of a counted answer.
_COUNTERS: dict[tuple[str, str], Any] = {}


def count(rpc: str, fallback: str) -> None:
    counter = _COUNTERS.get((rpc, fallback))
    if counter is None:
        counter = _COUNTERS[(rpc, fallback)] = RECOMMENDATIONS.labels(rpc, fallback or "none")
    counter.inc()
