"""Small synthetic recommender data with planted structure, and a frame builder for hand-made cases."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

CUTOFF = pd.Timestamp("2024-03-01", tz="UTC")
START = pd.Timestamp("2024-01-01", tz="UTC")


def frame(rows: Iterable[tuple[str, str, str, int, str]]) -> pd.DataFrame:
    """Interactions from (customer_id, sku, kind, quantity, ISO time) tuples; amount 100 per unit."""
    table = pd.DataFrame(list(rows), columns=["customer_id", "sku", "kind", "quantity", "occurred_at"])
    table["occurred_at"] = pd.to_datetime(table["occurred_at"], utc=True)
    table["amount_minor"] = table["quantity"] * 100
    return table


def planted(
    seed: int = 1, customers: int = 240, clusters: int = 6, per_cluster: int = 20, before: int = 6, after: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Customers in taste clusters buy items of their own cluster, plus a few blockbusters everyone buys.

    Before CUTOFF each customer orders `before` random items of their cluster and most blockbusters;
    after it, `after` more of their cluster they had not bought. Popularity cannot tell the clusters
    apart, the model can. Items carry category = cluster; users carry region = cluster.
    """
    rng = np.random.default_rng(seed)
    blockbusters = [f"hit{i}" for i in range(4)]
    rows: list[tuple[str, str, str, int, pd.Timestamp]] = []
    span = (CUTOFF - START).total_seconds()
    for customer in range(clusters * (customers // clusters)):
        cluster = customer % clusters
        own = rng.permutation(per_cluster)[: before + after]
        cid = f"c{customer}"
        for position, item in enumerate(own):
            if position < before:
                at = START + pd.Timedelta(seconds=float(rng.uniform(0, span)))
            else:
                at = CUTOFF + pd.Timedelta(days=float(rng.uniform(1, 30)))
            rows.append((cid, f"k{cluster}-{item}", "order", int(rng.integers(1, 4)), at))
        for hit in blockbusters:
            if rng.random() < 0.8:
                at = START + pd.Timedelta(seconds=float(rng.uniform(0, span)))
                rows.append((cid, hit, "order", 1, at))
    interactions = pd.DataFrame(rows, columns=["customer_id", "sku", "kind", "quantity", "occurred_at"])
    interactions["occurred_at"] = pd.to_datetime(interactions["occurred_at"], utc=True)
    interactions["amount_minor"] = interactions["quantity"] * 250
    skus = [f"k{c}-{i}" for c in range(clusters) for i in range(per_cluster)] + blockbusters
    items = pd.DataFrame({
        "sku": skus,
        "category": [sku.split("-")[0] if sku.startswith("k") else "hits" for sku in skus],
        "brand": "",
        "price_band": [f"p{1 + i % 5}" for i in range(len(skus))],
        "in_stock": True,
        "tags": [[] for _ in skus],
    })
    users = pd.DataFrame({
        "customer_id": [f"c{c}" for c in range(clusters * (customers // clusters))],
        "region": [f"r{c % clusters}" for c in range(clusters * (customers // clusters))],
    })
    return interactions, items, users
