"""The retail loader: cleaning, money, events, customers and totals, on a hand-made frame and on the real file."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from services.demo import retail
from services.demo.categories import CATEGORIES, FEES, OTHER, category_for
from services.gateway.batch import EVENT
from services.gateway.schemas import MAX_LINES_PER_EVENT, CustomerIn

DATA = Path(__file__).resolve().parents[3] / "data" / "online-retail" / "online_retail.parquet"
SHA256 = "0a3bc1acf50608cb76604364a49626e1a9b9b8bb7f7bdb95b05ce72427b2187f"
COLUMNS = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]
NAN = float("nan")


def raw_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


# fmt: off
SMALL = [
    # An order of 17850 with the same SKU on two rows (kept as two lines) and an exact duplicate row.
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, "2010-12-01 08:26:00", 2.55, 17850.0, "United Kingdom"),
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, "2010-12-01 08:26:00", 2.55, 17850.0, "United Kingdom"),
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 2, "2010-12-01 08:26:00", 2.95, 17850.0, "United Kingdom"),
    ("536365", " 22633 ", "HAND WARMER UNION JACK", 6, "2010-12-01 08:27:00", 1.005, 17850.0, "United Kingdom"),
    ("536365", "POST", "POSTAGE", 1, "2010-12-01 08:26:00", 18.0, 17850.0, "United Kingdom"),
    # A later order of the same customer, from France, with a lower-case stock code.
    ("536400", "85123a", "CREAM HANGING HEART T-LIGHT HOLDER", 3, "2010-12-03 10:00:00", 0.29, 17850.0, "France"),
    # A cancellation of 17850: a refund without an order id.
    ("C536401", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", -2, "2010-12-04 09:00:00", 2.55, 17850.0,
     "United Kingdom"),
    # An anonymous order (no CustomerID), sold at a higher price: the SKU's list price.
    ("536402", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 1, "2010-12-02 12:00:00", 5.79, NAN, "United Kingdom"),
    # An anonymous cancellation.
    ("C536403", "22633", "HAND WARMER UNION JACK", -1, "2010-12-02 13:00:00", 1.85, NAN, "United Kingdom"),
    # Dropped: a free sample, a stock adjustment, bad-debt adjustments.
    ("536404", "21777", "RECIPE BOX", 4, "2010-12-02 14:00:00", 0.0, 12583.0, "France"),
    ("536405", "21777", "damaged", -4, "2010-12-02 14:00:00", 1.0, NAN, "United Kingdom"),
    ("A563185", "B", "Adjust bad debt", 1, "2011-08-12 14:50:00", 11062.06, NAN, "United Kingdom"),
    ("A563186", "B", "Adjust bad debt", 1, "2011-08-12 14:51:00", -11062.06, NAN, "United Kingdom"),
    # Another customer, signing up earlier, from Germany.
    ("536366", "22728", "ALARM CLOCK BAKELIKE PINK", 24, "2010-12-01 08:00:00", 3.75, 12662.0, "Germany"),
]
# fmt: on


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return retail.clean_frame(raw_frame(SMALL))


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["event_id"]: event for event in events}


# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "minor"),
    [
        (0.29, 29),
        (1.005, 101),
        (2.675, 268),
        (0.125, 13),
        (0.001, 0),
        (38970.0, 3897000),
        (1.1, 110),
        ("4.95", 495),
    ],
)
def test_to_minor_rounds_the_decimal_text_half_up(amount: float | str, minor: int) -> None:
    assert retail.to_minor(amount) == minor


def test_binary_float_rounding_would_be_wrong() -> None:
    # Why to_minor goes through Decimal: the float 1.005 is 1.00499999..., so round() loses a penny.
    assert round(1.005 * 100) == 100
    assert retail.to_minor(1.005) == 101


# --- cleaning --------------------------------------------------------------------------------


def test_clean_frame_drops_duplicates_free_rows_adjustments(small: pd.DataFrame) -> None:
    assert len(small) == len(SMALL) - 5
    assert set(small["InvoiceNo"]) == {"536365", "536366", "536400", "C536401", "536402", "C536403"}
    assert not small["InvoiceNo"].str.startswith("A").any()
    assert (small["UnitPrice"] > 0).all()
    assert ((small["Quantity"] < 0) == small["is_refund"]).all()


def test_clean_frame_normalises_types(small: pd.DataFrame) -> None:
    assert set(small["StockCode"]) == {"85123A", "22633", "POST", "22728"}
    ids = small["CustomerID"].tolist()
    assert "17850" in ids and "12662" in ids
    assert all(value is None or (isinstance(value, str) and "." not in value) for value in ids)
    assert str(small["InvoiceDate"].dtype) == "datetime64[ns]"
    assert small["price_minor"].dtype == "int64"
    assert small.loc[small["UnitPrice"] == 1.005, "price_minor"].tolist() == [101]


# --- events ----------------------------------------------------------------------------------


def test_order_event_shape(small: pd.DataFrame) -> None:
    events = by_id(retail.to_events(small))
    order = events["order-536365"]
    assert order["type"] == "order"
    assert order["customer_id"] == "17850"
    assert "anonymous_id" not in order
    assert order["order_id"] == "536365"
    assert order["currency"] == "GBP"
    # The invoice's earliest row time, as UTC with Z.
    assert order["occurred_at"] == "2010-12-01T08:26:00Z"
    assert order["sales_channel"] in retail.SALES_CHANNELS
    assert order["payment_channel"] in retail.PAYMENT_CHANNELS
    # Two rows of 85123A at different prices stay two lines (the exact duplicate row is gone).
    assert [(line["sku"], line["quantity"], line["unit_price_minor"]) for line in order["lines"]] == [
        ("85123A", 6, 255),
        ("85123A", 2, 295),
        ("22633", 6, 101),
        ("POST", 1, 1800),
    ]
    assert all(line["discount_minor"] == 0 and line["brand"] == "" for line in order["lines"])
    assert order["lines"][3]["category"] == FEES


def test_list_price_is_the_most_common_unit_price_of_the_sku(small: pd.DataFrame) -> None:
    lines = [line for event in retail.to_events(small) for line in event["lines"]]
    listed = {line["sku"]: line["list_price_minor"] for line in lines}
    # 85123A sold at 2.55 twice (after the duplicate row collapses), 2.95, 0.29 and anonymously 5.79;
    # 22633 once at 1.005 and once, refunded, at 1.85: a tie goes to the higher price.
    assert listed == {"85123A": 255, "22633": 185, "POST": 1800, "22728": 375}
    assert retail.list_prices(small)["85123A"] == 255


def test_refund_mapping(small: pd.DataFrame) -> None:
    refund = by_id(retail.to_events(small))["refund-C536401"]
    assert refund["type"] == "refund"
    assert refund["customer_id"] == "17850"
    assert "order_id" not in refund
    assert "sales_channel" not in refund and "payment_channel" not in refund
    assert refund["currency"] == "GBP"
    assert [(line["sku"], line["quantity"], line["unit_price_minor"]) for line in refund["lines"]] == [
        ("85123A", 2, 255)
    ]


def test_rows_without_customer_become_anonymous_events(small: pd.DataFrame) -> None:
    events = by_id(retail.to_events(small))
    order, refund = events["order-536402"], events["refund-C536403"]
    assert order["anonymous_id"] == "anon-536402" and "customer_id" not in order
    assert refund["anonymous_id"] == "anon-C536403" and "customer_id" not in refund
    assert order["sales_channel"] in retail.SALES_CHANNELS


def test_events_are_sorted_and_one_per_invoice(small: pd.DataFrame) -> None:
    events = retail.to_events(small)
    assert [event["event_id"] for event in events] == [
        "order-536366",
        "order-536365",
        "order-536402",
        "refund-C536403",
        "order-536400",
        "refund-C536401",
    ]
    times = [event["occurred_at"] for event in events]
    assert times == sorted(times)


def test_every_small_event_and_customer_validates(small: pd.DataFrame) -> None:
    for event in retail.to_events(small):
        EVENT.validate_python(event)
    for customer in retail.to_customers(small):
        CustomerIn.model_validate(customer)


def test_every_real_invoice_fits_one_event(real: pd.DataFrame) -> None:
    # Events with the same order id count as one order, so an invoice must never be split.
    assert int(real.groupby("InvoiceNo").size().max()) <= MAX_LINES_PER_EVENT


def test_empty_frame_gives_no_events(small: pd.DataFrame) -> None:
    assert retail.to_events(small.iloc[0:0]) == []


# --- customers -------------------------------------------------------------------------------


def test_customers(small: pd.DataFrame) -> None:
    customers = retail.to_customers(small)
    assert [customer["customer_id"] for customer in customers] == ["12662", "17850"]
    german, brit = customers
    assert german["region"] == "Germany" and german["time_zone"] == "Europe/Berlin"
    # 17850 has rows from the UK and France: the most frequent country wins.
    assert brit["region"] == "United Kingdom" and brit["time_zone"] == "Europe/London"
    assert brit["signup_at"] == "2010-12-01T08:26:00Z"
    assert brit["name"] == "Customer 17850"
    assert brit["email"] == "c17850@example.invalid"
    assert brit["phone"].startswith("+44 7700 900") and len(brit["phone"]) == len("+44 7700 900123")
    assert [consent["channel"] for consent in brit["consents"]] == ["email", "sms", "push"]
    assert all(consent["changed_at"] == brit["signup_at"] for consent in brit["consents"])
    push = next(consent["granted"] for consent in brit["consents"] if consent["channel"] == "push")
    assert (brit["push_token"] != "") == push


def test_region_tie_goes_to_the_first_country_alphabetically() -> None:
    rows = [
        ("550000", "22728", "ALARM CLOCK", 1, "2011-04-01 10:00:00", 3.75, 12345.0, "Spain"),
        ("550001", "22728", "ALARM CLOCK", 1, "2011-04-02 10:00:00", 3.75, 12345.0, "Belgium"),
    ]
    (customer,) = retail.to_customers(retail.clean_frame(raw_frame(rows)))
    assert customer["region"] == "Belgium"
    assert customer["time_zone"] == "Europe/Brussels"


def test_seeded_generator_is_stable(small: pd.DataFrame) -> None:
    assert retail.to_customers(small) == retail.to_customers(small)
    assert retail.to_events(small) == retail.to_events(small)
    assert retail.synthetic_profile("17850", 7) == retail.synthetic_profile("17850", 7)
    assert retail.order_channels("17850", "536365", 7) == retail.order_channels("17850", "536365", 7)
    # A fixed value guards against an accidental change of the generator (it would reshuffle every demo).
    assert retail.synthetic_profile("17850", 7).phone == "+44 7700 900947"
    others = [retail.synthetic_profile(str(n), 8) for n in range(12000, 12050)]
    assert others != [retail.synthetic_profile(str(n), 7) for n in range(12000, 12050)]


def test_every_country_of_the_data_gets_a_real_zone(real: pd.DataFrame) -> None:
    zones = {c["region"]: c["time_zone"] for c in retail.to_customers(real)}
    assert len(zones) >= 30
    for zone in zones.values():
        ZoneInfo(zone)
    assert zones["United Kingdom"] == "Europe/London" and zones["EIRE"] == "Europe/Dublin"
    assert zones["USA"] == "America/New_York" and zones["Australia"] == "Australia/Sydney"


def test_clock_and_hand_check(small: pd.DataFrame) -> None:
    assert retail.last_event_day(small) == date(2010, 12, 4)
    assert retail.demo_as_of(small) == "2010-12-05T00:00:00Z"
    check = retail.hand_check(small, "17850")
    # Orders: 6x255 + 2x295 + 6x101 + 1800 + 3x29 = 4613; refund 2x255 = 510.
    assert check == {
        "customer_id": "17850",
        "currency": "GBP",
        "frequency": 2,
        "refunds": 1,
        "monetary_minor": 4613 - 510,
        "first_order_at": "2010-12-01T08:26:00Z",
        "last_order_at": "2010-12-03T10:00:00Z",
    }
    assert retail.hand_check(small, "99999")["frequency"] == 0


def test_expected_totals_small(small: pd.DataFrame) -> None:
    totals = retail.expected_totals(small)
    assert totals == {
        "currency": "GBP",
        "customers": 2,
        "customers_with_orders": 2,
        "events": 6,
        "orders": 3,
        "refunds": 1,
        "anonymous_orders": 1,
        "anonymous_refunds": 1,
        "gross_revenue_minor": 4613 + 24 * 375,
        "refunded_minor": 510,
        "net_revenue_minor": 4613 + 24 * 375 - 510,
        "anonymous_net_revenue_minor": 579 - 185,
    }


# --- categories ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "stock_code", "category"),
    [
        ("WHITE HANGING HEART T-LIGHT HOLDER", "85123A", "Candles & Lights"),
        ("PAPER CHAIN KIT 50'S CHRISTMAS ", "22086", "Christmas"),
        ("JUMBO BAG RED RETROSPOT", "85099B", "Bags"),
        ("LUNCH BAG RED RETROSPOT", "20725", "Bags"),
        ("LUNCH BOX WITH CUTLERY RETROSPOT ", "22630", "Kitchen"),
        ("PACK OF 72 RETROSPOT CAKE CASES", "21212", "Kitchen"),
        ("SET OF 3 CAKE TINS PANTRY DESIGN ", "22720", "Kitchen"),
        ("DINOSAUR PARTY BAG + STICKER SET", "84997D", "Party"),
        ("EMPIRE BIRTHDAY CARD", "22024", "Cards & Wrap"),
        ("3D DOG PICTURE PLAYING CARDS", "22549", "Toys"),
        ("WRAP ENGLISH ROSE ", "22046", "Cards & Wrap"),
        ("SET 36 COLOUR PENCILS DOLLY GIRL", "20973", "Stationery"),
        ("VINTAGE ZINC PLANTER", "47504K", "Garden"),
        ("DIAMANTE NECKLACE GREEN", "90001B", "Jewellery"),
        ("SET/3 POLKADOT STACKING TINS", "23245", "Storage"),
        ("CREAM CUPID HEARTS COAT HANGER", "22961", "Home"),
        ("ASSORTED COLOUR BIRD ORNAMENT", "84879", "Home"),
        ("POLKADOT RAIN HAT ", "20679", OTHER),
        ("Dotcomgiftshop Gift Voucher Â£40.00", "GIFT_0001_40", OTHER),
        ("POSTAGE", "POST", FEES),
        ("DOTCOM POSTAGE", "DOT", FEES),
        ("Manual", "M", FEES),
        ("Manual", "m", FEES),
        ("CARRIAGE", "C2", FEES),
        ("Bank Charges", "BANK CHARGES", FEES),
        ("AMAZON FEE", "AMAZONFEE", FEES),
        ("Discount", "D", FEES),
        ("", "12345", OTHER),
    ],
)
def test_category_examples(description: str, stock_code: str, category: str) -> None:
    assert category_for(description, stock_code) == category


def test_category_matches_whole_words_case_insensitively() -> None:
    assert category_for("lightweight scarf", "1") == OTHER
    assert category_for("tea light holder", "1") == "Candles & Lights"
    assert category_for("Mug", "1") == "Kitchen"


def test_categories_are_few_and_named() -> None:
    assert 10 <= len(CATEGORIES) <= 14
    assert CATEGORIES[0] == FEES and CATEGORIES[-1] == OTHER


# --- the real file ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return retail.load_frame(DATA)


@pytest.fixture(scope="module")
def real_events(real: pd.DataFrame) -> list[dict[str, Any]]:
    return retail.to_events(real)


@pytest.fixture(scope="module")
def real_customers(real: pd.DataFrame) -> list[dict[str, Any]]:
    return retail.to_customers(real)


def test_the_shipped_file_is_the_cited_one() -> None:
    assert hashlib.sha256(DATA.read_bytes()).hexdigest() == SHA256


def test_real_cleaning_matches_an_independent_count(real: pd.DataFrame) -> None:
    raw = pd.read_parquet(DATA)
    assert len(raw) == 541_909
    kept = raw.drop_duplicates()
    kept = kept[(kept["UnitPrice"] > 0) & ~kept["InvoiceNo"].str.startswith("A")]
    cancelled = kept["InvoiceNo"].str.startswith("C")
    kept = kept[(cancelled & (kept["Quantity"] < 0)) | (~cancelled & (kept["Quantity"] > 0))]
    assert len(real) == len(kept) == 534_128
    assert set(real["StockCode"]) == set(kept["StockCode"].str.strip().str.upper())


def test_real_events_and_customers_validate(
    real_events: list[dict[str, Any]], real_customers: list[dict[str, Any]]
) -> None:
    for event in real_events:
        EVENT.validate_python(event)
    for customer in real_customers:
        CustomerIn.model_validate(customer)
    assert len({event["event_id"] for event in real_events}) == len(real_events)
    times = [event["occurred_at"] for event in real_events]
    assert times == sorted(times)


def test_real_expected_totals_match_independent_pandas(real: pd.DataFrame) -> None:
    raw = pd.read_parquet(DATA).drop_duplicates()
    raw = raw[(raw["UnitPrice"] > 0) & ~raw["InvoiceNo"].str.startswith("A")]
    known = raw[raw["CustomerID"].notna()]
    cancelled = known["InvoiceNo"].str.startswith("C")
    pence = {
        p: int((Decimal(str(p)) * 100).to_integral_value(ROUND_HALF_UP)) for p in known["UnitPrice"].unique()
    }
    net = int((known["Quantity"] * known["UnitPrice"].map(pence)).sum())
    # Floats agree to the penny but for the four sub-penny (0.001) rows, which round to zero.
    assert abs(net - round(float((known["Quantity"] * known["UnitPrice"]).sum()) * 100)) < 100

    totals = retail.expected_totals(real)
    assert totals["customers"] == known["CustomerID"].nunique() == 4371
    assert totals["orders"] == known.loc[~cancelled, "InvoiceNo"].nunique() == 18_532
    assert totals["refunds"] == known.loc[cancelled, "InvoiceNo"].nunique() == 3_654
    assert totals["net_revenue_minor"] == net == 827_851_942
    assert totals["gross_revenue_minor"] - totals["refunded_minor"] == totals["net_revenue_minor"]
    assert totals["customers_with_orders"] == known.loc[~cancelled, "CustomerID"].nunique() == 4338


def test_real_events_add_up_to_the_totals(real: pd.DataFrame, real_events: list[dict[str, Any]]) -> None:
    totals = retail.expected_totals(real)
    known = [event for event in real_events if "customer_id" in event]
    orders = {event["order_id"] for event in known if event["type"] == "order"}
    refunds = {event["event_id"] for event in known if event["type"] == "refund"}
    sign = {"order": 1, "refund": -1}
    net = sum(
        sign[event["type"]] * line["quantity"] * line["unit_price_minor"]
        for event in known
        for line in event["lines"]
    )
    assert len(real_events) == totals["events"] == 23_795
    assert len(orders) == totals["orders"]
    assert len({e["customer_id"] for e in known if e["type"] == "order"}) == totals["customers_with_orders"]
    assert len(refunds) == totals["refunds"]
    assert net == totals["net_revenue_minor"]
    assert {event["customer_id"] for event in known} == {c["customer_id"] for c in retail.to_customers(real)}
    anonymous = [event for event in real_events if "anonymous_id" in event]
    assert {e["anonymous_id"] for e in anonymous if e["type"] == "order"} == {
        f"anon-{e['order_id']}" for e in anonymous if e["type"] == "order"
    }
    assert len({e["order_id"] for e in anonymous if e["type"] == "order"}) == totals["anonymous_orders"]


def test_real_hand_check_matches_the_events(real: pd.DataFrame, real_events: list[dict[str, Any]]) -> None:
    check = retail.hand_check(real, "17850")
    mine = [event for event in real_events if event.get("customer_id") == "17850"]
    orders = sorted({(e["occurred_at"], e["order_id"]) for e in mine if e["type"] == "order"})
    sign = {"order": 1, "refund": -1}
    assert check["frequency"] == len(orders)
    assert check["first_order_at"] == orders[0][0]
    assert check["last_order_at"] == orders[-1][0]
    assert check["monetary_minor"] == sum(
        sign[e["type"]] * line["quantity"] * line["unit_price_minor"] for e in mine for line in e["lines"]
    )


def test_real_clock(real: pd.DataFrame) -> None:
    assert retail.last_event_day(real) == date(2011, 12, 9)
    assert retail.demo_as_of(real) == "2011-12-10T00:00:00Z"


def test_real_synthetic_shares(
    real_events: list[dict[str, Any]], real_customers: list[dict[str, Any]]
) -> None:
    granted = Counter(
        c["channel"] for customer in real_customers for c in customer["consents"] if c["granted"]
    )
    count = len(real_customers)
    assert abs(granted["email"] / count - 0.70) < 0.03
    assert abs(granted["sms"] / count - 0.40) < 0.03
    assert abs(granted["push"] / count - 0.25) < 0.03
    preferred = {
        c["customer_id"]: retail.synthetic_profile(c["customer_id"]).sales_channel for c in real_customers
    }
    orders = [e for e in real_events if e["type"] == "order" and "customer_id" in e]
    share = sum(e["sales_channel"] == preferred[e["customer_id"]] for e in orders) / len(orders)
    assert abs(share - retail.PREFERRED_SHARE) < 0.02


def test_real_categories_leave_little_as_other(real_events: list[dict[str, Any]]) -> None:
    lines = Counter(line["category"] for event in real_events for line in event["lines"])
    assert set(lines) <= set(CATEGORIES)
    assert lines[OTHER] / sum(lines.values()) < 0.06
