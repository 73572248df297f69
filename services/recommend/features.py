"""Item and user features for the hybrid model: price bands and "column=value" feature names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

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
    """SKU -> "p1".."p5": the quintile of its unit price within its category (all SKUs if no categories)."""
    raise NotImplementedError


def feature_name(column: str, value: object) -> str:
    """The LightFM feature name of one value: "category=Home"."""
    return f"{column}={value}"


def item_feature_names(row: Mapping[str, Any]) -> list[str]:
    """The feature names of one item (category, brand, price band, each tag), empty values left out."""
    names = [feature_name(column, row[column]) for column in ITEM_FEATURE_COLUMNS if row.get(column)]
    tags: Iterable[str] = row.get("tags") or ()
    names.extend(feature_name("tag", tag) for tag in tags if tag)
    return names


def user_feature_names(row: Mapping[str, Any]) -> list[str]:
    """The feature names of one user: every column but customer_id, empty values left out."""
    return [feature_name(column, value) for column, value in row.items()
            if column != "customer_id" and value is not None and value != ""]


def empty_items() -> pd.DataFrame:
    """An items frame with the expected columns and no rows."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in ITEM_COLUMNS})
