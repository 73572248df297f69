"""Synthetic interactions at scale (power-law item popularity, taste clusters) for training-time benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

KIND_SHARES = (("view", 0.6), ("cart", 0.25), ("order", 0.13), ("refund", 0.02))


def interactions(
    rows: int = 1_000_000, customers: int = 50_000, items: int = 5_000, clusters: int = 20, seed: int = 7
) -> pd.DataFrame:
    """`rows` interactions over one year: each customer mostly picks items of their cluster, by a Zipf-like law."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, customers, rows)
    # Three picks in four come from the customer's cluster, the rest from the whole catalogue.
    per_cluster = items // clusters
    rank = np.minimum(rng.zipf(1.3, rows) - 1, per_cluster - 1)
    own = (customer % clusters) * per_cluster + rank
    anywhere = np.minimum(rng.zipf(1.2, rows) - 1, items - 1)
    item = np.where(rng.random(rows) < 0.75, own, anywhere)
    kinds = np.array([kind for kind, _ in KIND_SHARES])
    kind = kinds[rng.choice(len(kinds), rows, p=[share for _, share in KIND_SHARES])]
    quantity = np.where(kind == "view", 1, rng.integers(1, 5, rows))
    start = pd.Timestamp("2024-01-01", tz="UTC")
    occurred_at = start + pd.to_timedelta(rng.integers(0, 365 * 86_400, rows), unit="s")
    return pd.DataFrame({
        "customer_id": pd.Index(np.char.add("c", customer.astype(str))),
        "sku": pd.Index(np.char.add("s", item.astype(str))),
        "kind": kind,
        "quantity": quantity.astype(np.int64),
        "occurred_at": occurred_at,
        "amount_minor": (quantity * rng.integers(100, 5_000, rows)).astype(np.int64),
    })
