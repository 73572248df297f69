"""Item and user features for the hybrid model: price bands and "column=value" feature names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

PRICE_BANDS = 5
NO_BAND = 0
ITEM_COLUMNS = ("sku", "category", "brand", "price_band", "in_stock", "tags")
# The item columns that become LightFM features; tags become one feature per tag.
ITEM_FEATURE_COLUMNS = ("category", "brand", "price_band")
IDENTITY = "sku"


def band_name(band: int) -> str:
    """1 -> "p1"; 0 (unknown) -> ""."""
    return f"p{band}" if band > 0 else ""


def band_number(name: str | None) -> int:
    """ "p3" -> 3; empty or malformed -> 0 (unknown). """
    if not name or not name.startswith("p") or not name[1:].isdigit():
        return NO_BAND
    return int(name[1:])


def price_bands(prices_by_sku: Mapping[str, int], categories: Mapping[str, str] | None = None) -> dict[str, str]:
    """SKU -> "p1".."p5": the quintile of its unit price within its category (all SKUs if no categories).

    The mid-rank (rank - 0.5) / n places a category's only item in p3 and splits ties evenly.
    """
    if not prices_by_sku:
        return {}
    skus = list(prices_by_sku)
    frame = pd.DataFrame({
        "price": [prices_by_sku[sku] for sku in skus],
        "category": [(categories or {}).get(sku, "") for sku in skus],
    }, index=skus)
    grouped = frame.groupby("category")["price"]
    position = (grouped.rank(method="average") - 0.5) / grouped.transform("size")
    bands = np.clip(np.floor(position.to_numpy() * PRICE_BANDS).astype(int) + 1, 1, PRICE_BANDS)
    return {sku: band_name(int(band)) for sku, band in zip(skus, bands.tolist(), strict=True)}


def feature_name(column: str, value: object) -> str:
    """The LightFM feature name of one value: "category=Home"."""
    return f"{column}={value}"


def item_feature_names(row: Mapping[Any, Any]) -> list[str]:
    """The feature names of one item (category, brand, price band, each tag), empty values left out."""
    names = [feature_name(column, row[column]) for column in ITEM_FEATURE_COLUMNS if row.get(column)]
    tags: Iterable[str] = row.get("tags") or ()
    names.extend(feature_name("tag", tag) for tag in tags if tag)
    return names


def user_feature_names(row: Mapping[Any, Any]) -> list[str]:
    """The feature names of one user: every column but customer_id, empty values left out."""
    return [feature_name(column, value) for column, value in row.items()
            if column != "customer_id" and value is not None and value != ""]


def empty_items() -> pd.DataFrame:
    """An items frame with the expected columns and no rows."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in ITEM_COLUMNS})


def feature_matrix(
    features: list[list[str]], identities: list[str], with_identity: bool, feature_weight: float = 1.0
) -> tuple[sp.csr_matrix, list[str]]:
    """Rows x feature names, each row summing to 1 (as LightFM's Dataset normalises), plus the names.

    identities: each row's own feature name ("sku=A1"), used first when with_identity (LightFM's identity
    features) and always for a row with no other feature, so every row has a representation. With an
    identity, the other features share `feature_weight` against the identity's 1 before normalising
    (LightFM's Dataset gives every feature 1, so five tags would leave the identity a sixth).
    """
    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    for row, names in enumerate(features):
        own = list(dict.fromkeys(names))
        identity = with_identity or not own
        share = feature_weight / len(own) if identity and own else 1.0
        if identity:
            rows.append(row)
            cols.append(index.setdefault(identities[row], len(index)))
            values.append(1.0)
        for name in own:
            rows.append(row)
            cols.append(index.setdefault(name, len(index)))
            values.append(share)
    matrix = sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), (rows, cols)), shape=(len(features), len(index))
    )
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    matrix = sp.csr_matrix(sp.diags(1.0 / np.where(sums > 0, sums, 1.0)).dot(matrix), dtype=np.float32)
    return matrix, list(index)


def descriptive_matrix(features: list[list[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """Rows x descriptive feature names, each row the uniform mean of its features (all zero if it has none)."""
    matrix, names = feature_matrix(features, [f"{IDENTITY}#{row}" for row in range(len(features))], False)
    keep = [i for i, name in enumerate(names) if not name.startswith(f"{IDENTITY}#")]
    return sp.csr_matrix(matrix[:, keep]), [names[i] for i in keep]
