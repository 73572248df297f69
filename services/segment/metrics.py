"""Prometheus metrics of the segment service (no labels: segment names are chosen by users)."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

PORTRAITS = Gauge("marksman_segment_portraits_cached", "Portraits in the segment service's cache and frame.")
REFRESH_SECONDS = Histogram(
    "marksman_segment_refresh_seconds",
    "Time to evaluate a segment and write its members as a new version.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0),
)
