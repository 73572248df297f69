"""Catalogue items: what a valid item is, and the items that events imply for SKUs the catalogue lacks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

SOURCE_CATALOGUE = "catalogue"
SOURCE_EVENTS = "events"
# As profile accepts event lines (services/profile/validation.py), so every SKU an event names fits.
MAX_SKU = 64
MAX_TEXT = 128
MAX_TAGS = 32
MAX_TAG = 64
MAX_MINOR = 10**13
CURRENCY = re.compile(r"^[A-Z]{3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    category: str = ""
    brand: str = ""
    price_minor: int = 0
    currency: str = ""
    in_stock: bool = True
    tags: tuple[str, ...] = ()
    price_band: str = ""
    source: str = SOURCE_CATALOGUE
    # Set by the store when read.
    updated_at: datetime | None = None
    # Not merchandise (postage, fees): never recommended, and its interactions are not trained on.
    hidden: bool = False


def sku_problem(sku: str) -> str | None:
    """Why a SKU is unusable, or None."""
    if not sku or len(sku) > MAX_SKU or not sku.strip():
        return f"sku must be 1-{MAX_SKU} characters"
    if _CONTROL.search(sku):
        return "sku must not contain control characters"
    return None


def item_problem(item: Item) -> str | None:
    """Why the platform's item cannot be stored, in words it can act on; None when it is fine."""
    problem = sku_problem(item.sku)
    if problem:
        return problem
    for name, value in (("category", item.category), ("brand", item.brand)):
        if len(value) > MAX_TEXT or _CONTROL.search(value):
            return f"{name} must be at most {MAX_TEXT} characters without control characters"
    if not 0 <= item.price_minor <= MAX_MINOR:
        return f"price amount_minor must be between 0 and {MAX_MINOR}"
    if item.price_minor and not CURRENCY.match(item.currency):
        return "a price needs an ISO 4217 currency code such as GBP"
    if item.currency and not CURRENCY.match(item.currency):
        return "currency must be an ISO 4217 code such as GBP"
    if len(item.tags) > MAX_TAGS:
        return f"at most {MAX_TAGS} tags per item"
    for tag in item.tags:
        if not tag.strip() or len(tag) > MAX_TAG or _CONTROL.search(tag):
            return f"each tag must be 1-{MAX_TAG} characters without control characters"
    return None


def normalized(item: Item) -> Item:
    """The item as stored: tags once each, in the order given; the source set to the catalogue."""
    tags = tuple(dict.fromkeys(item.tags))
    return Item(item.sku, item.category, item.brand, item.price_minor, item.currency, item.in_stock, tags,
                item.price_band, SOURCE_CATALOGUE, hidden=item.hidden)


def items_from_interactions(frame: pd.DataFrame, currency: str) -> list[Item]:
    """One item per SKU seen in interactions (columns sku, category, brand, unit_price_minor, occurred_at).

    Category and brand are the latest non-empty values; the price is the most frequent positive unit
    price (the highest among equally frequent ones), so one discounted sale does not set it. SKUs that
    profile accepted but this catalogue cannot hold are left out.
    """
    if frame.empty:
        return []
    ordered = frame.sort_values("occurred_at", kind="stable")
    latest = {
        column: ordered.loc[ordered[column].astype(bool), ["sku", column]].groupby("sku")[column].last()
        for column in ("category", "brand")
    }
    priced = ordered.loc[ordered["unit_price_minor"] > 0, ["sku", "unit_price_minor"]]
    counts = priced.groupby(["sku", "unit_price_minor"]).size().rename("n").reset_index()
    modal = counts.sort_values(["sku", "n", "unit_price_minor"]).groupby("sku")["unit_price_minor"].last()
    items = []
    for sku in pd.unique(ordered["sku"]):
        if sku_problem(sku):
            continue
        price = int(modal.get(sku, 0))
        items.append(Item(
            sku=sku,
            category=str(latest["category"].get(sku, ""))[:MAX_TEXT],
            brand=str(latest["brand"].get(sku, ""))[:MAX_TEXT],
            price_minor=min(price, MAX_MINOR),
            currency=currency if price else "",
            source=SOURCE_EVENTS,
        ))
    return items
