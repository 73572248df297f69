"""Price bands within a category, feature names, and the row-normalised feature matrices."""

from __future__ import annotations

import numpy as np

from services.recommend.features import (
    band_name,
    band_number,
    feature_matrix,
    item_feature_names,
    price_bands,
    user_feature_names,
)


def test_price_bands_are_quintiles_within_each_category() -> None:
    prices = {f"a{i}": 100 * (i + 1) for i in range(10)} | {"b0": 5, "lonely": 999}
    categories = {sku: "A" for sku in prices if sku.startswith("a")} | {"b0": "B", "lonely": "C"}
    bands = price_bands(prices, categories)
    assert [bands[f"a{i}"] for i in range(10)] == ["p1", "p1", "p2", "p2", "p3", "p3", "p4", "p4", "p5", "p5"]
    # A category's only item sits in the middle, whatever its absolute price.
    assert bands["b0"] == "p3" and bands["lonely"] == "p3"


def test_price_bands_split_ties_evenly_and_work_without_categories() -> None:
    assert set(price_bands({"x": 10, "y": 10, "z": 10}).values()) == {"p3"}
    assert price_bands({}) == {}


def test_band_names_and_numbers() -> None:
    assert band_name(3) == "p3" and band_name(0) == ""
    assert band_number("p5") == 5 and band_number("") == 0 and band_number("gold") == 0 and band_number(None) == 0


def test_feature_names_leave_out_empty_values() -> None:
    item = {"sku": "A1", "category": "Home", "brand": "", "price_band": "p2", "tags": ["red", ""]}
    assert item_feature_names(item) == ["category=Home", "price_band=p2", "tag=red"]
    assert user_feature_names({"customer_id": "7", "region": "UK", "rfm_segment": ""}) == ["region=UK"]


def test_feature_matrix_rows_sum_to_one_and_featureless_rows_keep_their_identity() -> None:
    matrix, names = feature_matrix([["category=A", "tag=x"], []], ["sku=1", "sku=2"], with_identity=False)
    assert names == ["category=A", "tag=x", "sku=2"]
    np.testing.assert_allclose(matrix.toarray(), [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    matrix, names = feature_matrix([["category=A"], ["category=A"]], ["sku=1", "sku=2"], with_identity=True)
    assert names == ["sku=1", "category=A", "sku=2"]
    np.testing.assert_allclose(matrix.sum(axis=1), [[1.0], [1.0]])


def test_feature_weight_sets_the_features_share_against_the_identity() -> None:
    matrix, names = feature_matrix([["category=A", "tag=x", "tag=y", "tag=z"]], ["sku=1"], True, feature_weight=1.0)
    assert names == ["sku=1", "category=A", "tag=x", "tag=y", "tag=z"]
    np.testing.assert_allclose(matrix.toarray(), [[0.5, 0.125, 0.125, 0.125, 0.125]])
    matrix, _ = feature_matrix([["category=A"]], ["sku=1"], True, feature_weight=0.25)
    np.testing.assert_allclose(matrix.toarray(), [[0.8, 0.2]])
