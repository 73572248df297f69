"""Seeded synthetic portraits (the store's raw columns) and order lines (predict's), for the tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.segment.traits import (
    CATEGORY_SLOTS,
    LIFECYCLE_STAGES,
    PAYMENT_CHANNELS,
    RFM_SEGMENTS,
    SALES_CHANNELS,
)

CATEGORIES = ("Home", "Garden", "Kitchen", "Toys", "Stationery", "Gifts", "Lighting", "Bags")
REGIONS = ("United Kingdom", "France", "Germany", "EIRE", "Spain", "Netherlands")


def portraits(n: int, seed: int = 7, *, first_key: int = 1, currencies: tuple[str, ...] = ("GBP",)) -> pd.DataFrame:
    """n raw portrait rows (the store's columns: key, customer_id, traits, top_category_1..)."""
    rng = np.random.default_rng(seed)
    keys = np.arange(first_key, first_key + n, dtype="int64")
    frequency = rng.poisson(2.0, n).astype("int32")
    has_orders = frequency > 0
    monetary = np.where(has_orders, rng.integers(-5_000, 500_000, n), 0).astype("int64")
    scores = [np.where(has_orders, rng.integers(1, 6, n), 0).astype("int8") for _ in range(3)]
    # Up to three distinct ranked categories: a random rotation of the list, cut at a random length.
    names = np.array(CATEGORIES, dtype=object)
    start, step = rng.integers(0, len(CATEGORIES), n), rng.integers(1, len(CATEGORIES), n) | 1
    length = rng.integers(0, 4, n)
    slots = {
        slot: np.where(length > rank, names[(start + rank * step) % len(CATEGORIES)], "")
        for rank, slot in enumerate(CATEGORY_SLOTS)
    }
    return pd.DataFrame({
        "key": keys,
        "customer_id": [f"c{k:07d}" for k in keys],
        "has_orders": has_orders,
        "recency_days": np.where(has_orders, rng.integers(0, 720, n), -1).astype("int32"),
        "frequency": frequency,
        "monetary_minor": monetary,
        "average_order_value_minor": np.where(has_orders, monetary // np.maximum(frequency, 1), 0),
        "currency": rng.choice(np.array(currencies, dtype=object), n),
        "r_score": scores[0], "f_score": scores[1], "m_score": scores[2],
        "rfm_segment": np.where(has_orders, rng.choice(np.array(RFM_SEGMENTS, dtype=object), n), ""),
        "lifecycle": rng.choice(np.array(LIFECYCLE_STAGES, dtype=object), n),
        "purchasing_power": rng.random(n).round(4),
        "price_sensitivity": rng.random(n).round(4),
        "brand_loyalty": rng.random(n).round(4),
        "category_loyalty": rng.random(n).round(4),
        **slots,
        "preferred_payment": rng.choice(np.array(("", *PAYMENT_CHANNELS), dtype=object), n),
        "preferred_sales_channel": rng.choice(np.array(("", *SALES_CHANNELS), dtype=object), n),
        "region": rng.choice(np.array(REGIONS, dtype=object), n),
        "views": rng.poisson(8.0, n).astype("int32"),
        "carts": rng.poisson(2.0, n).astype("int32"),
        "searches": rng.poisson(3.0, n).astype("int32"),
        "refunds": rng.poisson(0.2, n).astype("int32"),
        "purchase_interval_days": np.where(frequency >= 2, rng.random(n) * 120, 0.0).round(2),
        "consent_email": rng.random(n) < 0.6,
        "consent_sms": rng.random(n) < 0.3,
        "consent_push": rng.random(n) < 0.4,
    })


def order_lines(n: int, end: pd.Timestamp, days: int = 360, seed: int = 11) -> pd.DataFrame:
    """Order and refund lines of customers c0000001 ... (as portraits(n) names them) over `days` before `end`.

    Each customer orders at a steady rate (log-normal across customers) from a random start until a
    random slow-down, then at a tenth of it, so recent and frequent buyers are likelier to buy again:
    the goals' models have something to learn. One order in twenty is partly refunded a few days later.
    """
    rng = np.random.default_rng(seed)
    start_at = end - pd.Timedelta(days=days)
    rows: list[tuple[str, str, pd.Timestamp, int, str, bool]] = []
    names = np.array(CATEGORIES, dtype=object)
    for k in range(1, n + 1):
        customer = f"c{k:07d}"
        rate = rng.lognormal(np.log(12 / 365), 1.0)
        begin = rng.uniform(0, days * 0.6)
        slow = min(days, begin + rng.exponential(days * 0.5))
        count_active = rng.poisson(rate * (slow - begin))
        count_slow = rng.poisson(rate * 0.1 * (days - slow))
        moments = np.sort(np.concatenate([rng.uniform(begin, slow, count_active), rng.uniform(slow, days, count_slow)]))
        favourite = rng.integers(0, len(CATEGORIES))
        for number, day in enumerate(moments):
            when = start_at + pd.Timedelta(days=float(day))
            order = f"o-{customer}-{number}"
            for _ in range(rng.integers(1, 4)):
                category = names[favourite] if rng.random() < 0.7 else rng.choice(names)
                rows.append((customer, order, when, int(rng.integers(100, 5000)), str(category), False))
            refund_at = when + pd.Timedelta(days=float(rng.uniform(1, 10)))
            if rng.random() < 0.05 and refund_at < end:
                rows.append((customer, f"r-{customer}-{number}", refund_at, -int(rng.integers(50, 500)),
                             str(names[favourite]), True))
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "occurred_at", "amount_minor", "category",
                                        "is_refund"])
    # Whole seconds, as events carry them.
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True).dt.floor("s")
    frame["amount_minor"] = frame["amount_minor"].astype("int64")
    return frame.sort_values(["occurred_at", "order_id"], kind="stable").reset_index(drop=True)
