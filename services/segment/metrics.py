"""Prometheus metrics of the segment service (segment names are chosen by users: never a label; goals are a fixed set)."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

PORTRAITS = Gauge("marksman_segment_portraits_cached", "Portraits in the segment service's cache and frame.")
REFRESH_SECONDS = Histogram(
    "marksman_segment_refresh_seconds",
    "Time to evaluate a segment and write its members as a new version.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
)
TRAINING_SECONDS = Histogram(
    "marksman_segment_training_seconds",
    "Time to train and store a predictive model, by goal (reading interactions, features, fit, evaluation).",
    ["goal"],
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0),
)
MODEL_AUC = Gauge(
    "marksman_segment_model_auc",
    "Held-out AUC of each goal's newest model (NaN when its held-out set has one class).",
    ["goal"],
)
MODEL_BETTER_THAN_CHANCE = Gauge(
    "marksman_segment_model_better_than_chance",
    "1 when each goal's newest model is clearly better than chance, 0 when it is not.",
    ["goal"],
)
