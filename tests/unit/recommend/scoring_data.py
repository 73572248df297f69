"""A hand-built Recommender whose scores are known exactly, for the serving tests."""

from __future__ import annotations

import numpy as np

from services.recommend.recommender import Recommender

SKUS = ("s0", "s1", "s2", "s3", "s4", "s5")
# Item embeddings for cosine (similar items); item biases set the customer's scores: 6, 5, 4, 3, 2, 1.
EMBEDDINGS = ((1.0, 0.0), (0.9, 0.1), (0.0, 1.0), (0.1, 0.9), (-1.0, 0.0), (0.7, 0.7))
BIASES = (6.0, 5.0, 4.0, 3.0, 2.0, 1.0)


def recommender() -> Recommender:
    """Customer u0 (bought s0) scores the items 6..1 in order; popularity ranks them the other way."""
    items = np.array([[*e, 1.0, b] for e, b in zip(EMBEDDINGS, BIASES, strict=True)], dtype=np.float32)
    return Recommender(
        customer_ids=np.array(["u0", "u1"]),
        skus=np.array(SKUS),
        user_vectors=np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float32),
        item_vectors=items,
        feature_names=np.array(["category=A", "category=B"]),
        feature_vectors=np.array([[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.5]], dtype=np.float32),
        popularity=np.array([1, 2, 3, 4, 5, 6], dtype=np.float32),
        segment_names=np.array(["region=r1"]),
        segment_popularity=np.array([[0, 0, 9, 0, 0, 0]], dtype=np.float32),
        bought_indptr=np.array([0, 1, 1], dtype=np.int64),
        bought_items=np.array([0], dtype=np.int64),
        item_categories=np.array(["A", "A", "B", "B", "C", ""]),
        item_bands=np.array([1, 2, 3, 4, 5, 0], dtype=np.int8),
        in_stock=np.array([True, True, False, True, True, True]),
        item_brands=np.array(["Own", "Own", "Other", "", "Own", "Other"]),
    )
