"""A recommender without some customers: their model rows and bought lists go, everything else stays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from services.recommend.recommender import Recommender


def without_customers(recommender: Recommender, customer_ids: Iterable[str]) -> tuple[Recommender, int]:
    """The recommender with the customers' rows removed (they become unknown to it), and how many it held.

    Popularity counts and item representations are aggregates over every buyer and stay as they are.
    """
    rows = sorted({recommender.user_index[c] for c in customer_ids if c in recommender.user_index})
    if not rows:
        return recommender, 0
    keep = np.ones(len(recommender.customer_ids), dtype=bool)
    keep[rows] = False
    counts = np.diff(recommender.bought_indptr)
    owner = np.repeat(np.arange(len(counts)), counts)
    indptr = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[keep], out=indptr[1:])
    trimmed = replace(
        recommender,
        customer_ids=recommender.customer_ids[keep],
        user_vectors=recommender.user_vectors[keep],
        bought_indptr=indptr,
        bought_items=recommender.bought_items[keep[owner]],
    )
    return trimmed, len(rows)
