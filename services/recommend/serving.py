"""Recommend and SimilarItems: the serving model held in memory, customer features, and popular items before any model."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.ids import is_valid_id
from services.recommend.catalogue import MAX_TEXT, sku_problem
from services.recommend.forget import without_customers
from services.recommend.popular import SEGMENT_COLUMN
from services.recommend.recommender import Recommender
from services.recommend.scoring import Filters, Ranked, UnknownItem, similar_items, top_k
from services.recommend.store import CustomerFeatures

MAX_K = 100
MAX_CATEGORIES = 100
MAX_EXCLUDED = 1000
SEGMENT = re.compile(r"^[a-z0-9_]{1,32}$")

# How long "no orders to rank popular items by" is believed before the interactions are read again.
NOTHING_POPULAR_TTL_S = 5.0


@dataclass(frozen=True, slots=True)
class Wanted:
    """The filters a caller asks for; the customer's own price band is looked up here."""

    categories_in: frozenset[str] = frozenset()
    categories_not_in: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    only_in_stock: bool = False
    exclude_bought: bool = False
    respect_purchasing_power: bool = False
    brands_in: frozenset[str] = frozenset()
    brands_not_in: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Answer:
    ranked: Ranked
    # 0: popular items computed before any model was trained.
    version: int


@dataclass(frozen=True, slots=True)
class Loaded:
    version: int
    recommender: Recommender
    precision: float


def check_k(k: int) -> int:
    if not 1 <= k <= MAX_K:
        raise InvalidArgument(f"k must be between 1 and {MAX_K}, not {k}")
    return k


def check_customer_id(customer_id: str) -> str:
    if not is_valid_id(customer_id):
        raise InvalidArgument("customer_id must be 1-128 characters of letters, digits and ._:@+=-")
    return customer_id


def check_sku(sku: str, field: str = "sku") -> str:
    problem = sku_problem(sku)
    if problem:
        raise InvalidArgument(problem.replace("sku", field, 1))
    return sku


def check_wanted(wanted: Wanted) -> Wanted:
    for name, values, kind in (("categories_in", wanted.categories_in, "categories"),
                               ("categories_not_in", wanted.categories_not_in, "categories"),
                               ("brands_in", wanted.brands_in, "brands"),
                               ("brands_not_in", wanted.brands_not_in, "brands")):
        if len(values) > MAX_CATEGORIES:
            raise InvalidArgument(f"filters.{name} holds at most {MAX_CATEGORIES} {kind}")
        if any(not v or len(v) > MAX_TEXT for v in values):
            raise InvalidArgument(f"filters.{name}: each of the {kind} must be 1-{MAX_TEXT} characters")
    if len(wanted.exclude_skus) > MAX_EXCLUDED:
        raise InvalidArgument(f"filters.exclude_skus holds at most {MAX_EXCLUDED} skus")
    for sku in wanted.exclude_skus:
        check_sku(sku, "each of filters.exclude_skus")
    return wanted


def check_segment(segment: str) -> str:
    if segment and not SEGMENT.fullmatch(segment):
        raise InvalidArgument("segment must be an RFM segment name such as 'champions' (a-z, 0-9, _)")
    return segment


class Serving:
    """Holds the serving version in memory (swapped whole, so a call sees one version from start to end)."""

    def __init__(self, popular: Callable[[], Recommender | None] | None = None, popular_ttl_s: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._loaded: Loaded | None = None
        self._features: dict[str, CustomerFeatures] = {}
        # Items hidden since the serving version was trained (it was trained without those hidden before).
        self._hidden: frozenset[str] = frozenset()
        self._popular_source = popular
        self._popular_ttl_s = popular_ttl_s
        self._popular: tuple[float, Recommender | None] | None = None
        self._monotonic = monotonic
        # Changes of the state queue here; readers take whatever _loaded refers to, without a lock.
        self._lock = threading.Lock()
        self._popular_lock = threading.Lock()

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    def switch(self, version: int, recommender: Recommender, precision: float,
               features: Mapping[str, CustomerFeatures]) -> None:
        """Serves another version, with the customer features read for it."""
        with self._lock:
            self._loaded = Loaded(version, recommender, precision)
            self._features = dict(features)
            self._hidden = frozenset()
            self._popular = None

    def set_features(self, features: Mapping[str, CustomerFeatures]) -> None:
        with self._lock:
            self._features = dict(features)

    def _ranker(self) -> tuple[Recommender, int]:
        loaded = self._loaded
        if loaded is not None:
            return loaded.recommender, loaded.version
        popular = self._popularity()
        if popular is None:
            raise FailedPrecondition("no model is trained yet and there are no orders to rank popular items by; "
                                     "load events and train a model (TrainModel)")
        return popular, 0

    def _popularity(self) -> Recommender | None:
        """Popular items from the interactions, computed at most once per TTL (and never beside a model)."""
        if self._popular_source is None:
            return None
        with self._popular_lock:
            now = self._monotonic()
            # "No orders yet" is kept a few seconds only: asked before the first events arrive (the
            # gateway's popular cache asks at its start), it would hide them for the whole TTL.
            cached = self._popular
            ttl = self._popular_ttl_s if cached is None or cached[1] is not None else min(self._popular_ttl_s,
                                                                                          NOTHING_POPULAR_TTL_S)
            if cached is None or now - cached[0] > ttl:
                cached = self._popular = (now, self._popular_source())
            return cached[1]

    def recommend(self, customer_id: str, k: int, wanted: Wanted, segment: str = "") -> Answer:
        """The customer's top k; popular items of their (or the given) segment, else overall, when unknown."""
        recommender, version = self._ranker()
        known = self._features.get(customer_id)
        band = known.price_band if known is not None and wanted.respect_purchasing_power else ""
        segment = segment or (known.rfm_segment if known is not None else "")
        filters = Filters(exclude_bought=wanted.exclude_bought, only_in_stock=wanted.only_in_stock,
                          categories_in=wanted.categories_in, categories_not_in=wanted.categories_not_in,
                          max_price_band=band, exclude_skus=wanted.exclude_skus | self._hidden,
                          brands_in=wanted.brands_in, brands_not_in=wanted.brands_not_in)
        segment_feature = f"{SEGMENT_COLUMN}={segment}" if segment else None
        return Answer(top_k(recommender, customer_id, k, filters, segment_feature), version)

    def similar(self, sku: str, k: int, wanted: Wanted,
                describe: Callable[[str], Mapping[str, Any] | None]) -> Answer:
        """The k items nearest to `sku`; an item the model has not seen is placed by its catalogue features."""
        loaded = self._loaded
        if loaded is None:
            raise FailedPrecondition("similar items need a trained model, and none is serving yet; train one "
                                     "(TrainModel)")
        recommender, version = loaded.recommender, loaded.version
        filters = Filters(exclude_bought=False, only_in_stock=wanted.only_in_stock,
                          categories_in=wanted.categories_in, categories_not_in=wanted.categories_not_in,
                          exclude_skus=wanted.exclude_skus | self._hidden,
                          brands_in=wanted.brands_in, brands_not_in=wanted.brands_not_in)
        features = None if sku in recommender.item_index else describe(sku)
        try:
            return Answer(similar_items(recommender, sku, k, filters, features), version)
        except UnknownItem:
            if features is None:
                raise NotFound(f"there is no item {sku!r} in the model or the catalogue") from None
            raise FailedPrecondition(f"item {sku!r} is not in the model yet and none of its catalogue features "
                                     "(category, brand, price band, tags) is known to it; train again") from None

    def update_items(self, in_stock: Mapping[str, bool], hidden: Mapping[str, bool]) -> None:
        """Applies stock changes and hidden flags to the serving version at once (the next training reads
        them from the store)."""
        with self._lock:
            loaded = self._loaded
            if loaded is not None and in_stock:
                self._loaded = replace(loaded, recommender=loaded.recommender.with_stock(in_stock))
            if hidden:
                now_hidden = {sku for sku, flag in hidden.items() if flag}
                shown = {sku for sku, flag in hidden.items() if not flag}
                self._hidden = frozenset((self._hidden | now_hidden) - shown)

    def known_customers(self) -> set[str]:
        """Every customer held in memory: with features, or with a row in the serving model."""
        loaded = self._loaded
        known = set(self._features)
        if loaded is not None:
            known.update(loaded.recommender.customer_ids.tolist())
        return known

    def forget(self, customer_id: str) -> int:
        """Drops the customer's model row, bought list and features from memory; returns what was dropped."""
        with self._lock:
            dropped = 1 if self._features.pop(customer_id, None) is not None else 0
            loaded = self._loaded
            if loaded is not None:
                trimmed, count = without_customers(loaded.recommender, [customer_id])
                if count:
                    self._loaded = replace(loaded, recommender=trimmed)
                    dropped += count
        return dropped
