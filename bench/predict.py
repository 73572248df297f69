"""Benchmark: trains the four goals' predictive models on the real retail data and prints quality, sizes and seconds,
in process or (--gateway) through a running stack's gateway, i.e. by the segment service."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.demo.retail import load_frame
from services.segment import predict

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "online-retail" / "online_retail.parquet"


def through_gateway(url: str, key: str) -> None:
    """Trains every goal through the gateway of a stack that holds the data (`marksman up --demo`)."""
    import httpx

    header = f"{'goal':<22}{'AUC':>7}{'±se':>7}{'lift@10%':>10}{'base':>7}{'train n':>9}{'test n':>8}{'fit s':>7}{'service s':>11}{'http s':>8}"
    print(header)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600) as client:
        for goal in predict.GOALS:
            began = time.perf_counter()
            response = client.post(f"/v1/predictive-models/{goal}/train")
            response.raise_for_status()
            m = response.json()
            q = m["quality"]
            verdict = "" if q["better_than_chance"] else "  NOT better than chance"
            auc, se, lift, base = (math.nan if q[f] is None else q[f]  # null: a one-class held-out set
                                   for f in ("auc", "auc_se", "top_decile_lift", "base_rate"))
            print(f"{goal:<22}{auc:>7.3f}{se:>7.3f}{lift:>10.2f}{base:>7.3f}"
                  f"{m['train_size']:>9}{q['held_out']:>8}{m['fit_seconds']:>7.2f}{m['seconds']:>11.2f}"
                  f"{time.perf_counter() - began:>8.2f}{verdict}")


def main() -> None:
    """Loads the data, trains every goal and prints one line per model."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--gateway", default="", help="train through this gateway instead (e.g. http://127.0.0.1:8080)")
    parser.add_argument("--key", default="", help="an admin API key of that gateway")
    args = parser.parse_args()
    if args.gateway:
        through_gateway(args.gateway, args.key)
        return
    started = time.perf_counter()
    frame = load_frame(args.data)
    lines = predict.lines_from_retail(frame)
    print(f"loaded {len(lines):,} lines of {lines['customer_id'].nunique():,} customers "
          f"in {time.perf_counter() - started:.1f}s (cpus: {os.cpu_count()})")
    cutoffs = predict.time_split_cutoffs(lines)
    print(f"cutoffs: train {cutoffs[0]:%Y-%m-%d}, test {cutoffs[1]:%Y-%m-%d}, horizon {predict.HORIZON.days} days")
    header = f"{'goal':<22}{'AUC':>7}{'±se':>7}{'lift@10%':>10}{'base':>7}{'train n':>9}{'test n':>8}{'fit s':>7}{'total s':>9}  verdict"
    print(header)
    for goal in predict.GOALS:
        began = time.perf_counter()
        if goal == predict.ACQUISITION:
            model = predict.train_lookalike(predict.features(lines, cutoffs[1]))
        else:
            model = predict.train_time_split(goal, lines, cutoffs=cutoffs)
        total = time.perf_counter() - began
        q = model.quality
        verdict = "better than chance" if q.better_than_chance else "NOT better than chance"
        print(f"{goal:<22}{q.auc:>7.3f}{q.auc_se:>7.3f}{q.top_decile_lift:>10.2f}{q.base_rate:>7.3f}"
              f"{model.train_size:>9}{q.size:>8}{model.train_seconds:>7.2f}{total:>9.2f}  {verdict}")
        print(f"{'':<22}{model.evaluation}")


if __name__ == "__main__":
    main()
