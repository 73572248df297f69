"""Trains a goal's model on the lines profile exports, one training at a time on a worker thread, and stores it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol

import orjson
import pandas as pd
from threadpoolctl import threadpool_limits

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.segment import metrics, persist, predict
from services.segment.audiences import GOALS, check_goal
from services.segment.store import ModelInfo, SegmentStore

log = logging.getLogger(__name__)

DEFAULT_HORIZON_DAYS = predict.HORIZON.days
MIN_HORIZON_DAYS = 7
MAX_HORIZON_DAYS = 365


class LineSource(Protocol):
    def lines(self) -> pd.DataFrame:
        """Every order and refund line known now (predict.LINE_COLUMNS)."""
        ...


def check_horizon(goal: str, days: int) -> int:
    """The label window in days (0: the default); a lookalike has none."""
    if goal == predict.ACQUISITION:
        if days:
            raise InvalidArgument("horizon_days does not apply to acquisition: a lookalike has no time window")
        return 0
    if days == 0:
        return DEFAULT_HORIZON_DAYS
    if not MIN_HORIZON_DAYS <= days <= MAX_HORIZON_DAYS:
        raise InvalidArgument(f"horizon_days must be between {MIN_HORIZON_DAYS} and {MAX_HORIZON_DAYS}; got {days}")
    return days


def parameters(model: predict.TrainedModel, horizon_days: int) -> str:
    """The estimator, its parameters and the label window, as JSON."""
    return orjson.dumps({
        "estimator": type(model.estimator).__name__,
        "params": model.estimator.get_params(),
        "horizon_days": horizon_days,
    }, default=str, option=orjson.OPT_SORT_KEYS).decode()


def _publish(model: ModelInfo) -> None:
    metrics.MODEL_AUC.labels(model.goal).set(model.quality.auc)
    metrics.MODEL_BETTER_THAN_CHANCE.labels(model.goal).set(1 if model.quality.better_than_chance else 0)


class Trainer:
    """TrainModel behind the RPC: checks the request, trains on a single worker thread (trainings queue
    instead of competing for the two cores), and stores the model with its held-out quality."""

    def __init__(self, store: SegmentStore, lines: LineSource, clock: Callable[[], datetime], *,
                 models_kept: int = 10, threads: int = 1, seed: int = 0) -> None:
        self.store = store
        self.lines = lines
        self.clock = clock
        self.models_kept = models_kept
        self.threads = threads
        self.seed = seed
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segment-train")

    def train(self, goal: str, seed_segment: str = "", horizon_days: int = 0) -> ModelInfo:
        """Trains and stores the goal's next model version; any failure stores nothing."""
        check_goal(goal)
        if seed_segment and goal != predict.ACQUISITION:
            raise InvalidArgument(f"seed_segment applies to acquisition only, not to {goal}")
        horizon = check_horizon(goal, horizon_days)
        return self._worker.submit(self._train_limited, goal, seed_segment, horizon).result()

    def _train_limited(self, goal: str, seed_segment: str, horizon_days: int) -> ModelInfo:
        # The fit's OpenMP threads, in this worker thread only: with one, a training leaves the other core
        # to the calls being served, and it does not slow down tenfold when the cores are busy (OpenMP's
        # waiting threads spin; fits of 0.2 s took 2-9 s with two threads on a loaded two-core machine).
        with threadpool_limits(limits=self.threads):
            return self._train(goal, seed_segment, horizon_days)

    def _train(self, goal: str, seed_segment: str, horizon_days: int) -> ModelInfo:
        started = time.perf_counter()
        now = self.clock()
        lines = self.lines.lines()
        lines = lines[lines["occurred_at"] < pd.Timestamp(now)]
        if lines.empty:
            raise FailedPrecondition("profile has exported no order lines yet: there is nothing to learn from")
        seed_version = 0
        try:
            if goal == predict.ACQUISITION:
                seed_version, seed_ids = self._seed(seed_segment) if seed_segment else (0, None)
                model = predict.train_lookalike(predict.features(lines, pd.Timestamp(now)), seed_ids, seed=self.seed)
            else:
                model = predict.train_time_split(goal, lines, timedelta(days=horizon_days), seed=self.seed)
        except ValueError as error:
            raise FailedPrecondition(f"the {goal} model cannot be trained on the data there is: {error}") from None
        data, digest = persist.dumps(model.estimator)
        info = ModelInfo(
            goal=goal, version=0, trained_at=now, horizon_days=horizon_days, seed_segment=seed_segment,
            seed_version=seed_version, parameters=parameters(model, horizon_days), lines=len(lines),
            customers=int(lines["customer_id"].nunique()), train_size=model.train_size,
            train_base_rate=model.train_base_rate, fit_seconds=model.train_seconds,
            seconds=time.perf_counter() - started, quality=model.quality, evaluation=model.evaluation,
            features=tuple(model.columns),
        )
        stored = self.store.write_model(info, data, digest)
        self.store.prune_models(goal, self.models_kept)
        q = stored.quality
        metrics.TRAINING_SECONDS.labels(goal).observe(time.perf_counter() - started)
        _publish(stored)
        log.info("model trained", extra={"goal": goal, "version": stored.version, "auc": round(q.auc, 4),
                                         "better_than_chance": q.better_than_chance, "seconds": round(stored.seconds, 2)})
        return stored

    def _seed(self, name: str) -> tuple[int, list[str]]:
        """The seed segment's current version and its members' ids."""
        segment = self.store.get_segment(name)
        if segment is None:
            raise NotFound(f"there is no segment named '{name}' to use as the seed")
        if segment.current is None:
            raise FailedPrecondition(f"the seed segment '{name}' has no version yet; refresh it first")
        return segment.current.number, self.store.member_ids(segment.current.id)

    def publish(self) -> None:
        """Sets the quality gauges from the stored current models (at start)."""
        for model in self.store.current_models().values():
            _publish(model)

    def list_models(self) -> tuple[list[ModelInfo], list[str]]:
        """The current model of each trained goal (in GOALS order) and the goals without one."""
        current = self.store.current_models()
        return [current[g] for g in GOALS if g in current], [g for g in GOALS if g not in current]

    def get(self, goal: str) -> list[ModelInfo]:
        """Every retained model of the goal, newest (the current one) first."""
        versions = self.store.model_versions(check_goal(goal))
        if not versions:
            raise NotFound(f"no {goal} model has been trained yet")
        return versions

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
