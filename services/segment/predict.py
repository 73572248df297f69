"""Predictive audiences for the four goals: per-customer features, time-split labels, scikit-learn models."""

from __future__ import annotations

import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from services.segment.predict_metrics import Quality, quality

# Why scikit-learn's HistGradientBoostingClassifier: a well-kept library, fast on a few thousand
# rows (well under a second here), handles missing values (a one-order customer has no gap) and
# needs no feature scaling; fixed parameters and random_state make the runs reproducible.

LINE_COLUMNS = ("customer_id", "order_id", "occurred_at", "amount_minor", "category", "is_refund")
HORIZON = timedelta(days=90)
ACTIVE_WINDOW = timedelta(days=90)
DAY = pd.Timedelta(days=1)

RETENTION = "retention"
GROWTH = "growth"
GROWTH_CATEGORY = "growth_new_category"
ACTIVATION = "activation"
ACQUISITION = "acquisition"
TIME_SPLIT_GOALS = (RETENTION, GROWTH, GROWTH_CATEGORY, ACTIVATION)
GOALS = (*TIME_SPLIT_GOALS, ACQUISITION)

FEATURE_COLUMNS = (
    "recency_days", "frequency", "monetary", "avg_order_value", "tenure_days", "mean_gap_days",
    "orders_30d", "orders_90d", "spend_90d", "distinct_categories", "lines_per_order",
    "refunds", "refund_share",
)
# The lookalike uses only the "shape" of a customer's orders, which a one-order prospect has too;
# volume columns (frequency, monetary, tenure...) would just learn "has many orders" = "is not a prospect".
LOOKALIKE_COLUMNS = ("avg_order_value", "lines_per_order", "distinct_categories", "refund_share", "recency_days")


def lines_from_retail(frame: pd.DataFrame) -> pd.DataFrame:
    """The cleaned UCI Online Retail frame (services.demo.retail.load_frame) as lines of known customers."""
    from services.demo.retail import sku_categories

    known = frame[frame["CustomerID"].notna()]
    categories = sku_categories(frame)
    return pd.DataFrame({
        "customer_id": known["CustomerID"].astype(str).to_numpy(),
        "order_id": known["InvoiceNo"].astype(str).to_numpy(),
        "occurred_at": pd.to_datetime(known["InvoiceDate"]).to_numpy(),
        "amount_minor": (known["Quantity"] * known["price_minor"]).astype("int64").to_numpy(),
        "category": known["StockCode"].map(categories).fillna("Other").astype(str).to_numpy(),
        "is_refund": known["is_refund"].astype(bool).to_numpy(),
    })


def _orders(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer, order id): its earliest time, net amount, line count and refund flag."""
    return (
        lines.groupby(["customer_id", "order_id"], sort=False)
        .agg(occurred_at=("occurred_at", "min"), amount_minor=("amount_minor", "sum"),
             lines=("amount_minor", "size"), is_refund=("is_refund", "first"))
        .reset_index()
    )


def _days(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 86400.0


def _at(lines: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.Timestamp:
    """The cutoff as a Timestamp in the lines' convention: tz-aware UTC if they are, naive UTC otherwise."""
    at = pd.Timestamp(cutoff)
    aware = getattr(lines["occurred_at"].dt, "tz", None) is not None
    if aware and at.tzinfo is None:
        return at.tz_localize("UTC")
    if not aware and at.tzinfo is not None:
        return at.tz_convert("UTC").tz_localize(None)
    return at


def features(lines: pd.DataFrame, cutoff: pd.Timestamp | str) -> pd.DataFrame:
    """Per customer with any line strictly before `cutoff`: FEATURE_COLUMNS (floats, NaN where undefined).

    recency/tenure are days from the last/first order to the cutoff; mean_gap_days is
    (last - first) / (frequency - 1); monetary is net of refunds; avg_order_value, lines_per_order
    are over orders; refund_share is refunded over ordered amount; orders_30d/90d and spend_90d
    count orders in [cutoff - N days, cutoff).
    """
    at = _at(lines, cutoff)
    before = lines[lines["occurred_at"] < at]
    orders = _orders(before)
    bought = orders[~orders["is_refund"]]
    refunds = orders[orders["is_refund"]]
    index = pd.Index(sorted(orders["customer_id"].unique()), name="customer_id")
    by = bought.groupby("customer_id")
    first = by["occurred_at"].min()
    last = by["occurred_at"].max()
    frequency = by.size().reindex(index, fill_value=0).astype(float)
    gross = by["amount_minor"].sum().reindex(index, fill_value=0).astype(float)
    refunded = (-refunds.groupby("customer_id")["amount_minor"].sum()).reindex(index, fill_value=0).astype(float)
    out = pd.DataFrame(index=index)
    out["recency_days"] = _days(at - last).reindex(index)
    out["frequency"] = frequency
    out["monetary"] = gross - refunded
    out["avg_order_value"] = (gross / frequency).where(frequency > 0)
    out["tenure_days"] = _days(at - first).reindex(index)
    out["mean_gap_days"] = (_days(last - first).reindex(index) / (frequency - 1)).where(frequency > 1)
    for days in (30, 90):
        recent = bought[bought["occurred_at"] >= at - pd.Timedelta(days=days)]
        out[f"orders_{days}d"] = recent.groupby("customer_id").size().reindex(index, fill_value=0).astype(float)
        if days == 90:
            spend = recent.groupby("customer_id")["amount_minor"].sum()
            out["spend_90d"] = spend.reindex(index, fill_value=0).astype(float)
    bought_lines = before[~before["is_refund"]]
    out["distinct_categories"] = (
        bought_lines.groupby("customer_id")["category"].nunique().reindex(index, fill_value=0).astype(float)
    )
    out["lines_per_order"] = (by["lines"].sum().reindex(index) / frequency).where(frequency > 0)
    out["refunds"] = refunds.groupby("customer_id").size().reindex(index, fill_value=0).astype(float)
    out["refund_share"] = (refunded / gross).where(gross > 0)
    return out[list(FEATURE_COLUMNS)]


def _ordered_in(lines: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Index:
    window = lines[(lines["occurred_at"] >= start) & (lines["occurred_at"] < end) & ~lines["is_refund"]]
    return pd.Index(window["customer_id"].unique())


def _new_category_buyers(lines: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.Index:
    bought = lines[~lines["is_refund"]]
    seen = bought[bought["occurred_at"] < start][["customer_id", "category"]].drop_duplicates()
    window = bought[(bought["occurred_at"] >= start) & (bought["occurred_at"] < end)]
    pairs = window[["customer_id", "category"]].drop_duplicates()
    fresh = pairs.merge(seen, on=["customer_id", "category"], how="left", indicator=True)
    return pd.Index(fresh.loc[fresh["_merge"] == "left_only", "customer_id"].unique())


def population(goal: str, feats: pd.DataFrame, active_window: timedelta = ACTIVE_WINDOW) -> pd.DataFrame:
    """The customers a time-split goal is about: active ones (retention), buyers (growth), dormant ones (activation)."""
    days = active_window / timedelta(days=1)
    buyers = feats[feats["frequency"] >= 1]
    if goal == RETENTION:
        return buyers[buyers["recency_days"] <= days]
    if goal in (GROWTH, GROWTH_CATEGORY):
        return buyers
    if goal == ACTIVATION:
        return buyers[buyers["recency_days"] > days]
    raise ValueError(f"unknown time-split goal {goal!r}; expected one of {TIME_SPLIT_GOALS}")


def labelled(
    goal: str, lines: pd.DataFrame, cutoff: pd.Timestamp | str, horizon: timedelta = HORIZON,
) -> tuple[pd.DataFrame, pd.Series]:
    """Features before `cutoff` of the goal's population and its 0/1 label from [cutoff, cutoff + horizon).

    retention: 1 = no order in the window (churn); growth and activation: 1 = an order in the window;
    growth_new_category: 1 = bought a category not bought before the cutoff.
    """
    at = _at(lines, cutoff)
    end = at + pd.Timedelta(horizon)
    feats = population(goal, features(lines, at))
    hits = _new_category_buyers(lines, at, end) if goal == GROWTH_CATEGORY else _ordered_in(lines, at, end)
    label = pd.Series(feats.index.isin(hits), index=feats.index, name="label")
    if goal == RETENTION:
        label = ~label
    return feats, label.astype(int)


def make_classifier(seed: int = 0) -> HistGradientBoostingClassifier:
    """The estimator shared by the goals (fixed parameters, reproducible)."""
    return HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
        l2_regularization=1.0, early_stopping=False, random_state=seed,
    )


@dataclass(frozen=True, slots=True)
class TrainedModel:
    """A fitted model of one goal with its held-out quality and how it was evaluated."""

    goal: str
    estimator: Any
    columns: tuple[str, ...]
    quality: Quality
    evaluation: str
    train_size: int
    train_base_rate: float
    train_seconds: float

    def score(self, feats: pd.DataFrame) -> pd.Series:
        """P(label = 1) per customer (index kept)."""
        if feats.empty:
            return pd.Series([], index=feats.index, dtype=float, name="score")
        proba = self.estimator.predict_proba(feats[list(self.columns)])[:, 1]
        return pd.Series(proba, index=feats.index, name="score")


def time_split_cutoffs(lines: pd.DataFrame, horizon: timedelta = HORIZON) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(T1, T2): T2 = midnight after the last line minus the horizon (a complete test window), T1 = T2 - horizon."""
    end = pd.Timestamp(lines["occurred_at"].max()).normalize() + DAY
    t2 = end - pd.Timedelta(horizon)
    return t2 - pd.Timedelta(horizon), t2


def train_time_split(
    goal: str, lines: pd.DataFrame, horizon: timedelta = HORIZON,
    cutoffs: tuple[pd.Timestamp, pd.Timestamp] | None = None, seed: int = 0,
) -> TrainedModel:
    """Trains on (features before T1, label in [T1, T2)) and evaluates out of time on (before T2, [T2, T2 + horizon))."""
    t1, t2 = cutoffs if cutoffs is not None else time_split_cutoffs(lines, horizon)
    x_train, y_train = labelled(goal, lines, t1, horizon)
    x_test, y_test = labelled(goal, lines, t2, horizon)
    if y_train.nunique() < 2:
        raise ValueError(f"{goal}: the training labels at {t1} have a single class")
    columns = FEATURE_COLUMNS
    estimator = make_classifier(seed)
    started = time.perf_counter()
    estimator.fit(x_train[list(columns)], y_train)
    seconds = time.perf_counter() - started
    scores = estimator.predict_proba(x_test[list(columns)])[:, 1] if len(x_test) else np.empty(0)
    held_out = quality(y_test.to_numpy(), scores)
    evaluation = f"out of time: train cutoff {t1:%Y-%m-%d}, test cutoff {t2:%Y-%m-%d}, horizon {horizon.days} days"
    return TrainedModel(goal, estimator, columns, held_out, evaluation, len(y_train), float(y_train.mean()), seconds)


def top_monetary(feats: pd.DataFrame, share: float = 0.2) -> pd.Index:
    """The default lookalike seed: the top `share` of customers by monetary (at least one)."""
    count = max(1, math.ceil(share * len(feats)))
    return feats["monetary"].sort_values(ascending=False, kind="stable").index[:count]


def prospects(feats: pd.DataFrame) -> pd.DataFrame:
    """Customers with no or one order."""
    return feats[feats["frequency"] <= 1]


def train_lookalike(
    feats: pd.DataFrame, seed_ids: Collection[str] | None = None, test_share: float = 0.25, seed: int = 0,
) -> TrainedModel:
    """Acquisition: seed-vs-rest on LOOKALIKE_COLUMNS among established customers (two or more orders).

    There is no future label to split on in time, so the quality is a customer-level holdout: a
    stratified `test_share` of the established customers, AUC of separating held-out seed members
    from the others. Prospects (no or one order) are never trained on, so their scores are unbiased.
    """
    seed_index = pd.Index(list(seed_ids)) if seed_ids is not None else top_monetary(feats)
    established = feats[feats["frequency"] >= 2]
    label = pd.Series(established.index.isin(seed_index), index=established.index).astype(int)
    if label.nunique() < 2:
        raise ValueError("acquisition: the seed must hold some but not all established customers")
    x_train, x_test, y_train, y_test = train_test_split(
        established, label, test_size=test_share, stratify=label, random_state=seed,
    )
    columns = LOOKALIKE_COLUMNS
    estimator = make_classifier(seed)
    started = time.perf_counter()
    estimator.fit(x_train[list(columns)], y_train)
    seconds = time.perf_counter() - started
    proba = estimator.predict_proba(x_test[list(columns)])[:, 1]
    evaluation = (f"customer holdout: {test_share:.0%} of {len(established)} established customers, "
                  f"seed {int(label.sum())} members")
    return TrainedModel(ACQUISITION, estimator, columns, quality(y_test.to_numpy(), proba), evaluation,
                        len(y_train), float(y_train.mean()), seconds)


def audience(scores: pd.Series, top_k: int | None = None, threshold: float | None = None) -> pd.Series:
    """The highest scores first: the top `top_k`, and/or those with score >= `threshold` (both: both apply)."""
    if top_k is not None and top_k < 0:
        raise ValueError("top_k must be zero or more")
    order = np.argsort(-scores.to_numpy(dtype=float), kind="stable")
    chosen = scores.iloc[order]
    if threshold is not None:
        chosen = chosen[chosen >= threshold]
    if top_k is not None:
        chosen = chosen.iloc[:top_k]
    return chosen


def candidates(goal: str, feats: pd.DataFrame) -> pd.DataFrame:
    """The customers a goal's audience is chosen from (features at scoring time): its time-split
    population, or the prospects for acquisition."""
    return prospects(feats) if goal == ACQUISITION else population(goal, feats)


def train_all(lines: pd.DataFrame, horizon: timedelta = HORIZON, seed: int = 0) -> dict[str, TrainedModel]:
    """All goals on one line frame: the time-split goals at the default cutoffs, the lookalike at T2."""
    cutoffs = time_split_cutoffs(lines, horizon)
    models = {goal: train_time_split(goal, lines, horizon, cutoffs, seed) for goal in TIME_SPLIT_GOALS}
    models[ACQUISITION] = train_lookalike(features(lines, cutoffs[1]), seed=seed)
    return models
