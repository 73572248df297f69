"""Profile's exported interactions and portraits as the frames the model core takes, and customer features."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from marksman.profile.v1 import profile_pb2

from services.recommend.catalogue import Item
from services.recommend.features import PRICE_BANDS, band_name
from services.recommend.store import CustomerFeatures

# profile's event types -> the model core's interaction kinds (searches carry no item).
KINDS = {
    profile_pb2.EVENT_TYPE_VIEW: "view",
    profile_pb2.EVENT_TYPE_ADD_TO_CART: "cart",
    profile_pb2.EVENT_TYPE_ORDER: "order",
    profile_pb2.EVENT_TYPE_REFUND: "refund",
}
INTERACTION_COLUMNS = ("customer_id", "sku", "kind", "quantity", "occurred_at", "amount_minor", "category",
                       "brand", "unit_price_minor")
USER_COLUMNS = ("customer_id", "region", "rfm_segment", "price_band")
# Text fields are cut to what the customer features table holds.
MAX_SEGMENT, MAX_REGION = 32, 128


def interactions_frame(pages: Iterable[Sequence[profile_pb2.Interaction]]) -> pd.DataFrame:
    """One row per exported interaction line of a kind the model uses; times in UTC."""
    columns: dict[str, list[object]] = {name: [] for name in INTERACTION_COLUMNS}
    # Seconds since the epoch, converted once for the whole column (per-row datetimes cost more).
    seconds: list[float] = []
    for page in pages:
        for i in page:
            kind = KINDS.get(i.type)
            if kind is None:
                continue
            columns["customer_id"].append(i.customer_id)
            columns["sku"].append(i.sku)
            columns["kind"].append(kind)
            columns["quantity"].append(i.quantity)
            columns["amount_minor"].append(i.amount_minor)
            columns["category"].append(i.category)
            columns["brand"].append(i.brand)
            columns["unit_price_minor"].append(i.unit_price_minor)
            seconds.append(i.occurred_at.seconds + i.occurred_at.nanos / 1e9)
    frame = pd.DataFrame({name: values for name, values in columns.items() if name != "occurred_at"})
    frame["occurred_at"] = pd.to_datetime(pd.Series(seconds, dtype="float64"), unit="s", utc=True)
    for name in ("quantity", "amount_minor", "unit_price_minor"):
        frame[name] = frame[name].astype("int64")
    return frame[list(INTERACTION_COLUMNS)]


def price_band_of(power: float) -> str:
    """A purchasing power (0 cheapest .. 1 dearest within the categories bought) as "p1".."p5"."""
    return band_name(min(PRICE_BANDS, int(max(0.0, power) * PRICE_BANDS) + 1))


def customer_features(portraits: Iterable[profile_pb2.Portrait]) -> list[CustomerFeatures]:
    """Segment, region and price band of each customer; no band without orders."""
    return [
        CustomerFeatures(
            customer_id=p.customer_id,
            rfm_segment=p.rfm_segment[:MAX_SEGMENT],
            region=p.region[:MAX_REGION],
            price_band=price_band_of(p.purchasing_power) if p.has_orders else "",
        )
        for p in portraits
    ]


def users_frame(features: Iterable[CustomerFeatures]) -> pd.DataFrame:
    """The model's user frame: customer_id plus one categorical column per feature."""
    rows = [(f.customer_id, f.region, f.rfm_segment, f.price_band) for f in features]
    return pd.DataFrame(rows, columns=list(USER_COLUMNS))


def items_frame(items: Iterable[Item]) -> pd.DataFrame:
    """The model's items frame (sku, category, brand, price_band, in_stock, tags)."""
    rows = [(i.sku, i.category, i.brand, i.price_band, i.in_stock, list(i.tags)) for i in items]
    return pd.DataFrame(rows, columns=["sku", "category", "brand", "price_band", "in_stock", "tags"])
