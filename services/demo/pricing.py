"""The demo's pricing part: a rule set saved through the gateway, and quotes for three real customers with the trace."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd

from services.demo.categories import FEES
from services.demo.retail import customer_totals, list_prices, sku_categories

# The data's last day is 2011-12-09: the offer runs through December 2011.
RULE_SET: dict[str, Any] = {
    "currency": "GBP",
    "max_total_discount_bp": 2500,
    "floor_bp": 5000,
    "rules": [
        {"id": "vip", "kind": "vip_tiers", "name": "VIP", "priority": 10, "basis": "spend", "window_days": 365,
         "tiers": [{"name": "silver", "min": 100_000, "discount_bp": 200},
                   {"name": "gold", "min": 500_000, "discount_bp": 500},
                   {"name": "platinum", "min": 2_000_000, "discount_bp": 800}]},
        {"id": "december-deals", "kind": "offer", "name": "December deals", "priority": 20, "discount_bp": 1000,
         "condition": {"trait": "price_sensitivity", "at_least": 0.6},
         "starts_at": "2011-12-01T00:00:00Z", "ends_at": "2012-01-01T00:00:00Z",
         "per_customer_limit": 2, "budget_minor": 500_000},
        {"id": "wallets", "kind": "payment", "name": "Wallet payment", "priority": 30,
         "payment_channels": ["wechat_pay", "alipay"], "discount_bp": 200},
    ],
}
PRICE_SENSITIVE = "price_sensitivity >= 0.6 and frequency >= 2"
NEW = 'lifecycle == "new"'


def _pounds(minor: int) -> str:
    return f"£{minor / 100:,.2f}"


def cart(frame: pd.DataFrame, size: int = 5) -> list[dict[str, Any]]:
    """The most ordered products (fees left out) at their list price, two of each."""
    categories, prices = sku_categories(frame), list_prices(frame)
    orders = frame[frame["CustomerID"].notna() & ~frame["is_refund"]]
    popular = [str(sku) for sku in orders["StockCode"].value_counts().index if categories.get(str(sku)) != FEES]
    return [{"sku": sku, "list_price_minor": prices[sku], "quantity": 2, "category": categories[sku]}
            for sku in popular[:size]]


def _one_of(client: httpx.Client, admin: dict[str, str], rule: str) -> str | None:
    answer = client.post("/v1/segments/preview", json={"rule": rule, "sample_size": 5}, headers=admin)
    answer.raise_for_status()
    sample = answer.json()["sample"]
    return str(sample[0]) if sample else None


def print_quotes(client: httpx.Client, keys: dict[str, str], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Saves the rule set, then quotes the same cart for a VIP, a price-sensitive and a new customer."""
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    platform = {"Authorization": f"Bearer {keys['platform']}"}
    saved = client.put("/v1/pricing/rule-set", json=RULE_SET, headers=admin)
    saved.raise_for_status()
    client.post("/v1/admin/segments/sync", headers=admin).raise_for_status()
    vip = str(customer_totals(frame)["monetary_minor"].idxmax())
    chosen = [("a VIP (the biggest spender)", vip, "alipay"),
              (f"a price-sensitive customer ({PRICE_SENSITIVE})", _one_of(client, admin, PRICE_SENSITIVE), "wechat_pay"),
              (f"a new customer ({NEW})", _one_of(client, admin, NEW), "bank_card")]
    lines = cart(frame)
    basket = ", ".join(f"{ln['quantity']} x {ln['sku']} at {_pounds(ln['list_price_minor'])}" for ln in lines)
    print(f"\npricing: rule set version {saved.json()['version']} (VIP tiers on 365-day spend, December deals for "
          f"price_sensitivity >= 0.6, 2% paying by wallet; at most 25% off, never below half of list); "
          f"cart: {basket}")
    quotes = []
    for label, customer_id, payment in chosen:
        if customer_id is None:
            print(f"  no {label} in this data")
            continue
        body = {"customer_id": customer_id, "currency": "GBP", "sales_channel": "app", "payment_channel": payment,
                "lines": lines}
        answer = client.post("/v1/quotes", json=body, headers=platform)
        answer.raise_for_status()
        quote = answer.json()
        again = client.get(f"/v1/quotes/{quote['quote_id']}", headers=platform)
        again.raise_for_status()
        same = "same when fetched by id" if again.json()["final_minor"] == quote["final_minor"] else "DIFFERS by id"
        print(f"  {label}: customer {customer_id}, paying by {payment}: {_pounds(quote['list_minor'])} -> "
              f"{_pounds(quote['final_minor'])} (quote {quote['quote_id']}, {same}"
              f"{', DEGRADED: ' + str(quote['unavailable']) if quote['degraded'] else ''})")
        for applied in quote["discounts"]:
            print(f"    - {_pounds(applied['amount_minor'])} {applied['rule_id']} v{applied['rule_set_version']}: "
                  f"{applied['reason']}")
        for skipped in quote["not_applied"]:
            print(f"    x {skipped['rule_id']}: {skipped['reason']}")
        quotes.append(quote)
    return quotes
