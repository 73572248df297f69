"""The trained artefact: id maps, precomputed float32 representations, popularity, bought items; saved safely."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from services.recommend.features import item_feature_names

ARRAYS_FILE = "arrays.npz"
INFO_FILE = "info.json"
FORMAT = 1

_ARRAY_FIELDS = (
    "customer_ids", "skus", "user_vectors", "item_vectors", "feature_names", "feature_vectors",
    "popularity", "segment_names", "segment_popularity", "bought_indptr", "bought_items",
    "item_categories", "item_bands", "in_stock", "item_brands",
)
# Artefacts saved before brands were kept load with every brand unknown ("").
_OPTIONAL_ARRAYS = frozenset({"item_brands"})

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


@dataclass(eq=False)
class Recommender:
    """Everything serving needs, with biases folded in: score(user u, item i) = user_vectors[u] @ item_vectors[i].

    user_vectors rows are [embedding, bias, 1] and item_vectors rows [embedding, 1, bias], so one matrix
    product gives LightFM's prediction. feature_vectors holds each item feature in the item layout, so
    an item unknown to the model is represented by the mean of its features' rows (represent_item).
    """

    customer_ids: npt.NDArray[np.str_]
    skus: npt.NDArray[np.str_]
    user_vectors: Floats
    item_vectors: Floats
    feature_names: npt.NDArray[np.str_]
    feature_vectors: Floats
    popularity: Floats
    segment_names: npt.NDArray[np.str_]
    segment_popularity: Floats
    bought_indptr: Ints
    bought_items: Ints
    item_categories: npt.NDArray[np.str_]
    item_bands: npt.NDArray[np.int8]
    in_stock: npt.NDArray[np.bool_]
    # One brand per item ("" unknown); empty: every brand unknown.
    item_brands: npt.NDArray[np.str_] = field(default_factory=lambda: np.asarray([], dtype=str))
    info: dict[str, Any] = field(default_factory=dict)

    user_index: dict[str, int] = field(init=False, repr=False)
    item_index: dict[str, int] = field(init=False, repr=False)
    feature_index: dict[str, int] = field(init=False, repr=False)
    segment_index: dict[str, int] = field(init=False, repr=False)
    item_unit: Floats = field(init=False, repr=False)
    category_index: dict[str, int] = field(init=False, repr=False)
    category_codes: npt.NDArray[np.intp] = field(init=False, repr=False)
    brand_index: dict[str, int] = field(init=False, repr=False)
    brand_codes: npt.NDArray[np.intp] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.user_index = {str(c): i for i, c in enumerate(self.customer_ids.tolist())}
        self.item_index = {str(s): i for i, s in enumerate(self.skus.tolist())}
        self.feature_index = {str(f): i for i, f in enumerate(self.feature_names.tolist())}
        self.segment_index = {str(s): i for i, s in enumerate(self.segment_names.tolist())}
        self.item_unit = unit_rows(self.item_vectors[:, :-2])
        names, codes = np.unique(self.item_categories, return_inverse=True)
        self.category_index = {str(name): i for i, name in enumerate(names.tolist())}
        self.category_codes = codes.astype(np.intp)
        if len(self.item_brands) != len(self.skus):
            self.item_brands = np.full(len(self.skus), "", dtype=str)
        names, codes = np.unique(self.item_brands, return_inverse=True)
        self.brand_index = {str(name): i for i, name in enumerate(names.tolist())}
        self.brand_codes = codes.astype(np.intp)

    @property
    def components(self) -> int:
        """The embedding size."""
        return int(self.item_vectors.shape[1]) - 2

    def bought(self, user_row: int) -> Ints:
        """The item rows the user has ordered (before training)."""
        return self.bought_items[self.bought_indptr[user_row]:self.bought_indptr[user_row + 1]]

    def represent_item(self, features: Mapping[str, Any]) -> Floats | None:
        """An item-layout vector from item features (category, brand, price_band, tags); None if none is known."""
        rows = [self.feature_index[name] for name in item_feature_names(features) if name in self.feature_index]
        if not rows:
            return None
        return self.feature_vectors[rows].mean(axis=0).astype(np.float32)

    def with_stock(self, in_stock: Mapping[str, bool]) -> Recommender:
        """A copy sharing every array but the in-stock flags, updated for the skus given (others unknown: ignored)."""
        flags = self.in_stock.copy()
        for sku, value in in_stock.items():
            row = self.item_index.get(sku)
            if row is not None:
                flags[row] = bool(value)
        return replace(self, in_stock=flags)

    def save(self, directory: str | Path) -> None:
        """Writes arrays.npz (no pickled objects) and info.json into `directory`."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        with (path / ARRAYS_FILE).open("wb") as handle:
            np.savez(handle, **arrays)
        info = {"format": FORMAT, **self.info}
        (path / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True, default=str))

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Reads what save wrote; allow_pickle=False, so a tampered file cannot run code."""
        path = Path(directory)
        info = json.loads((path / INFO_FILE).read_text())
        if info.pop("format", None) != FORMAT:
            raise ValueError(f"{path}: not a recommender saved in format {FORMAT}")
        with np.load(path / ARRAYS_FILE, allow_pickle=False) as data:
            missing = [name for name in _ARRAY_FIELDS if name not in data.files and name not in _OPTIONAL_ARRAYS]
            if missing:
                raise ValueError(f"{path / ARRAYS_FILE}: missing arrays {missing}")
            arrays = {name: data[name] for name in _ARRAY_FIELDS if name in data.files}
        return cls(**arrays, info=info)


def unit_rows(matrix: Floats) -> Floats:
    """Rows scaled to length 1 (zero rows stay zero), for cosine similarity."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)

