"""Replicas on one database: a version trained by one process serves in the other, erasures reach both, and a
starting replica does not fail another's training."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.common.db import make_engine
from services.recommend.catalogue import Item
from services.recommend.erasure import Eraser
from services.recommend.follow import Follower
from services.recommend.modelfiles import ModelFiles
from services.recommend.recipe import resolve
from services.recommend.serving import Serving, Wanted
from services.recommend.store import FAILED, TRAINING, RecommendStore
from services.recommend.training import Trainer, TrainRequest
from tests.support import postgres
from tests.unit.recommend.service_fakes import NOW, FrameSource, synthetic_interactions, synthetic_portraits

GOOD = {"epochs": 10, "components": 16}


@dataclass
class Replica:
    store: RecommendStore
    serving: Serving
    trainer: Trainer
    eraser: Eraser
    follower: Follower

    def train(self) -> int:
        version = self.trainer.start(TrainRequest(resolve(GOOD, 2), force=True))
        assert self.trainer.wait(120)
        return version


def replica(database_url: str, models: Path) -> Replica:
    store = RecommendStore(make_engine(database_url))
    store.migrate()
    files = ModelFiles(models)
    serving = Serving()
    guard = threading.Lock()
    trainer = Trainer(store, FrameSource(synthetic_interactions(), synthetic_portraits()), files, serving, guard,
                      lambda: NOW, currency="GBP")
    follower = Follower(store, trainer, serving, guard, interval_s=0.05)
    trainer.load_serving()
    return Replica(store, serving, trainer, Eraser(store, files, serving, guard, lambda: NOW), follower)


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> tuple[Replica, Replica]:
    # One database and one models folder (a shared volume), two processes' worth of objects.
    return replica(database_url, tmp_path / "models"), replica(database_url, tmp_path / "models")


def version_of(serving: Serving) -> int | None:
    return None if serving.loaded is None else serving.loaded.version


def test_a_version_trained_by_one_replica_serves_in_the_other(pair: tuple[Replica, Replica]) -> None:
    first, second = pair
    version = first.train()
    assert version_of(second.serving) is None
    second.follower.check()
    assert version_of(second.serving) == version
    assert second.serving.loaded is not None and first.serving.loaded is not None
    assert second.serving.loaded.precision == first.serving.loaded.precision
    assert (second.serving.recommend("c1", 5, Wanted()).ranked.skus
            == first.serving.recommend("c1", 5, Wanted()).ranked.skus)
    trained = REGISTRY.get_sample_value("marksman_recommend_serving_model_trained_timestamp_seconds")
    assert trained == NOW.timestamp()
    newer = second.train()
    first.follower.check()
    assert version_of(first.serving) == newer > version


def test_a_poll_without_changes_loads_nothing(pair: tuple[Replica, Replica]) -> None:
    first, second = pair
    first.train()
    second.follower.check()
    loaded = second.serving.loaded
    second.follower.check()
    assert second.serving.loaded is loaded


def test_a_customer_erased_through_one_replica_leaves_the_other(pair: tuple[Replica, Replica]) -> None:
    first, second = pair
    first.train()
    second.follower.check()
    assert "c5" in second.serving.known_customers()
    erased, _count = first.eraser.erase("c5")
    assert erased
    second.follower.check()
    assert "c5" not in second.serving.known_customers()
    assert second.serving.recommend("c5", 3, Wanted()).ranked.fallback == "popular_overall"


def test_items_changed_through_one_replica_change_in_the_other(pair: tuple[Replica, Replica]) -> None:
    first, second = pair
    first.train()
    second.follower.check()
    top = second.serving.recommend("c1", 3, Wanted()).ranked.skus
    hidden, sold_out = top[0], top[1]
    # What the servicer does with UpsertItems, on the first replica only.
    first.store.upsert_items([Item(hidden, hidden=True), Item(sold_out, in_stock=False)], NOW)
    first.serving.update_items({hidden: True, sold_out: False}, {hidden: True, sold_out: False})
    assert hidden in second.serving.recommend("c1", 3, Wanted()).ranked.skus
    second.follower.check()
    assert hidden not in second.serving.recommend("c1", 10, Wanted()).ranked.skus
    assert sold_out not in second.serving.recommend("c1", 10, Wanted(only_in_stock=True)).ranked.skus
    # A replica that loads the version afterwards (or restarts) starts from the flags as they are now.
    third = replica(first.store.engine.url.render_as_string(hide_password=False), first.trainer.files.root)
    assert hidden not in third.serving.recommend("c1", 10, Wanted()).ranked.skus


def test_unreadable_files_leave_serving_unchanged(pair: tuple[Replica, Replica], tmp_path: Path) -> None:
    first, second = pair
    version = first.train()
    second.follower.check()
    newer = first.train()
    shutil.rmtree(tmp_path / "models" / str(newer))  # e.g. the volume is not shared
    second.follower.check()
    assert version_of(second.serving) == version
    second.follower.check()  # not tried again on every poll
    assert version_of(second.serving) == version


def test_the_thread_follows_until_stopped(pair: tuple[Replica, Replica]) -> None:
    first, second = pair
    second.follower.start()
    try:
        version = first.train()
        deadline = threading.Event()
        for _ in range(200):
            if version_of(second.serving) == version:
                break
            deadline.wait(0.05)
        assert version_of(second.serving) == version
    finally:
        second.follower.stop()
    assert not second.follower.is_alive()


def test_a_starting_replica_leaves_a_live_replicas_training_alone(pg_admin_url: str) -> None:
    url = postgres.create_database(pg_admin_url)
    training, starting = RecommendStore(make_engine(url)), RecommendStore(make_engine(url))
    training.migrate()
    version = training.start_version({}, None, False, False, NOW)
    with training.training_lock():
        assert starting.fail_interrupted(NOW) == []
        assert starting.get_version(version).state == TRAINING
    # Its process is gone (the lock with it): the run was interrupted.
    assert starting.fail_interrupted(NOW) == [version]
    assert starting.get_version(version).state == FAILED
