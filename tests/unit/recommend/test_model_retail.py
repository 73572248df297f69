"""The Online Retail rows as recommender frames: products only, refunds, UTC times, bands, tags, users as of a date."""

from __future__ import annotations

import pandas as pd

from services.demo.retail import clean_frame
from services.recommend import retail


def _raw() -> pd.DataFrame:
    rows = [
        # InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
        ("1", "A1", "RED HEART LANTERN", 2, "2011-01-05 10:00:00", 1.00, 10.0, "France"),
        ("1", "POST", "POSTAGE", 1, "2011-01-05 10:00:00", 18.00, 10.0, "France"),
        ("2", "A2", "BLUE HEART LANTERN", 1, "2011-02-05 10:00:00", 3.00, 11.0, "Germany"),
        ("C3", "A1", "RED HEART LANTERN", -1, "2011-02-06 10:00:00", 1.00, 10.0, "France"),
        ("4", "B1", "HEART CUSHION", 5, "2011-03-01 09:00:00", 2.50, None, "United Kingdom"),
        ("5", "B2", "LANTERN SET", 1, "2011-04-01 09:00:00", 9.99, 10.0, "Spain"),
        ("6", "B3", "PAPER LANTERN", 1, "2011-04-01 09:00:00", 9.99, 10.0, "Spain"),
        ("7", "B4", "SPOT HEART", 1, "2011-04-01 09:00:00", 9.99, 10.0, "Spain"),
        ("8", "B4", "SPOT HEART", 2, "2011-04-02 09:00:00", 9.99, 10.0, "Spain"),
    ]
    columns = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    return pd.DataFrame(rows, columns=columns)


def test_interactions_are_known_customers_product_lines_with_refunds() -> None:
    frame = retail.interactions(clean_frame(_raw()))
    assert sorted(frame["sku"].unique()) == ["A1", "A2", "B2", "B3", "B4"]
    refund = frame[frame["kind"] == "refund"].iloc[0]
    assert (refund["customer_id"], refund["sku"], refund["quantity"], refund["amount_minor"]) == ("10", "A1", 1, 100)
    assert str(frame["occurred_at"].dt.tz) == "UTC"
    assert frame["occurred_at"].min() == pd.Timestamp("2011-01-05 10:00:00", tz="UTC")


def test_items_carry_category_band_and_shared_description_words() -> None:
    items = retail.items(clean_frame(_raw())).set_index("sku")
    assert "POST" not in items.index
    assert set(items.columns) == {"category", "brand", "price_band", "in_stock", "tags"}
    # "heart" and "lantern" are on at least three products; "red" and "blue" are not.
    assert items.loc["A1", "tags"] == ["heart", "lantern"]
    assert items["price_band"].str.fullmatch(r"p[1-5]").all()


def test_users_use_only_rows_before_the_date() -> None:
    frame = clean_frame(_raw())
    assert retail.users(frame).set_index("customer_id")["region"].to_dict() == {"10": "Spain", "11": "Germany"}
    early = retail.users(frame, pd.Timestamp("2011-02-01", tz="UTC"))
    assert early.to_dict("records") == [{"customer_id": "10", "region": "France"}]
