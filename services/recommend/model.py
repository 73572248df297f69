"""Training and offline evaluation of the LightFM hybrid recommender (pure: frames in, Recommender out)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from lightfm import LightFM

from services.recommend.cold import feature_map
from services.recommend.features import (
    IDENTITY,
    band_number,
    descriptive_matrix,
    feature_matrix,
    feature_name,
    item_feature_names,
    user_feature_names,
)
from services.recommend.metrics import RankingMetrics, ranking_metrics
from services.recommend.recommender import Recommender
from services.recommend.weights import InteractionWeights, check_interactions, weigh

# Why rectools-lightfm: LightFM is the well-kept hybrid matrix factorisation library (item and user
# features, WARP/BPR losses, OpenMP); the PyPI "lightfm" sdist does not build under PEP 517 here
# (DESIGN.md section 7), rectools-lightfm 1.17.3 is the same code, MIT, and imports as `lightfm`.

USER_IDENTITY = "customer_id"
# A user column with more distinct values than this gets no per-value popularity table (cold start
# by segment is for segments, not for near-unique columns such as a postcode).
MAX_SEGMENT_VALUES = 1000

Loss = Literal["warp", "bpr", "logistic", "warp-kos"]
Schedule = Literal["adagrad", "adadelta"]


@dataclass(frozen=True, slots=True)
class TrainParams:
    """LightFM's knobs plus which features to use; the defaults are the validated choice (bench/recommend_quality.py).

    Chosen on the Online Retail data with train/validate splits strictly before the test cut-off (train
    before 2011-09-01 or 2011-10-01, validate on the next month's new purchases, two seeds each), one
    change at a time: WARP over BPR (p@10 0.058 vs 0.051); max_sampled 100 over 30 and 10 (0.074 / 0.071 /
    0.065: WARP finds the hard negatives of a 4,000-item catalogue); 32 components and 20 epochs (64
    components or 10, 30-50 epochs within noise or worse). Item features inside LightFM cost precision
    (category and price band alone: 0.050; with description tags at half weight: 0.068 vs 0.074 without),
    so by default they only place cold and new items (services/recommend/cold.py); user features (region)
    cost precision too (0.066 vs 0.071).
    """

    no_components: int = 32
    loss: Loss = "warp"
    epochs: int = 20
    learning_rate: float = 0.05
    learning_schedule: Schedule = "adagrad"
    item_alpha: float = 0.0
    user_alpha: float = 0.0
    max_sampled: int = 100
    seed: int = 42
    threads: int = 2
    use_item_features: bool = False
    use_user_features: bool = False
    item_identity: bool = True
    user_identity: bool = True
    # The weight of an item's (user's) descriptive features together, against 1 for its identity.
    item_feature_weight: float = 1.0
    user_feature_weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainParams:
        """The inverse of to_dict."""
        return cls(**data)


@dataclass(frozen=True, slots=True)
class OfflineReport:
    """A time-split evaluation of the model and of the popularity baseline on the same users and exclusions."""

    k: int
    cutoff: str
    model: RankingMetrics
    popularity: RankingMetrics
    users_evaluated: int
    users_skipped_not_in_train: int
    users_skipped_no_new_purchase: int
    train_interactions: int
    test_purchases: int
    train_seconds: float
    # Later purchases of skus the model has never seen (not in items, not sold before the cutoff):
    # they cannot be ranked by either side and are left out of the relevant sets.
    test_purchases_unknown_items: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def train(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None = None,
    users: pd.DataFrame | None = None,
    params: TrainParams | None = None,
    weights: InteractionWeights | None = None,
    as_of: pd.Timestamp | None = None,
) -> Recommender:
    """Fits LightFM on the weighted interactions with item/user features; precomputes everything serving needs.

    interactions: customer_id, sku, kind (view/cart/order/refund), quantity, occurred_at (UTC), amount_minor.
    items: sku, category, brand, price_band ("p1".."p5"), in_stock, tags (list[str]); skus seen only in
    interactions are added with no features. users: customer_id plus any categorical columns ("col=value").
    as_of anchors the time decay (default: the last interaction). Raises ValueError on malformed input.
    """
    params = params or TrainParams()
    weights = weights or InteractionWeights()
    started = time.perf_counter()
    check_interactions(interactions)
    if interactions.empty:
        raise ValueError("no interactions to train on")
    pairs = weigh(interactions, weights, as_of)
    catalogue = _catalogue(items, pairs["sku"])
    customer_ids = np.asarray(pd.unique(pairs["customer_id"]), dtype=str)
    skus = catalogue["sku"].to_numpy(dtype=str)
    user_index = pd.Index(customer_ids)
    item_index = pd.Index(skus)
    user_rows = user_index.get_indexer(pairs["customer_id"])
    item_rows = item_index.get_indexer(pairs["sku"])
    shape = (len(customer_ids), len(skus))

    positive = pairs["weight"].to_numpy() > 0
    if not positive.any():
        raise ValueError("every interaction weighs zero (all orders refunded and no views or carts?)")
    rows, cols = user_rows[positive], item_rows[positive]
    # Mean weight 1: the learning rate keeps its meaning whatever the weight scheme's scale.
    weight = pairs["weight"].to_numpy()[positive]
    sample_weight = sp.coo_matrix(((weight / weight.mean()).astype(np.float32), (rows, cols)), shape=shape)

    item_names = [item_feature_names(row) for row in catalogue.to_dict("records")]
    item_features, item_feature_list = feature_matrix(
        item_names if params.use_item_features else [[] for _ in skus],
        [feature_name(IDENTITY, sku) for sku in skus],
        params.item_identity or not params.use_item_features,
        params.item_feature_weight,
    )
    user_table = _user_table(users, customer_ids)
    user_features, _ = feature_matrix(
        [user_feature_names(row) for row in user_table.to_dict("records")] if params.use_user_features
        else [[] for _ in customer_ids],
        [feature_name(USER_IDENTITY, customer) for customer in customer_ids],
        params.user_identity or not params.use_user_features,
        params.user_feature_weight,
    )
    model = _fit(params, sample_weight, user_features, item_features)
    item_bias, item_embedding = model.get_item_representations(item_features)
    user_bias, user_embedding = model.get_user_representations(user_features)
    item_vectors = np.hstack([item_embedding, np.ones((len(skus), 1)), item_bias[:, None]]).astype(np.float32)
    user_vectors = np.hstack([user_embedding, user_bias[:, None], np.ones((len(customer_ids), 1))]).astype(np.float32)

    warm = np.unique(cols)
    if params.use_item_features:
        described, described_names, feature_vectors = _hybrid_features(model, item_features, item_feature_list)
    else:
        described, described_names = descriptive_matrix(item_names)
        feature_vectors = feature_map(described, item_vectors, warm)
    reach = float(np.linalg.norm(user_embedding, axis=1).max())
    _place_cold_items(item_vectors, warm, described, feature_vectors, reach)

    bought = pairs["bought"].to_numpy()
    popularity = _popularity(item_rows[bought], pairs["weight"].to_numpy()[bought], len(skus))
    segment_names, segment_popularity = _segment_popularity(
        user_table, user_rows[bought], item_rows[bought], popularity
    )
    indptr, bought_items = _bought_lists(user_rows[bought], item_rows[bought], len(customer_ids))
    return Recommender(
        customer_ids=customer_ids,
        skus=skus,
        user_vectors=user_vectors,
        item_vectors=item_vectors,
        feature_names=np.asarray(described_names, dtype=str),
        feature_vectors=feature_vectors,
        popularity=popularity,
        segment_names=segment_names,
        segment_popularity=segment_popularity,
        bought_indptr=indptr,
        bought_items=bought_items,
        item_categories=catalogue["category"].to_numpy(dtype=str),
        item_bands=np.asarray([band_number(b) for b in catalogue["price_band"].tolist()], dtype=np.int8),
        in_stock=catalogue["in_stock"].to_numpy(dtype=bool),
        item_brands=catalogue["brand"].to_numpy(dtype=str),
        info={
            "params": params.to_dict(),
            "weights": weights.to_dict(),
            "interactions": len(interactions),
            "pairs": int(positive.sum()),
            "users": len(customer_ids),
            "items": len(skus),
            "train_seconds": round(time.perf_counter() - started, 3),
        },
    )


def _fit(
    params: TrainParams, sample_weight: sp.coo_matrix, user_features: sp.csr_matrix, item_features: sp.csr_matrix
) -> LightFM:
    """LightFM fitted on the positive pairs (the weights' sparsity pattern), each weighted by its confidence."""
    model = LightFM(
        no_components=params.no_components,
        loss=params.loss,
        learning_schedule=params.learning_schedule,
        learning_rate=params.learning_rate,
        item_alpha=params.item_alpha,
        user_alpha=params.user_alpha,
        max_sampled=params.max_sampled,
        random_state=np.random.RandomState(params.seed),
    )
    positives = sp.coo_matrix(
        (np.ones(sample_weight.nnz, dtype=np.float32), (sample_weight.row, sample_weight.col)),
        shape=sample_weight.shape,
    )
    model.fit(
        positives,
        user_features=user_features,
        item_features=item_features,
        # LightFM refuses sample weights with the k-OS loss.
        sample_weight=sample_weight if params.loss != "warp-kos" else None,
        epochs=params.epochs,
        num_threads=params.threads,
    )
    return model


def _hybrid_features(
    model: LightFM, item_features: sp.csr_matrix, names: list[str]
) -> tuple[sp.csr_matrix, list[str], npt.NDArray[np.float32]]:
    """The descriptive columns of a hybrid model, their names and their learned rows in the item layout.

    Only descriptive features can place a new item; identity rows are per-sku and useless for that.
    """
    descriptive = [i for i, name in enumerate(names) if not name.startswith(f"{IDENTITY}=")]
    vectors = np.hstack([
        model.item_embeddings[descriptive],
        np.ones((len(descriptive), 1)),
        model.item_biases[descriptive][:, None],
    ]).astype(np.float32)
    return item_features[:, descriptive], [names[i] for i in descriptive], vectors


def _place_cold_items(
    item_vectors: npt.NDArray[np.float32],
    warm: npt.NDArray[np.intp],
    features: sp.csr_matrix,
    feature_vectors: npt.NDArray[np.float32],
    reach: float,
) -> None:
    """Items without a training interaction: placed by their descriptive features, else ranked last.

    `reach` is the longest user embedding: a bias that far below every trained item's score bound
    (|u . v| <= |u| |v|) puts a featureless cold item below all of them for every user.

    Their identity rows never received a gradient, so they hold LightFM's random start and a zero bias,
    which ranks them above most trained items (WARP pushes rarely bought items' biases below zero).
    """
    cold = np.ones(len(item_vectors), dtype=bool)
    cold[warm] = False
    if not cold.any():
        return
    weights = features[cold]
    sums = np.asarray(weights.sum(axis=1)).ravel()
    placed = sp.diags(1.0 / np.where(sums > 0, sums, 1.0)).dot(weights).dot(feature_vectors)
    trained = item_vectors[warm]
    floor = float((trained[:, -1] - reach * np.linalg.norm(trained[:, :-2], axis=1)).min()) if warm.size else 0.0
    bare = np.zeros_like(item_vectors[0])
    bare[-2], bare[-1] = 1.0, floor - 1.0
    item_vectors[cold] = np.where((sums > 0)[:, None], placed, bare)


def _catalogue(items: pd.DataFrame | None, seen: pd.Series) -> pd.DataFrame:
    """The items frame (first occurrence of a sku wins) plus featureless rows for skus seen only in events."""
    columns = {"sku": "", "category": "", "brand": "", "price_band": "", "in_stock": True, "tags": ()}
    frame = pd.DataFrame(columns=list(columns)) if items is None else items.copy()
    if "sku" not in frame.columns:
        raise ValueError("items lack the sku column")
    frame["sku"] = frame["sku"].astype(str)
    frame = frame.drop_duplicates("sku")
    extra = pd.Index(pd.unique(seen.astype(str))).difference(pd.Index(frame["sku"]), sort=False)
    frame = pd.concat([frame, pd.DataFrame({"sku": np.asarray(extra, dtype=object)})], ignore_index=True)
    for column, default in columns.items():
        if column not in frame.columns:
            frame[column] = None
        if column == "tags":
            frame[column] = [tuple(v) if isinstance(v, list | tuple | np.ndarray) else () for v in frame[column]]
        else:
            frame[column] = frame[column].where(frame[column].notna(), default)
    frame["in_stock"] = frame["in_stock"].astype(bool)
    frame["category"] = frame["category"].astype(str)
    return frame.reset_index(drop=True)


def _user_table(users: pd.DataFrame | None, customer_ids: npt.NDArray[np.str_]) -> pd.DataFrame:
    """One row per trained customer, in row order, with the user frame's columns as strings ("" if unknown)."""
    if users is None or users.empty:
        return pd.DataFrame({"customer_id": customer_ids})
    if "customer_id" not in users.columns:
        raise ValueError("users lack the customer_id column")
    table = users.assign(customer_id=users["customer_id"].astype(str)).drop_duplicates("customer_id")
    table = table.set_index("customer_id").reindex(pd.Index(customer_ids, name="customer_id"))
    table = table.astype(object).where(table.notna(), "").astype(str)
    return table.reset_index()


def _popularity(items: npt.NDArray[np.intp], weight: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float32]:
    """Distinct buyers per item; the summed weights (below one buyer in total) break ties."""
    buyers = np.bincount(items, minlength=width).astype(np.float64)
    mass = np.bincount(items, weights=weight, minlength=width)
    tie = mass / (mass.max() + 1.0) if mass.size else mass
    return (buyers + tie).astype(np.float32)


def _segment_popularity(
    table: pd.DataFrame, users: npt.NDArray[np.intp], items: npt.NDArray[np.intp], overall: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.float32]]:
    """Distinct buyers per item among the users of each "column=value" of the user frame.

    Overall popularity (scaled below one buyer) breaks ties, so a small segment's many zero-buyer items
    still come in a sensible order.
    """
    width = len(overall)
    tie = (overall / (overall.max() + 1.0)).astype(np.float32) if width else overall
    names: list[str] = []
    tables: list[npt.NDArray[np.float32]] = []
    for column in table.columns:
        if column == "customer_id":
            continue
        values = table[column].to_numpy(dtype=str)
        distinct = [v for v in pd.unique(values) if v != ""]
        if len(distinct) > MAX_SEGMENT_VALUES:
            continue
        codes, uniques = pd.factorize(values[users])
        counts = np.zeros((len(uniques), width), dtype=np.float32)
        np.add.at(counts, (codes, items), 1.0)
        for code, value in enumerate(uniques.tolist()):
            if value != "":
                names.append(feature_name(column, value))
                tables.append(counts[code] + tie)
    if not tables:
        return np.asarray([], dtype=str), np.zeros((0, width), dtype=np.float32)
    return np.asarray(names, dtype=str), np.vstack(tables)


def _bought_lists(
    users: npt.NDArray[np.intp], items: npt.NDArray[np.intp], height: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """CSR-style lists: the items of user u are bought_items[indptr[u]:indptr[u + 1]], sorted."""
    order = np.lexsort((items, users))
    indptr = np.zeros(height + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=height), out=indptr[1:])
    return indptr, items[order].astype(np.int64)


def evaluate(
    interactions: pd.DataFrame,
    items: pd.DataFrame | None,
    users: pd.DataFrame | None,
    cutoff: pd.Timestamp | str,
    k: int = 10,
    params: TrainParams | None = None,
    weights: InteractionWeights | None = None,
) -> OfflineReport:
    """Trains on events before `cutoff`, tests on orders after it of items the customer had not ordered before.

    Customers unknown at the cutoff or without such a purchase are skipped (and counted). The popularity
    baseline ranks by distinct buyers before the cutoff; both rankings drop items already bought.
    The users frame must describe customers as of the cutoff (no later data), or the split leaks.
    """
    check_interactions(interactions)
    at = _utc(cutoff)
    before = interactions["occurred_at"] < at
    started = time.perf_counter()
    recommender = train(interactions[before], items, users, params, weights, as_of=at)
    seconds = time.perf_counter() - started

    later = interactions[~before & (interactions["kind"] == "order")]
    users_index, items_index = pd.Index(recommender.customer_ids), pd.Index(recommender.skus)
    tested = pd.DataFrame({
        "user": users_index.get_indexer(pd.Index(later["customer_id"].astype(str))),
        "item": items_index.get_indexer(pd.Index(later["sku"].astype(str))),
    }).drop_duplicates()
    buyers = int(later["customer_id"].nunique())
    known = tested[tested["user"] >= 0]
    rows = np.asarray(pd.unique(known["user"]), dtype=np.intp)
    excluded = np.zeros((len(rows), len(recommender.skus)), dtype=bool)
    for position, row in enumerate(rows.tolist()):
        excluded[position, recommender.bought(row)] = True
    ranked = known[known["item"] >= 0]
    relevant = np.zeros_like(excluded)
    relevant[pd.Index(rows).get_indexer(pd.Index(ranked["user"])), ranked["item"].to_numpy()] = True
    relevant &= ~excluded
    new = relevant.any(axis=1)
    scores = recommender.user_vectors[rows[new]] @ recommender.item_vectors.T
    popular = np.broadcast_to(recommender.popularity, scores.shape)
    return OfflineReport(
        k=k,
        cutoff=at.isoformat(),
        model=ranking_metrics(scores, relevant[new], excluded[new], k),
        popularity=ranking_metrics(popular, relevant[new], excluded[new], k),
        users_evaluated=int(new.sum()),
        users_skipped_not_in_train=buyers - len(rows),
        users_skipped_no_new_purchase=int(len(rows) - new.sum()),
        train_interactions=int(before.sum()),
        test_purchases=int(relevant.sum()),
        train_seconds=round(seconds, 3),
        test_purchases_unknown_items=int((known["item"] < 0).sum()),
    )


def _utc(moment: pd.Timestamp | str) -> pd.Timestamp:
    """A cutoff as an aware UTC Timestamp (a naive one is taken as UTC)."""
    at = pd.Timestamp(moment)
    return at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
