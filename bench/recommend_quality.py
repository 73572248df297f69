"""Benchmark: recommender quality on the real retail data (validation choice, then one test), training time, serving cost."""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.demo.retail import load_frame
from services.recommend import retail, synthetic
from services.recommend.model import OfflineReport, TrainParams, evaluate, train
from services.recommend.scoring import Filters, similar_items, top_k
from services.recommend.weights import InteractionWeights

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "online-retail" / "online_retail.parquet"
# Validation: train before October 2011, validate on October's new purchases; the test cut-off is only
# looked at once, with the parameters chosen here.
VALIDATION_CUTOFF = pd.Timestamp("2011-10-01", tz="UTC")
TEST_CUTOFF = pd.Timestamp("2011-11-01", tz="UTC")
K = 10
Candidate = tuple[str, TrainParams, InteractionWeights]


def candidates() -> list[Candidate]:
    """The defaults and one change of each main choice away from them."""
    params, weights = TrainParams(), InteractionWeights()
    return [
        ("defaults", params, weights),
        ("no time decay", params, dataclasses.replace(weights, half_life_days=None)),
        ("half life x2", params, dataclasses.replace(weights, half_life_days=2 * (weights.half_life_days or 30))),
        ("binary quantities", params, dataclasses.replace(weights, quantity="binary")),
        ("item features in LightFM" if not params.use_item_features else "no item features in LightFM",
         dataclasses.replace(params, use_item_features=not params.use_item_features,
                             item_feature_weight=0.5), weights),
        ("user features (region)" if not params.use_user_features else "no user features",
         dataclasses.replace(params, use_user_features=not params.use_user_features), weights),
        ("max_sampled 30", dataclasses.replace(params, max_sampled=30), weights),
        ("bpr loss", dataclasses.replace(params, loss="bpr"), weights),
    ]


def line(name: str, report: OfflineReport, seconds: float) -> str:
    m, p = report.model, report.popularity
    return (f"{name:<26}{m.precision:>8.4f}{m.recall:>8.4f}{m.auc:>7.3f}{m.coverage:>7.3f}"
            f"{p.precision:>9.4f}{p.recall:>8.4f}{p.auc:>7.3f}{p.coverage:>7.3f}{seconds:>8.1f}")


HEADER = (f"{'':<26}{'p@10':>8}{'r@10':>8}{'AUC':>7}{'cov':>7}{'pop p@10':>9}{'r@10':>8}{'AUC':>7}{'cov':>7}"
          f"{'secs':>8}")


def validate(interactions: pd.DataFrame, items: pd.DataFrame, frame: pd.DataFrame, seeds: tuple[int, ...]) -> Candidate:
    """Every candidate on the validation split (mean over seeds); the best precision@10 wins."""
    early = interactions[interactions["occurred_at"] < TEST_CUTOFF]
    users = retail.users(frame, VALIDATION_CUTOFF)
    print(f"validation: train < {VALIDATION_CUTOFF:%Y-%m-%d}, validate on new purchases up to "
          f"{TEST_CUTOFF:%Y-%m-%d}, mean over seeds {seeds}")
    print(HEADER)
    scored: list[tuple[float, Candidate]] = []
    for name, params, weights in candidates():
        began = time.perf_counter()
        reports = [evaluate(early, items, users, VALIDATION_CUTOFF, K, dataclasses.replace(params, seed=seed), weights)
                   for seed in seeds]
        precision = statistics.fmean(r.model.precision for r in reports)
        print(line(name, _mean(reports), (time.perf_counter() - began) / len(seeds)), flush=True)
        scored.append((precision, (name, params, weights)))
    best = max(scored, key=lambda pair: pair[0])[1]
    print(f"chosen on validation: {best[0]} ({reports[0].users_evaluated} customers evaluated)")
    return best


def _mean(reports: list[OfflineReport]) -> OfflineReport:
    def average(side: str) -> object:
        first = getattr(reports[0], side)
        return dataclasses.replace(first, **{
            field.name: statistics.fmean(getattr(getattr(r, side), field.name) for r in reports)
            for field in dataclasses.fields(first)
        })
    return dataclasses.replace(reports[0], model=average("model"), popularity=average("popularity"))


def test(interactions: pd.DataFrame, items: pd.DataFrame, frame: pd.DataFrame, chosen: Candidate) -> None:
    """The chosen parameters once on the test split, beside plain LightFM WARP for reference."""
    users = retail.users(frame, TEST_CUTOFF)
    plain = (TrainParams(no_components=30, epochs=10, max_sampled=10, use_item_features=False,
                         use_user_features=False), InteractionWeights(quantity="binary"))
    print(f"test: train < {TEST_CUTOFF:%Y-%m-%d}, test on new purchases after it")
    print(HEADER)
    for name, params, weights in ((chosen[0], chosen[1], chosen[2]), ("reference: plain WARP", *plain)):
        began = time.perf_counter()
        report = evaluate(interactions, items, users, TEST_CUTOFF, K, params, weights)
        print(line(name, report, time.perf_counter() - began), flush=True)
    print(f"customers evaluated {report.users_evaluated:,}; skipped: not in training "
          f"{report.users_skipped_not_in_train:,}, no new purchase {report.users_skipped_no_new_purchase:,}; "
          f"test purchases {report.test_purchases:,}, of skus unknown to the model {report.test_purchases_unknown_items:,}")


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Median and p99 wall microseconds of one call, and CPU microseconds per call (steadier on a busy host)."""
    times = []
    cpu = time.thread_time_ns()
    for _ in range(repeat):
        began = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - began) / 1000)
    cpu_per_call = (time.thread_time_ns() - cpu) / 1000 / repeat
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))], cpu_per_call


def serving(interactions: pd.DataFrame, items: pd.DataFrame, frame: pd.DataFrame) -> None:
    """Trains on all the data with the defaults, then times the serving calls."""
    began = time.perf_counter()
    recommender = train(interactions, items, retail.users(frame))
    print(f"train on all the real data ({len(interactions):,} interactions, {len(recommender.customer_ids):,} "
          f"customers, {len(recommender.skus):,} items): {time.perf_counter() - began:.1f} s")
    rng = np.random.default_rng(1)
    customers = rng.choice(recommender.customer_ids, 3000).tolist()
    skus = rng.choice(recommender.skus, 3000).tolist()
    filters = Filters(only_in_stock=True, categories_not_in=frozenset({"Christmas"}), max_price_band="p3",
                      exclude_skus=frozenset(skus[:3]))
    it = iter(range(10**9))
    calls: list[tuple[str, Callable[[], object]]] = [
        ("top_k(10), exclude bought", lambda: top_k(recommender, customers[next(it) % 3000], K)),
        ("top_k(10), five filters", lambda: top_k(recommender, customers[next(it) % 3000], K, filters)),
        ("top_k(10), unknown customer", lambda: top_k(recommender, "nobody", K, segment="region=France")),
        ("similar_items(10)", lambda: similar_items(recommender, skus[next(it) % 3000], K)),
        ("similar_items(10), new item", lambda: similar_items(recommender, "new", K, features={"category": "Home"})),
    ]
    print(f"serving cost over {len(recommender.skus):,} items, one thread, µs per call: wall median / p99, CPU mean")
    for name, call in calls:
        median, p99, cpu = timed(call, 3000)
        print(f"  {name:<30}{median:>8.1f}{p99:>9.1f}{cpu:>8.1f}")


def synthetic_training(rows: int) -> None:
    """train() on synthetic interactions, 30 components, 10 epochs, 2 threads, beside a bare LightFM fit."""
    data = synthetic.interactions(rows)
    params = TrainParams(no_components=30, epochs=10, threads=2, use_item_features=False,
                         use_user_features=False, max_sampled=10)
    began = time.perf_counter()
    recommender = train(data, None, None, params, InteractionWeights(half_life_days=None))
    whole = time.perf_counter() - began
    pairs = recommender.info["pairs"]
    codes_u = pd.factorize(data["customer_id"])[0]
    codes_i = pd.factorize(data["sku"])[0]
    matrix = sp.coo_matrix((np.ones(len(data), dtype=np.float32), (codes_u, codes_i)))
    matrix.sum_duplicates()
    began = time.perf_counter()
    LightFM(no_components=30, loss="warp").fit(matrix, epochs=10, num_threads=2)
    bare = time.perf_counter() - began
    print(f"synthetic {rows:,} interactions ({pairs:,} weighted pairs, {len(recommender.customer_ids):,} "
          f"customers, {len(recommender.skus):,} items), 30 components, 10 epochs, 2 threads: "
          f"train() {whole:.1f} s, bare LightFM fit of the same pairs {bare:.1f} s")
    params = dataclasses.replace(params, max_sampled=TrainParams().max_sampled)
    began = time.perf_counter()
    train(data, None, None, params, InteractionWeights(half_life_days=None))
    print(f"  same with max_sampled={params.max_sampled} (the default): {time.perf_counter() - began:.1f} s")


def main() -> None:
    """Prints data sizes, the validation table and choice, the test figures, training times and serving cost."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--seeds", type=int, default=2, help="seeds per validation candidate")
    parser.add_argument("--synthetic-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f} (figures vary with other work on the host)")
    began = time.perf_counter()
    frame = load_frame(args.data)
    interactions = retail.interactions(frame)
    items = retail.items(frame)
    print(f"data: {len(interactions):,} order/refund lines of {interactions['customer_id'].nunique():,} customers "
          f"and {len(items):,} products (fees and postage left out), loaded in {time.perf_counter() - began:.1f} s")
    chosen = validate(interactions, items, frame, tuple(range(1, args.seeds + 1)))
    test(interactions, items, frame, chosen)
    serving(interactions, items, frame)
    synthetic_training(args.synthetic_rows)


if __name__ == "__main__":
    main()
