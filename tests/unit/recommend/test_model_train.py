"""Training: id maps, folded biases, popularity, bought lists, new items by features, safe save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from services.recommend.model import TrainParams, train
from services.recommend.recommender import Recommender
from tests.unit.recommend.model_data import frame, planted

FAST = TrainParams(no_components=8, epochs=5, threads=1)


@pytest.fixture(scope="module")
def trained() -> tuple[Recommender, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    interactions, items, users = planted(customers=60, per_cluster=8, before=4, after=0)
    return train(interactions, items, users, FAST), interactions, items, users


def test_vectors_fold_the_biases_into_one_product(trained: tuple[Recommender, ...]) -> None:
    recommender = trained[0]
    assert recommender.user_vectors.dtype == np.float32 and recommender.item_vectors.dtype == np.float32
    assert recommender.user_vectors.shape[1] == recommender.item_vectors.shape[1] == FAST.no_components + 2
    np.testing.assert_array_equal(recommender.user_vectors[:, -1], 1.0)
    np.testing.assert_array_equal(recommender.item_vectors[:, -2], 1.0)
    assert recommender.components == FAST.no_components


def test_every_catalogue_item_and_every_customer_has_a_row(trained: tuple[Recommender, ...]) -> None:
    recommender, interactions, items, _ = trained
    assert set(recommender.skus.tolist()) == set(items["sku"])
    assert set(recommender.customer_ids.tolist()) == set(interactions["customer_id"])
    assert recommender.info["users"] == 60 and recommender.info["params"] == FAST.to_dict()


def test_bought_lists_popularity_and_segment_popularity(trained: tuple[Recommender, ...]) -> None:
    recommender, interactions, _, users = trained
    ordered = interactions.groupby("customer_id")["sku"].apply(set)
    for customer in ("c0", "c7", "c59"):
        row = recommender.user_index[customer]
        assert set(recommender.skus[recommender.bought(row)].tolist()) == ordered[customer]
    buyers = interactions.groupby("sku")["customer_id"].nunique()
    # Distinct buyers, with a tie-breaker below one buyer.
    np.testing.assert_array_equal(np.floor(recommender.popularity), buyers.reindex(recommender.skus).fillna(0))
    in_r0 = interactions[interactions["customer_id"].isin(users.loc[users["region"] == "r0", "customer_id"])]
    r0 = recommender.segment_popularity[recommender.segment_index["region=r0"]]
    expected = in_r0.groupby("sku")["customer_id"].nunique().reindex(recommender.skus).fillna(0)
    np.testing.assert_array_equal(np.floor(r0), expected)


def test_ties_within_a_segment_follow_overall_popularity() -> None:
    interactions = frame([
        ("a", "x", "order", 1, "2024-01-01"),
        ("a", "y", "order", 1, "2024-01-01"),
        ("b", "y", "order", 1, "2024-01-01"),
        ("b", "z", "order", 1, "2024-01-01"),
        ("c", "y", "order", 1, "2024-01-01"),
    ])
    users = pd.DataFrame({"customer_id": ["a", "b", "c"], "region": ["north", "south", "south"]})
    recommender = train(interactions, None, users, FAST)
    north = recommender.segment_popularity[recommender.segment_index["region=north"]]
    # x and y have one northern buyer each, z none; y has three buyers overall, x one.
    order = recommender.skus[np.argsort(-north)].tolist()
    assert order == ["y", "x", "z"]


def test_skus_seen_only_in_events_get_featureless_rows() -> None:
    interactions = frame([("a", "x", "order", 1, "2024-01-01"), ("b", "y", "view", 1, "2024-01-02")])
    items = pd.DataFrame({"sku": ["x", "z"], "category": ["Home", "Toys"], "price_band": ["p2", "p4"]})
    recommender = train(interactions, items, None, FAST)
    assert recommender.skus.tolist() == ["x", "z", "y"]
    assert recommender.item_categories.tolist() == ["Home", "Toys", ""]
    assert recommender.item_bands.tolist() == [2, 4, 0]
    assert recommender.in_stock.tolist() == [True, True, True]
    assert recommender.item_brands.tolist() == ["", "", ""]


def test_item_brands_come_from_the_catalogue_and_an_artefact_saved_without_them_loads(tmp_path: Path) -> None:
    interactions = frame([("a", "x", "order", 1, "2024-01-01"), ("b", "y", "view", 1, "2024-01-02")])
    items = pd.DataFrame({"sku": ["x", "y"], "category": ["Home", "Toys"], "brand": ["Own", "Acme"]})
    recommender = train(interactions, items, None, FAST)
    assert dict(zip(recommender.skus.tolist(), recommender.item_brands.tolist(), strict=True)) == {
        "x": "Own", "y": "Acme"}
    recommender.save(tmp_path / "model")
    assert Recommender.load(tmp_path / "model").item_brands.tolist() == recommender.item_brands.tolist()
    # As saved before brands were kept: every brand unknown, so a brands_in filter leaves nothing.
    with np.load(tmp_path / "model" / "arrays.npz") as data:
        older = {name: data[name] for name in data.files if name != "item_brands"}
    with (tmp_path / "model" / "arrays.npz").open("wb") as handle:
        np.savez(handle, **older)
    assert Recommender.load(tmp_path / "model").item_brands.tolist() == ["", ""]


def test_represent_item_places_a_new_item_by_its_known_features(trained: tuple[Recommender, ...]) -> None:
    recommender = trained[0]
    vector = recommender.represent_item({"category": "k2", "price_band": "p1", "brand": "unknown"})
    assert vector is not None and vector.shape == (FAST.no_components + 2,)
    rows = [recommender.feature_index["category=k2"], recommender.feature_index["price_band=p1"]]
    np.testing.assert_allclose(vector, recommender.feature_vectors[rows].mean(axis=0), rtol=1e-6)
    assert recommender.represent_item({"category": "never-seen"}) is None


def test_with_stock_changes_only_the_flags(trained: tuple[Recommender, ...]) -> None:
    recommender = trained[0]
    changed = recommender.with_stock({"hit0": False, "not-a-sku": False})
    assert not changed.in_stock[recommender.item_index["hit0"]]
    assert recommender.in_stock.all()
    assert changed.user_vectors is recommender.user_vectors


def test_save_and_load_give_identical_scores(trained: tuple[Recommender, ...], tmp_path: Path) -> None:
    recommender = trained[0]
    recommender.save(tmp_path / "model")
    loaded = Recommender.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.user_vectors @ loaded.item_vectors.T,
                                  recommender.user_vectors @ recommender.item_vectors.T)
    for name in ("customer_ids", "skus", "popularity", "segment_popularity", "bought_indptr", "bought_items",
                 "item_categories", "item_bands", "in_stock", "item_brands", "feature_names", "feature_vectors"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(recommender, name))
    assert loaded.info == recommender.info
    assert loaded.segment_index == recommender.segment_index


def test_load_refuses_pickled_arrays(trained: tuple[Recommender, ...], tmp_path: Path) -> None:
    recommender = trained[0]
    recommender.save(tmp_path)
    with np.load(tmp_path / "arrays.npz") as data:
        arrays = {name: data[name] for name in data.files}
    arrays["skus"] = np.array([object()] * len(recommender.skus), dtype=object)
    np.savez(tmp_path / "arrays.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Recommender.load(tmp_path)


def test_same_seed_same_model_on_one_thread() -> None:
    interactions, items, users = planted(customers=30, per_cluster=5, before=3, after=0)
    first = train(interactions, items, users, FAST)
    second = train(interactions, items, users, FAST)
    np.testing.assert_array_equal(first.user_vectors, second.user_vectors)


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="no interactions"):
        train(frame([]).astype({"quantity": "int64"}).assign(
            occurred_at=pd.to_datetime(pd.Series([], dtype=str), utc=True)), None, None, FAST)
    refunded = frame([("a", "x", "order", 1, "2024-01-01"), ("a", "x", "refund", 1, "2024-01-02")])
    with pytest.raises(ValueError, match="weighs zero"):
        train(refunded, None, None, FAST)
    with pytest.raises(ValueError, match="sku column"):
        train(frame([("a", "x", "order", 1, "2024-01-01")]), pd.DataFrame({"id": ["x"]}), None, FAST)
    with pytest.raises(ValueError, match="customer_id column"):
        train(frame([("a", "x", "order", 1, "2024-01-01")]), None, pd.DataFrame({"id": ["a"]}), FAST)


def test_catalogue_items_without_interactions_are_placed_by_features_or_ranked_last() -> None:
    interactions, items, users = planted(customers=60, per_cluster=8, before=4, after=0)
    extra = pd.DataFrame({"sku": ["fresh", "blank"], "category": ["k1", ""], "price_band": ["p2", ""]})
    recommender = train(interactions, pd.concat([items, extra], ignore_index=True), users, FAST)
    fresh = recommender.item_vectors[recommender.item_index["fresh"]]
    np.testing.assert_allclose(fresh, recommender.represent_item({"category": "k1", "price_band": "p2"}), rtol=1e-5)
    scores = recommender.user_vectors @ recommender.item_vectors.T
    blank = recommender.item_index["blank"]
    assert (scores[:, blank] < np.delete(scores, blank, axis=1).min(axis=1)).all()
