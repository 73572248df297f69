"""Popular items before any model is trained: a recommender that knows no customer, only what sells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from services.recommend.catalogue import Item
from services.recommend.features import band_number, feature_name
from services.recommend.recommender import Recommender
from services.recommend.store import CustomerFeatures

SEGMENT_COLUMN = "rfm_segment"


def popularity_recommender(interactions: pd.DataFrame, items: Sequence[Item],
                           features: Sequence[CustomerFeatures] = ()) -> Recommender | None:
    """Ranks items by distinct buyers (overall, and within each RFM segment); None without any order.

    As the model core's popularity baseline, a buyer counts once per item. Hidden items (not merchandise)
    are left out.
    """
    hidden = {i.sku for i in items if i.hidden}
    orders = interactions.loc[(interactions["kind"] == "order") & ~interactions["sku"].isin(hidden),
                              ["customer_id", "sku"]].drop_duplicates()
    if orders.empty:
        return None
    catalogue = {i.sku: i for i in items if not i.hidden}
    skus = np.asarray(sorted(set(catalogue) | set(orders["sku"].unique())), dtype=str)
    index = pd.Index(skus)
    columns = index.get_indexer(orders["sku"])
    popularity = np.bincount(columns, minlength=len(skus)).astype(np.float32)
    segment_of = {f.customer_id: f.rfm_segment for f in features if f.rfm_segment}
    segments = orders["customer_id"].map(segment_of)
    names = sorted(str(s) for s in segments.dropna().unique())
    by_segment = np.zeros((len(names), len(skus)), dtype=np.float32)
    for row, name in enumerate(names):
        by_segment[row] = np.bincount(columns[(segments == name).to_numpy()], minlength=len(skus))
    known = [catalogue.get(str(sku)) for sku in skus.tolist()]
    return Recommender(
        customer_ids=np.asarray([], dtype=str),
        skus=skus,
        user_vectors=np.zeros((0, 2), dtype=np.float32),
        # No embedding: each row is [1, bias] with the popularity as the bias.
        item_vectors=np.column_stack([np.ones(len(skus)), popularity]).astype(np.float32),
        feature_names=np.asarray([], dtype=str),
        feature_vectors=np.zeros((0, 2), dtype=np.float32),
        popularity=popularity,
        segment_names=np.asarray([feature_name(SEGMENT_COLUMN, n) for n in names], dtype=str),
        segment_popularity=by_segment,
        bought_indptr=np.zeros(1, dtype=np.int64),
        bought_items=np.zeros(0, dtype=np.int64),
        item_categories=np.asarray([i.category if i else "" for i in known], dtype=str),
        item_bands=np.asarray([band_number(i.price_band) if i else 0 for i in known], dtype=np.int8),
        in_stock=np.asarray([i.in_stock if i else True for i in known], dtype=bool),
        item_brands=np.asarray([i.brand if i else "" for i in known], dtype=str),
        info={"popularity_only": True, "orders": len(orders)},
    )
