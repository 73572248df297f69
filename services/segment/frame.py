"""The in-memory pandas frame of cached portraits that rules are evaluated over; never changed in place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from services.segment.traits import CATEGORY_SLOTS, ID_COLUMN, KEY_COLUMN, TRAITS, Kind

# The portrait columns the store keeps and the frame holds, by type.
NUMBER_COLUMNS: dict[str, str] = {
    "recency_days": "int32", "frequency": "int32", "monetary_minor": "int64",
    "average_order_value_minor": "int64", "r_score": "int8", "f_score": "int8", "m_score": "int8",
    "purchasing_power": "float64", "price_sensitivity": "float64", "brand_loyalty": "float64",
    "category_loyalty": "float64", "views": "int32", "carts": "int32", "searches": "int32", "refunds": "int32",
    "purchase_interval_days": "float64",
}
FLAG_COLUMNS: tuple[str, ...] = tuple(t.source for t in TRAITS.values() if t.kind is Kind.FLAG)
TEXT_COLUMNS: tuple[str, ...] = (*(t.source for t in TRAITS.values() if t.kind is Kind.TEXT), *CATEGORY_SLOTS)
COLUMNS: tuple[str, ...] = (KEY_COLUMN, ID_COLUMN, *NUMBER_COLUMNS, *FLAG_COLUMNS, *TEXT_COLUMNS)
# Closed sets get a fixed dtype, so frames built at different times concatenate without re-coding.
_FIXED = {t.source: pd.CategoricalDtype(["", *t.choices]) for t in TRAITS.values() if t.choices}


def _categorical(values: np.ndarray, dtype: pd.CategoricalDtype | None) -> pd.Categorical:
    """Texts to a categorical by hashing the objects once (pd.Categorical first converts every
    value to an Arrow string, which took most of the load time)."""
    codes, uniques = pd.factorize(values)
    if dtype is None:
        return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="str"))
    # Values outside a closed set (a newer profile's enum value) become missing, as astype does.
    fixed = dtype.categories.get_indexer(pd.Index(uniques, dtype="str"))
    return pd.Categorical.from_codes(np.where(codes >= 0, fixed[codes], -1), dtype=dtype)


@dataclass(frozen=True)
class PortraitFrame:
    """One row per cached portrait: `key`, `customer_id` and the COLUMNS; text columns are categorical."""

    data: pd.DataFrame

    @classmethod
    def empty(cls) -> PortraitFrame:
        return cls.from_records([])

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]]) -> PortraitFrame:
        return cls.from_columns(pd.DataFrame.from_records(list(records), columns=list(COLUMNS)))

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> PortraitFrame:
        """Typed columns from tuples in COLUMNS order (as the store reads them), without a pass of
        pandas' per-cell type inference."""
        count = len(rows)
        values = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
        columns: dict[str, Any] = {}
        for name, column in zip(COLUMNS, values, strict=True):
            if name == KEY_COLUMN:
                columns[name] = np.fromiter(column, dtype="int64", count=count)
            elif name == ID_COLUMN:
                columns[name] = pd.array(column, dtype="str")
            elif name in NUMBER_COLUMNS:
                columns[name] = np.fromiter(column, dtype=NUMBER_COLUMNS[name], count=count)
            elif name in FLAG_COLUMNS:
                columns[name] = np.fromiter(column, dtype=bool, count=count)
            else:
                columns[name] = _categorical(np.array(column, dtype=object), _FIXED.get(name))
        return cls(pd.DataFrame(columns))

    @classmethod
    def from_columns(cls, raw: pd.DataFrame) -> PortraitFrame:
        """Typed columns from raw ones (as the store reads them, or as sync builds them)."""
        columns: dict[str, Any] = {
            KEY_COLUMN: raw[KEY_COLUMN].to_numpy(dtype="int64"),
            ID_COLUMN: raw[ID_COLUMN].astype("str"),
        }
        for name, dtype in NUMBER_COLUMNS.items():
            columns[name] = raw[name].fillna(0).to_numpy(dtype=dtype)
        for name in FLAG_COLUMNS:
            columns[name] = raw[name].fillna(False).to_numpy(dtype=bool)
        for name in TEXT_COLUMNS:
            text = raw[name].astype("str").fillna("")
            columns[name] = text.astype(_FIXED.get(name, "category"))
        return cls(pd.DataFrame(columns))

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def keys(self) -> np.ndarray:
        return self.data[KEY_COLUMN].to_numpy()

    def customer_ids(self, positions: np.ndarray) -> list[str]:
        return [str(v) for v in self.data[ID_COLUMN].take(positions)]

    def without(self, keys: Iterable[int]) -> PortraitFrame:
        drop = np.fromiter(keys, dtype="int64")
        if drop.size == 0:
            return self
        return PortraitFrame(self.data.loc[~np.isin(self.keys, drop)].reset_index(drop=True))

    def upsert(self, changed: PortraitFrame) -> PortraitFrame:
        """Rows of `changed` replace rows with the same key and are appended otherwise."""
        if changed.size == 0:
            return self
        kept = self.without(changed.keys.tolist()).data
        columns: dict[str, Any] = {}
        for column in COLUMNS:
            a, b = kept[column], changed.data[column]
            if isinstance(a.dtype, pd.CategoricalDtype):
                columns[column] = union_categoricals([a, b], ignore_order=True)
            else:
                columns[column] = pd.concat([a, b], ignore_index=True)
        return PortraitFrame(pd.DataFrame(columns))
