"""Benchmark: preview and refresh of a three-clause rule over 1M synthetic portraits, through gRPC, beside a bare pandas mask."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from marksman.segment.v1 import segment_pb2, segment_pb2_grpc

from services.common.db import make_engine
from services.common.grpc_server import Registration, start
from services.segment import synthetic
from services.segment.checks import compile_rule
from services.segment.evaluate import mask
from services.segment.segments import Segments
from services.segment.server import SegmentServicer
from services.segment.store import SegmentStore

RULE = "recency_days <= 90 and monetary > 1000 or frequency >= 5"
# Selects every portrait: the refresh that writes a million members.
EVERYONE = "frequency >= 0"
NOW = datetime(2011, 12, 10, tzinfo=UTC)
PAGE = 5000


def bare_pandas(raw: pd.DataFrame) -> pd.Series:
    """The same filter written by hand: recency needs an order; monetary is in pence."""
    return ((raw["recency_days"] <= 90) & (raw["frequency"] >= 1) & (raw["monetary_minor"] > 100_000)) | (
        raw["frequency"] >= 5)


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds over `repeat` runs after one warm-up, and the last result."""
    result = action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def load(store: SegmentStore, raw: pd.DataFrame) -> None:
    """Writes the portraits through the cache's upsert, a sync page at a time, as a sync would."""
    table = raw.drop(columns=["key"]).assign(computed_at=NOW, synced_at=NOW)
    names = list(table.columns)
    # Plain Python values, as a sync builds them from protos (DataFrame.to_dict is five times slower).
    records = [dict(zip(names, row, strict=True)) for row in zip(*(table[c].tolist() for c in names), strict=True)]
    for start_at in range(0, len(records), PAGE):
        store.upsert_portraits(records[start_at : start_at + PAGE], f"bench:{start_at}")


def refresh(stub: segment_pb2_grpc.SegmentServiceStub, name: str, rule: str) -> tuple[float, Any]:
    """Creates the segment, refreshes it three times; the median wall time and the median version."""
    stub.CreateSegment(segment_pb2.CreateSegmentRequest(name=name, rule=rule))
    runs = []
    for _ in range(3):
        begun = time.perf_counter()
        version = stub.RefreshSegment(segment_pb2.RefreshSegmentRequest(name=name)).version
        runs.append((time.perf_counter() - begun, version))
    runs.sort(key=lambda run: run[0])
    return runs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portraits", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'segment.db'}"
        store = SegmentStore(make_engine(url))
        store.migrate()
        segments = Segments(store, lambda: NOW)
        figures: list[tuple[str, str]] = [("database", url.split(":", 1)[0]), ("portraits", f"{args.portraits:,}")]

        started = time.perf_counter()
        raw = synthetic.portraits(args.portraits)
        figures.append(("generate synthetic portraits", f"{time.perf_counter() - started:.1f} s"))
        started = time.perf_counter()
        load(store, raw)
        seconds = time.perf_counter() - started
        figures.append(("write them to the portrait cache", f"{seconds:.1f} s ({args.portraits / seconds:,.0f}/s)"))
        started = time.perf_counter()
        segments.load()
        figures.append(("load the frame from the cache", f"{time.perf_counter() - started:.1f} s"))

        expected = int(bare_pandas(raw).sum())
        pandas_s, _ = timed(lambda: bare_pandas(raw), args.repeat)
        condition = compile_rule(RULE, lambda _name: False).condition
        frame = segments.frame
        evaluator_s, in_process = timed(lambda: mask(condition, frame, lambda _name: np.empty(0, "int64")),
                                        args.repeat)

        running = start("segment-bench", [Registration(
            segment_pb2_grpc.add_SegmentServiceServicer_to_server, SegmentServicer(segments),
            segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name)], metrics_port=None, workers=4)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = segment_pb2_grpc.SegmentServiceStub(channel)
                preview_s, preview = timed(lambda: stub.PreviewRule(segment_pb2.PreviewRuleRequest(rule=RULE)),
                                           args.repeat)
                refreshed = {name: refresh(stub, name, rule) for name, rule in (("bench", RULE), ("all", EVERYONE))}
        finally:
            running.stop(0)

        assert preview.count == expected == int(in_process.sum()) == refreshed["bench"][1].size, "counts differ"
        assert refreshed["all"][1].size == args.portraits
        figures += [
            ("rule", RULE),
            ("members", f"{expected:,}"),
            ("bare pandas mask (median)", f"{pandas_s * 1000:.1f} ms"),
            ("service evaluator mask, in process", f"{evaluator_s * 1000:.1f} ms"),
            ("PreviewRule through gRPC (count + sample)", f"{preview_s * 1000:.1f} ms"),
        ]
        for name, (wall, version) in refreshed.items():
            figures.append((f"RefreshSegment '{name}' through gRPC ({version.size:,} members, median of 3)",
                            f"{wall:.2f} s (evaluate + write: {version.seconds:.2f} s)"))
    width = max(len(name) for name, _ in figures)
    for name, value in figures:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
