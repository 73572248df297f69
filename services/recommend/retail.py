"""The UCI Online Retail data as recommender frames: interactions, items (with features) and users."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from services.demo.categories import FEES
from services.demo.retail import list_prices, sku_categories
from services.recommend.features import price_bands

# A description word becomes a tag only if at least this many SKUs share it: rarer words describe one
# product and add nothing the identity feature does not already say.
MIN_TAG_SKUS = 3
_WORD = re.compile(r"[A-Z]{3,}")


def _product_skus(frame: pd.DataFrame) -> set[str]:
    """SKUs that are products, not postage, fees or manual adjustments (category FEES)."""
    return {sku for sku, category in sku_categories(frame).items() if category != FEES}


def interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Known customers' order and refund lines of products (services.demo.retail.load_frame rows)."""
    rows = frame[frame["CustomerID"].notna() & frame["StockCode"].isin(_product_skus(frame))]
    quantity = rows["Quantity"].abs().astype("int64")
    return pd.DataFrame({
        "customer_id": rows["CustomerID"].astype(str).to_numpy(),
        "sku": rows["StockCode"].astype(str).to_numpy(),
        "kind": np.where(rows["is_refund"].to_numpy(), "refund", "order"),
        "quantity": quantity.to_numpy(),
        "occurred_at": pd.to_datetime(rows["InvoiceDate"]).dt.tz_localize("UTC").to_numpy(),
        "amount_minor": (quantity * rows["price_minor"]).astype("int64").to_numpy(),
    }).assign(occurred_at=lambda f: pd.to_datetime(f["occurred_at"], utc=True))


def _description_tags(frame: pd.DataFrame, skus: list[str]) -> dict[str, tuple[str, ...]]:
    pairs = frame.groupby(["StockCode", "Description"]).size().reset_index(name="rows")
    pairs = pairs.sort_values(["StockCode", "rows", "Description"], ascending=[True, False, True])
    first = pairs.drop_duplicates("StockCode").set_index("StockCode")["Description"]
    words = {sku: tuple(dict.fromkeys(_WORD.findall(str(first.get(sku, "")).upper()))) for sku in skus}
    counts = pd.Series([w for ws in words.values() for w in ws]).value_counts()
    common = set(counts[counts >= MIN_TAG_SKUS].index)
    return {sku: tuple(w.lower() for w in ws if w in common) for sku, ws in words.items()}


def items(frame: pd.DataFrame, tags: bool = True) -> pd.DataFrame:
    """One row per product SKU: keyword category, price band within it (modal price), in stock, description tags."""
    skus = sorted(_product_skus(frame))
    categories = sku_categories(frame)
    prices = list_prices(frame)
    bands = price_bands({sku: prices[sku] for sku in skus}, categories)
    words = _description_tags(frame, skus) if tags else {}
    return pd.DataFrame({
        "sku": skus,
        "category": [categories[sku] for sku in skus],
        "brand": "",
        "price_band": [bands[sku] for sku in skus],
        "in_stock": True,
        "tags": [list(words.get(sku, ())) for sku in skus],
    })


def users(frame: pd.DataFrame, before: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Per customer with rows before `before`: region (most frequent country), nothing later leaks in."""
    known = frame[frame["CustomerID"].notna()]
    if before is not None:
        cut = pd.Timestamp(before)
        cut = cut.tz_convert("UTC").tz_localize(None) if cut.tzinfo is not None else cut
        known = known[known["InvoiceDate"] < cut]
    counts = known.groupby(["CustomerID", "Country"]).size().reset_index(name="rows")
    counts = counts.sort_values(["CustomerID", "rows", "Country"], ascending=[True, False, True])
    first = counts.drop_duplicates("CustomerID")
    return pd.DataFrame({"customer_id": first["CustomerID"].astype(str).to_numpy(),
                         "region": first["Country"].to_numpy()})
