"""Cold items without hybrid features: the ridge map from features to learned item vectors."""

from __future__ import annotations

import numpy as np

from services.recommend.cold import feature_map
from services.recommend.features import descriptive_matrix
from services.recommend.model import TrainParams, train
from tests.unit.recommend.model_data import planted


def test_feature_map_recovers_vectors_that_are_means_of_their_features() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 3)).astype(np.float32)
    names = [[f"f={a}", f"f={b}"] for a in range(4) for b in range(4) if a < b] * 5
    described, columns = descriptive_matrix(names)
    vectors = np.asarray(described @ truth[[int(c[2:]) for c in columns]], dtype=np.float32)
    mapped = feature_map(described, vectors, np.arange(len(names)), ridge=1e-6)
    np.testing.assert_allclose(described @ mapped, vectors, atol=1e-3)


def test_features_seen_on_no_trained_item_map_to_the_mean_item() -> None:
    described, _ = descriptive_matrix([["f=a"], ["f=a"], ["f=b"]])
    vectors = np.array([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], dtype=np.float32)
    mapped = feature_map(described, vectors, np.array([0, 1]))
    np.testing.assert_allclose(mapped[1], [2.0, 3.0], rtol=1e-6)


def test_a_model_without_item_features_still_places_a_new_item_among_its_category() -> None:
    interactions, items, users = planted(customers=120, per_cluster=10, before=5, after=0)
    recommender = train(interactions, items, users, TrainParams(
        no_components=16, epochs=15, threads=1, use_item_features=False))
    vector = recommender.represent_item({"category": "k3"})
    assert vector is not None
    unit = vector[:-2] / np.linalg.norm(vector[:-2])
    nearest = recommender.skus[np.argsort(-(recommender.item_unit @ unit))[:5]]
    assert sum(sku.startswith("k3-") for sku in nearest) >= 4
