"""The recommend store on SQLite and PostgreSQL: catalogue upserts, event items, versions and the serving switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.db import make_engine
from services.common.errors import FailedPrecondition, NotFound
from services.recommend import store as store_module
from services.recommend.catalogue import SOURCE_CATALOGUE, SOURCE_EVENTS, Item
from services.recommend.store import (
    FAILED,
    REJECTED,
    SERVING,
    SUPERSEDED,
    TRAINING,
    CustomerFeatures,
    Outcome,
    RecommendStore,
)

NOW = datetime(2011, 12, 10, tzinfo=UTC)
PARAMS = {"no_components": 8, "loss": "warp"}


@pytest.fixture
def store(database_url: str) -> RecommendStore:
    store = RecommendStore(make_engine(database_url))
    store.migrate()
    store.migrate()  # applying migrations twice is a no-op
    return store


def test_upsert_creates_replaces_and_keeps_the_last_of_a_repeated_sku(store: RecommendStore) -> None:
    created = store.upsert_items([Item("A1", "Home", "Acme", 250, "GBP", True, ("gift", "red")),
                                  Item("B2", "Toys", price_minor=0)], NOW)
    assert created == {"A1", "B2"}
    again = store.upsert_items([Item("A1", "Kitchen", "", 300, "GBP", False), Item("C3"), Item("C3", "Garden")],
                               NOW + timedelta(days=1))
    assert again == {"C3"}
    a1 = store.get_item("A1")
    assert a1 == Item("A1", "Kitchen", "", 300, "GBP", False, (), "", SOURCE_CATALOGUE, NOW + timedelta(days=1))
    assert store.get_item("C3") is not None and store.get_item("C3").category == "Garden"  # type: ignore[union-attr]
    assert store.get_item("nope") is None
    assert [i.sku for i in store.items()] == ["A1", "B2", "C3"] and store.count_items() == 3
    store.upsert_items([Item("POST", "Fees", hidden=True)], NOW)
    assert store.get_item("POST").hidden and not store.get_item("A1").hidden  # type: ignore[union-attr]


def test_many_items_in_one_batch(store: RecommendStore) -> None:
    items = [Item(f"S{n}", "Home", price_minor=n, currency="GBP", tags=("t",)) for n in range(12_000)]
    assert len(store.upsert_items(items, NOW)) == 12_000
    assert store.upsert_items(items[:7000], NOW) == set()
    assert store.count_items() == 12_000 and store.get_item("S11999").price_minor == 11_999  # type: ignore[union-attr]


def test_event_items_never_replace_catalogue_items(store: RecommendStore) -> None:
    store.upsert_items([Item("A1", "Home", "Acme", 250, "GBP")], NOW)
    written = store.add_event_items([Item("A1", "Other", price_minor=1, currency="GBP", source=SOURCE_EVENTS),
                                     Item("E1", "Toys", price_minor=99, currency="GBP", source=SOURCE_EVENTS)], NOW)
    assert written == 1
    assert store.get_item("A1").category == "Home"  # type: ignore[union-attr]
    assert store.get_item("E1").source == SOURCE_EVENTS  # type: ignore[union-attr]
    # A later training refreshes what events say of E1; a catalogue upsert then takes it over.
    store.add_event_items([Item("E1", "Games", price_minor=120, currency="GBP", source=SOURCE_EVENTS)], NOW)
    assert store.get_item("E1").category == "Games"  # type: ignore[union-attr]
    assert store.upsert_items([Item("E1", "Puzzles")], NOW) == set()
    e1 = store.get_item("E1")
    assert e1 is not None and (e1.category, e1.source) == ("Puzzles", SOURCE_CATALOGUE)


def test_price_bands_are_replaced_and_survive_an_upsert(store: RecommendStore) -> None:
    store.upsert_items([Item("A1"), Item("B2"), Item("C3")], NOW)
    store.set_price_bands({"A1": "p1", "B2": "p5"})
    store.set_price_bands({"A1": "p2", "C3": "p3"})
    assert {i.sku: i.price_band for i in store.items()} == {"A1": "p2", "B2": "", "C3": "p3"}
    store.upsert_items([Item("A1", "Home")], NOW)
    assert store.get_item("A1").price_band == "p2"  # type: ignore[union-attr]


def test_a_failing_upsert_leaves_nothing_half_written(store: RecommendStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.upsert_items([Item("A1", "Home")], NOW)

    def broken(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store_module, "bulk_insert", broken)
    with pytest.raises(RuntimeError):
        store.upsert_items([Item("A1", "Kitchen"), Item("B2")], NOW)
    assert [(i.sku, i.category) for i in store.items()] == [("A1", "Home")]


def test_versions_switch_atomically_and_only_one_trains(store: RecommendStore) -> None:
    assert store.serving_version() is None
    v1 = store.start_version(PARAMS, None, False, False, NOW)
    with pytest.raises(FailedPrecondition, match="training now"):
        store.start_version(PARAMS, None, False, False, NOW)
    store.finish_version(v1, Outcome(SERVING, "first model", 100, 10, 20, 1.5, {"k": 10}), NOW, serve=True)
    assert store.serving_version() == v1
    got = store.get_version(v1)
    assert (got.state, got.interactions, got.customers, got.items, got.metrics) == (SERVING, 100, 10, 20, {"k": 10})
    assert got.params == PARAMS and got.finished_at is not None and got.seconds == 1.5

    v2 = store.start_version(PARAMS, NOW - timedelta(days=30), True, False, NOW)
    store.finish_version(v2, Outcome(REJECTED, "worse"), NOW, serve=False)
    v3 = store.start_version(PARAMS, None, False, False, NOW)
    store.finish_version(v3, Outcome(FAILED, "ValueError: no interactions"), NOW, serve=False)
    assert store.serving_version() == v1 and store.get_version(v1).state == SERVING
    assert store.get_version(v2).cutoff == NOW - timedelta(days=30) and store.get_version(v2).train_until_cutoff

    v4 = store.start_version(PARAMS, None, False, True, NOW)
    store.finish_version(v4, Outcome(SERVING, "forced"), NOW, serve=True)
    assert store.serving_version() == v4
    assert [(v.version, v.state) for v in store.list_versions()] == [
        (v4, SERVING), (v3, FAILED), (v2, REJECTED), (v1, SUPERSEDED)]
    assert store.versions_in([SERVING, SUPERSEDED]) == [v1, v4]
    with pytest.raises(FailedPrecondition):
        store.finish_version(v4, Outcome(FAILED, "again"), NOW, serve=False)
    with pytest.raises(NotFound):
        store.get_version(999)


def test_runs_left_training_by_a_stop_are_marked_failed(store: RecommendStore) -> None:
    version = store.start_version(PARAMS, None, False, False, NOW)
    assert store.get_version(version).state == TRAINING
    assert store.fail_interrupted(NOW) == [version]
    assert store.get_version(version).state == FAILED and "interrupted" in store.get_version(version).reason
    assert store.fail_interrupted(NOW) == []
    store.start_version(PARAMS, None, False, False, NOW)  # no longer blocked


def test_features_are_replaced_and_erasure_leaves_a_tombstone(store: RecommendStore) -> None:
    store.replace_customer_features([CustomerFeatures("c1", "champions", "United Kingdom", "p4"),
                                     CustomerFeatures("c2", "", "France", "")], NOW)
    store.replace_customer_features([CustomerFeatures("c1", "loyal", "United Kingdom", "p3"),
                                     CustomerFeatures("c3")], NOW)
    assert store.customer_features() == {"c1": CustomerFeatures("c1", "loyal", "United Kingdom", "p3"),
                                         "c3": CustomerFeatures("c3")}
    assert store.erased_among(["c1", "c3"]) == set()
    assert store.erase_customer("c1", NOW) == 1
    assert store.erase_customer("c1", NOW) == 0  # idempotent
    assert store.erase_customer("never-seen", NOW) == 0
    assert set(store.customer_features()) == {"c3"}
    assert store.erased_among(["c1", "c3", "never-seen", "other"]) == {"c1", "never-seen"}
