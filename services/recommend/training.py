"""Training runs: read profile, evaluate the candidate and the serving recipe on one split, gate, publish.

A run is a numbered version. It reads every interaction and portrait from profile, adds the items seen
only in events to the catalogue and recomputes the price bands, then evaluates the candidate recipe on a
time split through the model core. The serving version's recipe is re-trained and evaluated on the same
split, so the gate compares like with like whatever data arrived since it was trained; the candidate
serves only when its precision@k is at least as good (or when forced). It is then fitted on all the
interactions (or, with train_until_cutoff, on those before the cut-off), its files are written under
models/<version>/, and the serving pointer moves in one transaction. A worse or failed run is recorded
with its reason and leaves serving untouched.

User features in evaluations are the customer's region only: profile computes the RFM segment and
purchasing power from every event, later ones included, so using them on a split would leak the
held-out purchases into training. The served model (fitted on all data) uses all three.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd

from services.common.clock import as_utc
from services.common.errors import DomainError, FailedPrecondition
from services.recommend import model
from services.recommend.catalogue import items_from_interactions
from services.recommend.features import price_bands
from services.recommend.forget import without_customers
from services.recommend.frames import items_frame, users_frame
from services.recommend.metrics import RankingMetrics
from services.recommend.model import OfflineReport
from services.recommend.modelfiles import ModelFiles
from services.recommend.recipe import Recipe
from services.recommend.recommender import Recommender
from services.recommend.serving import Serving
from services.recommend.source import Source
from services.recommend.store import FAILED, REJECTED, SERVING, SUPERSEDED, Outcome, RecommendStore
from services.recommend.telemetry import SERVING_PRECISION, SERVING_TRAINED, SERVING_VERSION, TRAINING_SECONDS
from services.recommend.weights import INTERACTION_COLUMNS

log = logging.getLogger(__name__)

# Without a cut-off, the last tenth of the orders (by time) is held out.
HOLDOUT_SHARE = 0.1
K = 10
EVALUATION_USER_COLUMNS = ["customer_id", "region"]
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class TrainRequest:
    recipe: Recipe
    force: bool = False
    cutoff: datetime | None = None
    train_until_cutoff: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    serve: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Data:
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    customers: int


def default_cutoff(interactions: pd.DataFrame, share: float = HOLDOUT_SHARE) -> datetime:
    """The time from which the last `share` of the orders is held out."""
    times = interactions.loc[interactions["kind"] == "order", "occurred_at"].sort_values()
    if len(times) < 2:
        raise FailedPrecondition(f"{len(times)} orders: at least two are needed to hold some out for evaluation")
    cutoff: pd.Timestamp = times.iloc[min(len(times) - 1, int(len(times) * (1 - share)))]
    return cutoff.to_pydatetime()


def judge(candidate: RankingMetrics, evaluated: int, serving: int | None, compared: RankingMetrics | None,
          forced: bool, k: int = K) -> Verdict:
    """The quality gate: serve the candidate when nothing serves, when forced, or when its precision@k on
    the held-out split is at least the serving recipe's on the same split."""
    mine = candidate.precision
    if forced:
        return Verdict(True, f"forced (precision@{k} {mine:.4f} on the held-out split)")
    if serving is None:
        return Verdict(True, f"first model: nothing was serving (precision@{k} {mine:.4f} on the held-out split)")
    if evaluated == 0 or compared is None or math.isnan(mine):
        return Verdict(False, "no customer of the held-out split could be evaluated, so the candidate cannot be "
                              f"compared with serving version {serving}; choose another cutoff or force it")
    theirs = compared.precision
    if math.isnan(theirs) or mine >= theirs:
        return Verdict(True, f"precision@{k} {mine:.4f} is at least serving version {serving}'s {theirs:.4f} "
                             "(its recipe re-trained on the same split)")
    return Verdict(False, f"precision@{k} {mine:.4f} is below serving version {serving}'s {theirs:.4f} "
                          "(its recipe re-trained on the same split); serving is unchanged")


def describe_failure(error: BaseException) -> str:
    """The reason recorded for a failed run: domain and input errors as they are worded, others by type."""
    text = str(error) if isinstance(error, DomainError | ValueError) else f"{type(error).__name__}: {error}"
    return text[:MAX_REASON]


def precision_of(metrics: Mapping[str, Any]) -> float:
    """The candidate's precision@k recorded with a version (0 when unknown)."""
    value = metrics.get("report", {}).get("model", {}).get("precision")
    return float(value) if isinstance(value, int | float) else 0.0


def _stage(version: int, stage: str, started: float) -> None:
    log.info("training %s", stage, extra={"version": version, "seconds": round(time.perf_counter() - started, 2)})


class Trainer:
    """Runs one training at a time on a worker thread; serving goes on meanwhile."""

    def __init__(self, store: RecommendStore, source: Source | None, files: ModelFiles, serving: Serving,
                 guard: threading.Lock, clock: Callable[[], datetime], *, currency: str, versions_kept: int = 5,
                 holdout_share: float = HOLDOUT_SHARE, k: int = K) -> None:
        self.store = store
        self.source = source
        self.files = files
        self.serving = serving
        # Held while training publishes and while erasure runs: neither sees half of the other.
        self.guard = guard
        self.clock = clock
        self.currency = currency
        self.versions_kept = versions_kept
        self.holdout_share = holdout_share
        self.k = k
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def load_serving(self) -> int | None:
        """Serves the stored serving version's files (at start); None when there is none or they are unreadable."""
        version = self.store.serving_version()
        if version is None:
            return None
        return version if self.follow(version) else None

    def follow(self, version: int) -> bool:
        """Serves a version promoted by another process (or before a restart) from its files, less the
        customers erased since they were written and with the items' stock and hidden flags as they are now;
        False when they cannot be read (serving is unchanged)."""
        try:
            recommender = self.files.load(version)
        except (OSError, ValueError):
            log.exception("the files of serving version %d cannot be read; serving what was served before",
                          version)
            return False
        record = self.store.get_version(version)
        with self.guard:
            loaded = self.serving.loaded
            if loaded is not None and loaded.version == version:
                return True
            erased = self.store.erased_among(recommender.customer_ids.tolist())
            if erased:
                recommender, _ = without_customers(recommender, erased)
            self._serve(version, recommender, precision_of(record.metrics), record.finished_at)
            self.serving.update_items(*self.store.item_flags())
        return True

    def start(self, request: TrainRequest) -> int:
        """Records the run and starts it on a worker thread; FailedPrecondition while one runs."""
        if self.source is None:
            raise FailedPrecondition("training reads profile's interactions, and no profile address is configured "
                                     "(MARKSMAN_RECOMMEND_PROFILE_ADDR)")
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                raise FailedPrecondition("a model is training now; wait for it to finish")
            version = self.store.start_version(request.recipe.to_dict(), request.cutoff, request.train_until_cutoff,
                                               request.force, self.clock())
            self._thread = threading.Thread(target=self.run, args=(version, request), daemon=True,
                                            name=f"recommend-train-{version}")
            self._thread.start()
        return version

    def wait(self, timeout: float | None = None) -> bool:
        """Waits for the running training, if any; False when it is still running after `timeout`."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def run(self, version: int, request: TrainRequest) -> str:
        """The whole run of a recorded version; never raises. Returns the state it ended in."""
        started = time.perf_counter()
        progress: dict[str, Any] = {}
        state = FAILED
        try:
            with self.store.training_lock():
                state = self._train(version, request, progress, started)
        except Exception as error:
            log.exception("training run failed", extra={"version": version})
            outcome = Outcome(FAILED, describe_failure(error), seconds=time.perf_counter() - started, **progress)
            try:
                self.store.finish_version(version, outcome, self.clock(), serve=False)
            except Exception:
                log.exception("cannot record the failure of version %d", version)
        finally:
            TRAINING_SECONDS.labels(state).observe(time.perf_counter() - started)
        return state

    def _train(self, version: int, request: TrainRequest, progress: dict[str, Any], started: float) -> str:
        assert self.source is not None
        data = self._gather()
        _stage(version, "read profile and the catalogue", started)
        progress.update(interactions=len(data.interactions), customers=data.customers, items=len(data.items))
        recipe = request.recipe
        cutoff = request.cutoff or default_cutoff(data.interactions, self.holdout_share)
        evaluation_users = data.users[EVALUATION_USER_COLUMNS]
        report = model.evaluate(data.interactions, data.items, evaluation_users, pd.Timestamp(cutoff), self.k,
                                recipe.params, recipe.weights)
        serving = self.store.serving_version()
        compared: RankingMetrics | None = None
        if serving is not None and not request.force and report.users_evaluated:
            theirs = Recipe.from_dict(self.store.get_version(serving).params)
            compared = report.model if theirs.same_model_as(recipe) else model.evaluate(
                data.interactions, data.items, evaluation_users, pd.Timestamp(cutoff), self.k, theirs.params,
                theirs.weights).model
        _stage(version, "evaluated", started)
        verdict = judge(report.model, report.users_evaluated, serving, compared, request.force, self.k)
        progress["metrics"] = {"report": report.to_dict(),
                               "compared": None if compared is None else {"version": serving, **compared.to_dict()}}
        if not verdict.serve:
            outcome = Outcome(REJECTED, verdict.reason, seconds=time.perf_counter() - started, **progress)
            self.store.finish_version(version, outcome, self.clock(), serve=False)
            return REJECTED
        if request.train_until_cutoff:
            before = data.interactions[data.interactions["occurred_at"] < pd.Timestamp(cutoff)]
            recommender = model.train(before, data.items, evaluation_users, recipe.params, recipe.weights)
        else:
            recommender = model.train(data.interactions, data.items, data.users, recipe.params, recipe.weights)
        _stage(version, "fitted", started)
        self._publish(version, recommender, verdict.reason, report, progress, started)
        _stage(version, "serving", started)
        return SERVING

    def _gather(self) -> Data:
        """Reads profile, brings the catalogue up to date (event items, price bands) and the customer features."""
        assert self.source is not None
        interactions = self.source.interactions()
        features = self.source.customer_features()
        now = self.clock()
        self.store.add_event_items(items_from_interactions(interactions, self.currency), now)
        items = self.store.items()
        bands = price_bands({i.sku: i.price_minor for i in items if i.price_minor > 0 and not i.hidden},
                            {i.sku: i.category for i in items})
        self.store.set_price_bands(bands)
        hidden = {i.sku for i in items if i.hidden}
        items = [replace(i, price_band=bands.get(i.sku, "")) for i in items if not i.hidden]
        if hidden:
            interactions = interactions[~interactions["sku"].isin(hidden)]
        with self.guard:
            # Customers erased after profile exported them are dropped here, before anything is kept.
            erased = self.store.erased_among(set(interactions["customer_id"].unique())
                                             | {f.customer_id for f in features})
            if erased:
                interactions = interactions[~interactions["customer_id"].isin(erased)]
                features = [f for f in features if f.customer_id not in erased]
            self.store.replace_customer_features(features, now)
            self.serving.set_features({f.customer_id: f for f in features})
        return Data(interactions=interactions[list(INTERACTION_COLUMNS)].reset_index(drop=True),
                    items=items_frame(items), users=users_frame(features),
                    customers=int(interactions["customer_id"].nunique()))

    def _publish(self, version: int, recommender: Recommender, reason: str, report: OfflineReport,
                 progress: dict[str, Any], started: float) -> None:
        """Writes the files and moves the serving pointer; customers erased meanwhile are left out first."""
        with self.guard:
            erased = self.store.erased_among(recommender.customer_ids.tolist())
            if erased:
                recommender, _ = without_customers(recommender, erased)
            self.files.save(version, recommender)
            served = self.files.load(version)  # what serves is exactly what a restart would load
            outcome = Outcome(SERVING, reason, seconds=time.perf_counter() - started, **progress)
            finished = self.clock()
            self.store.finish_version(version, outcome, finished, serve=True)
            self._serve(version, served, report.model.precision, finished)
        self._prune()

    def _serve(self, version: int, recommender: Recommender, precision: float, trained_at: datetime | None) -> None:
        precision = 0.0 if math.isnan(precision) else precision
        self.serving.switch(version, recommender, precision, self.store.customer_features())
        SERVING_VERSION.set(version)
        SERVING_PRECISION.set(precision)
        if trained_at is not None:
            SERVING_TRAINED.set(as_utc(trained_at).timestamp())

    def _prune(self) -> None:
        """Keeps the files of the serving version and of the newest versions that served before it."""
        served = self.store.versions_in([SERVING, SUPERSEDED])
        try:
            self.files.prune(served[-self.versions_kept:])
        except OSError:
            log.exception("cannot delete old model files")
