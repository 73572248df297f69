"""Training runs and the quality gate: first, better, worse, failing and forced runs; one at a time; erasure races."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from services.common.db import make_engine
from services.common.errors import FailedPrecondition, Unavailable
from services.recommend import model
from services.recommend.catalogue import SOURCE_CATALOGUE, SOURCE_EVENTS, Item
from services.recommend.erasure import Eraser
from services.recommend.metrics import RankingMetrics
from services.recommend.modelfiles import ModelFiles
from services.recommend.recipe import resolve
from services.recommend.serving import Serving, Wanted
from services.recommend.store import FAILED, REJECTED, SERVING, SUPERSEDED, RecommendStore
from services.recommend.training import Trainer, TrainRequest, default_cutoff, judge
from tests.unit.recommend.service_fakes import NOW, FrameSource, synthetic_interactions, synthetic_portraits

GOOD = {"epochs": 10, "components": 16}
BAD = {"epochs": 1, "components": 1, "learning_rate": 1e-6, "use_item_features": False}


def metrics(precision: float) -> RankingMetrics:
    return RankingMetrics(precision=precision, recall=0.1, auc=0.8, coverage=0.2)


@dataclass
class Rig:
    store: RecommendStore
    source: FrameSource
    files: ModelFiles
    serving: Serving
    trainer: Trainer
    eraser: Eraser

    def train(self, overrides: dict[str, Any], **options: Any) -> int:
        version = self.trainer.start(TrainRequest(resolve(overrides, 2), **options))
        assert self.trainer.wait(120)
        return version


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    store = RecommendStore(make_engine(f"sqlite:///{tmp_path / 'recommend.db'}"))
    store.migrate()
    source = FrameSource(synthetic_interactions(), synthetic_portraits())
    files = ModelFiles(tmp_path / "models")
    serving = Serving()
    guard = threading.Lock()
    trainer = Trainer(store, source, files, serving, guard, lambda: NOW, currency="GBP", versions_kept=2)
    return Rig(store, source, files, serving, trainer, Eraser(store, files, serving, guard, lambda: NOW))


def test_the_gate() -> None:
    assert judge(metrics(0.01), 10, None, None, False).serve  # nothing serving
    assert judge(metrics(0.01), 10, 3, metrics(0.2), True).serve  # forced
    assert judge(metrics(0.05), 10, 3, metrics(0.05), False).serve  # as good
    worse = judge(metrics(0.04), 10, 3, metrics(0.05), False)
    assert not worse.serve and "0.0400 is below serving version 3's 0.0500" in worse.reason
    nobody = judge(metrics(float("nan")), 0, 3, None, False)
    assert not nobody.serve and "could be evaluated" in nobody.reason


def test_default_cutoff_holds_out_the_last_tenth_of_orders() -> None:
    times = pd.to_datetime([f"2011-01-{d:02d}" for d in range(1, 21)], utc=True)
    frame = pd.DataFrame({"kind": ["order"] * 20, "occurred_at": times})
    assert default_cutoff(frame) == times[18].to_pydatetime()
    with pytest.raises(FailedPrecondition, match="at least two"):
        default_cutoff(frame.iloc[:1])


def test_first_run_serves_and_fills_the_catalogue(rig: Rig) -> None:
    rig.store.upsert_items([Item("G0-00", "Curated", "Acme", 999, "GBP", False)], NOW)
    version = rig.train(GOOD)
    got = rig.store.get_version(version)
    assert got.state == SERVING and got.reason.startswith("first model"), got.reason
    report = got.metrics["report"]
    assert report["model"]["precision"] > report["popularity"]["precision"]
    assert (got.interactions, got.customers, got.items) == (3600, 120, 90)
    assert rig.store.serving_version() == version and rig.files.versions() == [version]
    loaded = rig.serving.loaded
    assert loaded is not None and loaded.version == version and loaded.precision == report["model"]["precision"]
    # Items seen only in events were created from them, with bands; the platform's item kept its data.
    curated = rig.store.get_item("G0-00")
    assert curated is not None and (curated.category, curated.source) == ("Curated", SOURCE_CATALOGUE)
    seen = rig.store.get_item("G3-04")
    assert seen is not None and seen.source == SOURCE_EVENTS and seen.category == "cat3" and seen.price_band
    assert set(rig.store.customer_features()) == {f"c{c}" for c in range(120)}
    answer = rig.serving.recommend("c3", 5, Wanted(exclude_bought=True))
    assert answer.version == version and answer.ranked.fallback == "" and len(answer.ranked.skus) == 5


def test_hidden_items_are_neither_trained_on_nor_recommended(rig: Rig) -> None:
    rig.store.upsert_items([Item("G2-01", "Postage", hidden=True)], NOW)
    rig.train(GOOD)
    recommender = rig.serving.loaded.recommender  # type: ignore[union-attr]
    assert "G2-01" not in recommender.item_index and "G2-02" in recommender.item_index
    assert all("G2-01" not in rig.serving.recommend(f"c{c}", 20, Wanted()).ranked.skus for c in (2, 8, 14))


def test_a_worse_run_is_rejected_and_serving_is_untouched(rig: Rig) -> None:
    first = rig.train(GOOD)
    before = rig.serving.loaded
    worse = rig.train(BAD)
    got = rig.store.get_version(worse)
    assert got.state == REJECTED and "below serving version" in got.reason, got.reason
    assert got.metrics["compared"]["version"] == first
    assert got.metrics["compared"]["precision"] > got.metrics["report"]["model"]["precision"]
    assert rig.store.serving_version() == first and rig.serving.loaded is before
    assert rig.files.versions() == [first]  # a rejected run writes no files


def test_the_same_recipe_again_passes_the_gate(rig: Rig) -> None:
    first = rig.train(GOOD)
    second = rig.train(GOOD)
    assert rig.store.get_version(second).state == SERVING
    assert rig.store.get_version(first).state == SUPERSEDED
    assert rig.serving.loaded is not None and rig.serving.loaded.version == second


def test_a_forced_worse_run_serves(rig: Rig) -> None:
    rig.train(GOOD)
    forced = rig.train(BAD, force=True)
    got = rig.store.get_version(forced)
    assert got.state == SERVING and got.forced and got.reason.startswith("forced")


@pytest.mark.parametrize("where", ["source", "final fit"])
def test_a_failing_run_is_recorded_and_serving_is_untouched(rig: Rig, where: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = rig.train(GOOD)
    before = rig.serving.loaded
    if where == "source":
        rig.source.fail = Unavailable("profile's interaction export failed (UNAVAILABLE: connection refused)")
    else:
        def broken(*_args: Any, **_kwargs: Any) -> Any:
            raise MemoryError("out of memory")

        monkeypatch.setattr(model, "train", broken)
    failed = rig.train(GOOD)
    got = rig.store.get_version(failed)
    assert got.state == FAILED
    assert ("UNAVAILABLE" in got.reason) if where == "source" else got.reason == "MemoryError: out of memory"
    assert rig.store.serving_version() == first and rig.serving.loaded is before
    assert rig.files.versions() == [first]


def test_one_training_at_a_time(rig: Rig) -> None:
    rig.source.gate = threading.Event()
    version = rig.trainer.start(TrainRequest(resolve(GOOD, 2)))
    with pytest.raises(FailedPrecondition, match="training now"):
        rig.trainer.start(TrainRequest(resolve(GOOD, 2)))
    rig.source.gate.set()
    assert rig.trainer.wait(120)
    assert rig.store.get_version(version).state == SERVING


def test_a_customer_erased_while_training_is_left_out(rig: Rig) -> None:
    rig.train(GOOD)
    assert "c5" in rig.serving.loaded.recommender.user_index  # type: ignore[union-attr]
    rig.source.gate = threading.Event()
    version = rig.trainer.start(TrainRequest(resolve(GOOD, 2)))
    erased, count = rig.eraser.erase("c5")  # profile exported c5 already; the run must drop them
    assert erased and count >= 2
    rig.source.gate.set()
    assert rig.trainer.wait(120)
    loaded = rig.serving.loaded
    assert loaded is not None and loaded.version == version
    assert "c5" not in loaded.recommender.user_index and "c5" not in rig.store.customer_features()
    assert not any(rig.files.holds(v, "c5") for v in rig.files.versions())
    assert rig.serving.recommend("c5", 3, Wanted()).ranked.fallback == "popular_overall"


def test_train_until_cutoff_serves_a_model_that_never_saw_later_data(rig: Rig) -> None:
    cutoff = pd.Timestamp("2011-11-01", tz="UTC").to_pydatetime()
    version = rig.train(GOOD, cutoff=cutoff, train_until_cutoff=True)
    got = rig.store.get_version(version)
    assert got.train_until_cutoff and got.metrics["report"]["cutoff"].startswith("2011-11-01")
    recommender = rig.serving.loaded.recommender  # type: ignore[union-attr]
    assert recommender.info["interactions"] == got.metrics["report"]["train_interactions"] < got.interactions
