"""Quotes through the real processes: profile's totals and portrait, a redemption, then profile stopped."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.stack import Stack

pytestmark = pytest.mark.integration
RULES: dict[str, Any] = {
    "currency": "GBP",
    "rules": [
        {"id": "vip", "kind": "vip_tiers", "name": "VIP", "priority": 10, "basis": "spend", "window_days": 365,
         "tiers": [{"name": "silver", "min": 1_000, "discount_bp": 200}, {"name": "gold", "min": 5_000,
                                                                          "discount_bp": 500}]},
        {"id": "deals", "kind": "offer", "name": "Deals", "priority": 20, "discount_bp": 1000,
         "condition": {"trait": "price_sensitivity", "at_least": 0.5}, "per_customer_limit": 1,
         "starts_at": "2011-12-01T00:00:00Z", "ends_at": "2012-01-01T00:00:00Z"},
        {"id": "wallets", "kind": "payment", "name": "Wallet", "priority": 30, "payment_channels": ["alipay"],
         "discount_bp": 200},
    ],
}
QUOTE = {"customer_id": "q-it-1", "currency": "GBP", "sales_channel": "web", "payment_channel": "alipay",
         "lines": [{"sku": "85123A", "list_price_minor": 1000, "quantity": 1}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("quotes")
    running = Stack(folder, ephemeral_ports=True, env={
        "MARKSMAN_AS_OF": "2011-12-10T00:00:00Z", "MARKSMAN_GATEWAY_PRICING_TIMEOUT_S": "1"})
    running.start()
    yield running
    running.stop()


def order(event_id: str, price: int, quote_id: str | None = None) -> dict[str, Any]:
    # Bought below the list price: the portrait's price sensitivity is the share of such spend.
    return {"event_id": event_id, "type": "order", "customer_id": "q-it-1", "occurred_at": "2011-12-05T10:00:00Z",
            "currency": "GBP", "payment_channel": "alipay", "sales_channel": "web", "quote_id": quote_id,
            "lines": [{"sku": "85123A", "quantity": 1, "unit_price_minor": price, "list_price_minor": 9000}]}


def test_a_quote_from_real_facts_is_redeemed_then_degrades_without_profile(stack: Stack) -> None:
    keys = stack.api_keys()
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(base_url=stack.gateway_url, timeout=30,
                      headers={"Authorization": f"Bearer {keys['platform']}"}) as client:
        assert client.put("/v1/pricing/rule-set", json=RULES, headers=admin).status_code == 201
        assert client.post("/v1/events", json={"events": [order("it-o-1", 6000)]}).status_code == 200
        assert client.post("/v1/admin/portraits/recompute", headers=admin).status_code == 200
        first = client.post("/v1/quotes", json=QUOTE)
        assert first.status_code == 201, first.text
        quote = first.json()
        assert quote["degraded"] is False
        reasons = {d["rule_id"]: d["reason"] for d in quote["discounts"]}
        assert reasons["vip"] == "VIP gold: spend 60.00 GBP in the last 365 days >= 50.00; 5% off"
        assert reasons["deals"].startswith("Deals: price_sensitivity 1.00 >= 0.50")
        assert quote["final_minor"] == 838  # 1000 - 50 - 95 - 17

        redeemed = client.post("/v1/events", json={"events": [order("it-o-2", 838, quote["quote_id"])]})
        assert redeemed.status_code == 200, redeemed.text
        after = client.post("/v1/quotes", json=QUOTE).json()
        assert {d["rule_id"]: d["reason"] for d in after["not_applied"]}["deals"] == (
            "use limit reached: 1 of 1 redeemed")

        for process in stack.processes:
            if process.name.startswith("profile"):
                process.popen.send_signal(signal.SIGTERM)
                process.popen.wait(15)
        fallback = client.post("/v1/quotes", json=QUOTE)
        assert fallback.status_code == 201, fallback.text
        degraded = fallback.json()
        assert degraded["degraded"] is True and set(degraded["unavailable"]) == {"profile"}
        assert [d["rule_id"] for d in degraded["discounts"]] == ["wallets"] and degraded["final_minor"] == 980
        assert client.get(f"/v1/quotes/{quote['quote_id']}").json()["final_minor"] == 838
