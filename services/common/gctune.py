"""Garbage-collector settings for long-running services that allocate many short-lived objects."""

from __future__ import annotations

import gc

# Batches of events allocate tens of thousands of containers each; with CPython's default
# thresholds (700, 10, 10) the collector then ran ~40% of the gateway's ingest time, mostly
# rescanning long-lived objects. Measured with bench/ingest.py on the 2-core machines.
THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    """Moves everything alive after start-up out of the collector's reach and collects less often.

    Call once, after imports and wiring, just before serving.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
