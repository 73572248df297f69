"""Quotes and rule sets through the gateway app: a real gRPC fake upstream, a real SQLite gateway database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.pricing_schemas import QuoteOut, RuleSetOut
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import SLOW_CUSTOMER, FakeServer, order

OFFER_WINDOW = {"starts_at": "2011-12-01T00:00:00Z", "ends_at": "2012-01-01T00:00:00Z"}
RULES: dict[str, Any] = {
    "currency": "GBP",
    "max_total_discount_bp": 3000,
    "floor_bp": 5000,
    "rules": [
        {"id": "vip", "kind": "vip_tiers", "name": "VIP", "priority": 10, "basis": "spend", "window_days": 365,
         "tiers": [{"name": "silver", "min": 500, "discount_bp": 200}, {"name": "gold", "min": 1000, "discount_bp": 500}]},
        {"id": "deals", "kind": "offer", "name": "Deal hunters", "priority": 20, "discount_bp": 1000,
         "condition": {"trait": "price_sensitivity", "at_least": 0.6}, "per_customer_limit": 1, **OFFER_WINDOW},
        {"id": "wallets", "kind": "payment", "name": "Wallet", "priority": 30,
         "payment_channels": ["wechat_pay", "alipay"], "discount_bp": 200},
    ],
}
CART = [{"sku": "A", "list_price_minor": 1000, "quantity": 2, "cost_price_minor": 400, "category": "Home"},
        {"sku": "B", "list_price_minor": 255}]


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_AS_OF", "2011-12-10T00:00:00Z")


@pytest.fixture
def fast_settings(settings: GatewaySettings) -> GatewaySettings:
    return settings.model_copy(update={"pricing_timeout_s": 0.3, "quote_ttl_s": 600.0})


@pytest.fixture
def app_client(fast_settings: GatewaySettings, keys: KeyStore) -> Iterator[TestClient]:
    with TestClient(create_app(fast_settings, keys=keys)) as test_client:
        yield test_client


def saved(client: TestClient, admin: dict[str, str], rules: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.put("/v1/pricing/rule-set", json=rules or RULES, headers=admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


def customer(client: TestClient, platform: dict[str, str], customer_id: str, spend_minor: int = 0) -> None:
    assert client.post("/v1/customers", json={"customers": [{"customer_id": customer_id}]},
                       headers=platform).status_code == 200
    if spend_minor:
        event = order(f"o-{customer_id}", customer=customer_id)
        event["lines"] = [{"sku": "X", "quantity": 1, "unit_price_minor": spend_minor}]
        assert client.post("/v1/events", json={"events": [event]}, headers=platform).status_code == 200


def quote(client: TestClient, platform: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"currency": "GBP", "sales_channel": "app", "payment_channel": "alipay", "lines": CART, **fields}
    response = client.post("/v1/quotes", json=body, headers=platform)
    assert response.status_code == 201, response.text
    QuoteOut.model_validate(response.json())  # the answer is what the OpenAPI document says
    return dict(response.json())


def applied(answer: dict[str, Any]) -> dict[str, int]:
    return {d["rule_id"]: d["amount_minor"] for d in answer["discounts"]}


def skipped(answer: dict[str, Any]) -> dict[str, str]:
    return {d["rule_id"]: d["reason"] for d in answer["not_applied"]}


def test_a_saved_rule_set_is_versioned_and_readable(app_client: TestClient, admin: dict[str, str]) -> None:
    assert app_client.get("/v1/pricing/rule-set", headers=admin).status_code == 404
    first = saved(app_client, admin)
    second = saved(app_client, admin, {**RULES, "floor_bp": 6000})
    assert (first["version"], second["version"]) == (1, 2)
    current = app_client.get("/v1/pricing/rule-set", headers=admin).json()
    assert current["version"] == 2 and current["rule_set"]["floor_bp"] == 6000
    old = app_client.get("/v1/pricing/rule-set/versions/1", headers=admin)
    assert RuleSetOut.model_validate(old.json()).rule_set.floor_bp == 5000
    missing = app_client.get("/v1/pricing/rule-set/versions/9", headers=admin)
    assert missing.status_code == 404 and "no rule set version 9" in missing.json()["error"]


def test_a_vip_quote_explains_every_discount_and_can_be_fetched(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], upstream: FakeServer
) -> None:
    saved(app_client, admin)
    customer(app_client, platform, "vip-1", spend_minor=1500)
    upstream.profile.traits["vip-1"] = {"price_sensitivity": 0.2}
    answer = quote(app_client, platform, customer_id="vip-1")
    assert applied(answer) == {"vip": 113, "wallets": 43}
    assert answer["discounts"][0]["reason"] == (
        "VIP gold: spend 15.00 GBP in the last 365 days >= 10.00; 5% off")
    assert skipped(answer)["deals"] == "price_sensitivity 0.20 < 0.60"
    assert answer["final_minor"] == answer["list_minor"] - 156 and answer["degraded"] is False
    line = answer["lines"][0]
    assert (line["list_minor"], line["final_minor"], line["floor_minor"]) == (2000, 1862, 1000)
    assert [d["rule_id"] for d in line["discounts"]] == ["vip", "wallets"]
    fetched = app_client.get(f"/v1/quotes/{answer['quote_id']}", headers=platform)
    assert fetched.status_code == 200 and fetched.json() == answer
    assert answer["rule_set_version"] == 1 and answer["request"]["lines"][0]["cost_price_minor"] == 400


def test_a_new_version_never_changes_a_quote_already_given(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(app_client, admin)
    given = quote(app_client, platform)
    saved(app_client, admin, {**RULES, "rules": []})
    again = app_client.get(f"/v1/quotes/{given['quote_id']}", headers=platform).json()
    assert again == given and again["rule_set_version"] == 1
    fresh = quote(app_client, platform)
    assert fresh["rule_set_version"] == 2 and fresh["discounts"] == []


def test_an_anonymous_shopper_gets_only_rules_that_need_no_customer_data(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(app_client, admin)
    answer = quote(app_client, platform)
    assert applied(answer) == {"wallets": 45}
    assert skipped(answer)["vip"] == "anonymous customer: needs customer data"
    assert answer["degraded"] is False and answer["customer_id"] is None


def test_a_quote_says_when_it_has_expired(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    saved(app_client, admin)
    given = quote(app_client, platform)
    assert given["expires_at"] == "2011-12-10T00:10:00Z" and given["expired"] is False
    monkeypatch.setenv("MARKSMAN_AS_OF", "2011-12-10T00:10:00Z")
    later = app_client.get(f"/v1/quotes/{given['quote_id']}", headers=platform).json()
    assert later["expired"] is True and later["final_minor"] == given["final_minor"]
    unknown = app_client.get("/v1/quotes/q-000000000000000000000000", headers=platform)
    assert unknown.status_code == 404 and "no quote" in unknown.json()["error"]


def test_a_slow_profile_degrades_the_quote_to_rules_without_customer_data(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(app_client, admin)
    customer(app_client, platform, SLOW_CUSTOMER, spend_minor=5000)
    answer = quote(app_client, platform, customer_id=SLOW_CUSTOMER)
    assert answer["degraded"] is True
    assert answer["unavailable"] == {"profile": "profile service unavailable: no answer within 0.3 s"}
    assert applied(answer) == {"wallets": 45}
    assert skipped(answer)["vip"].startswith("customer data unavailable: profile service unavailable")


def test_a_stopped_profile_degrades_the_quote(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], upstream: FakeServer
) -> None:
    saved(app_client, admin)
    customer(app_client, platform, "c-7", spend_minor=5000)
    upstream.stop()
    answer = quote(app_client, platform, customer_id="c-7")
    assert answer["degraded"] is True and set(answer["unavailable"]) == {"profile"}
    assert applied(answer) == {"wallets": 45}


def test_a_new_customer_is_priced_without_history_and_is_not_degraded(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(app_client, admin)
    answer = quote(app_client, platform, customer_id="brand-new")
    assert answer["degraded"] is False and applied(answer) == {"wallets": 45}
    reasons = skipped(answer)
    assert reasons["vip"] == "spend 0.00 GBP in the last 365 days is below the lowest tier 'silver' (5.00 GBP)"
    assert reasons["deals"] == "new customer: no portrait yet"


def test_redeemed_quotes_count_toward_the_per_customer_limit(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], upstream: FakeServer
) -> None:
    saved(app_client, admin)
    customer(app_client, platform, "deal-1", spend_minor=100)
    upstream.profile.traits["deal-1"] = {"price_sensitivity": 0.8}
    first = quote(app_client, platform, customer_id="deal-1")
    assert "deals" in applied(first)
    # Quotes alone do not use the offer up: only a redemption does.
    assert "deals" in applied(quote(app_client, platform, customer_id="deal-1"))
    redeem = order("o-deal-1", customer="deal-1", quote_id=first["quote_id"])
    for _ in range(2):  # a re-sent event is one redemption
        assert app_client.post("/v1/events", json={"events": [redeem]}, headers=platform).status_code == 200
    after = quote(app_client, platform, customer_id="deal-1")
    assert "deals" not in applied(after)
    assert skipped(after)["deals"] == "use limit reached: 1 of 1 redeemed"


def test_redemptions_spend_an_offers_budget(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], upstream: FakeServer
) -> None:
    rules = {**RULES, "rules": [{"id": "deals", "kind": "offer", "name": "Deal hunters", "discount_bp": 1000,
                                 "condition": {"trait": "price_sensitivity", "at_least": 0.6},
                                 "budget_minor": 300, **OFFER_WINDOW}]}
    saved(app_client, admin, rules)
    for name in ("b-1", "b-2"):
        customer(app_client, platform, name, spend_minor=100)
        upstream.profile.traits[name] = {"price_sensitivity": 0.9}
    first = quote(app_client, platform, customer_id="b-1")
    assert applied(first) == {"deals": 226}
    events = [order("o-b-1", customer="b-1", quote_id=first["quote_id"]),
              order("o-b-1-again", customer="b-1", quote_id=first["quote_id"])]  # one quote, redeemed once
    assert app_client.post("/v1/events", json={"events": events}, headers=platform).status_code == 200
    second = quote(app_client, platform, customer_id="b-2")
    assert applied(second) == {"deals": 74}
    assert "trimmed from 2.00 GBP: offer budget spent" in second["lines"][0]["discounts"][0]["reason"]
    redeemed = order("o-b-2", customer="b-2", quote_id=second["quote_id"])
    assert app_client.post("/v1/events", json={"events": [redeemed]}, headers=platform).status_code == 200
    third = quote(app_client, platform, customer_id="b-2")
    assert skipped(third)["deals"] == "budget spent: 3.00 GBP of 3.00 GBP"


def test_erasure_removes_the_customers_quotes(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(app_client, admin)
    given = quote(app_client, platform, customer_id="c-1")
    erased = app_client.delete("/v1/customers/c-1", headers=admin)
    assert erased.status_code == 200 and erased.json()["services"]["gateway"] == 1
    assert app_client.get(f"/v1/quotes/{given['quote_id']}", headers=platform).status_code == 404


def test_quotes_need_a_rule_set_in_the_same_currency(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    body = {"currency": "GBP", "sales_channel": "web", "lines": CART}
    none_yet = app_client.post("/v1/quotes", json=body, headers=platform)
    assert none_yet.status_code == 409 and "PUT /v1/pricing/rule-set" in none_yet.json()["error"]
    saved(app_client, admin)
    euros = app_client.post("/v1/quotes", json={**body, "currency": "EUR"}, headers=platform)
    assert euros.status_code == 422 and "prices in GBP" in euros.json()["error"]


@pytest.mark.parametrize(("body", "wanted"), [
    ({"currency": "GBP", "sales_channel": "web", "lines": []}, "at least 1 item"),
    ({"currency": "GBP", "sales_channel": "fax", "lines": CART}, "'web', 'app'"),
    ({"currency": "GBP", "sales_channel": "web", "lines": [{"sku": "A", "list_price_minor": -1}]},
     "greater than or equal to 0"),
    ({"currency": "GBP", "sales_channel": "web", "lines": [{"sku": "A", "list_price_minor": 10**13, "quantity": 2}]},
     "list_price_minor x quantity must be at most"),
    ({"currency": "GBP", "sales_channel": "web", "lines": CART, "at": "2011-12-10T10:00:00"}, "time zone"),
])
def test_bad_quote_requests_are_422_saying_what_is_wrong(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], body: dict[str, Any], wanted: str
) -> None:
    saved(app_client, admin)
    response = app_client.post("/v1/quotes", json=body, headers=platform)
    assert response.status_code == 422
    assert wanted in response.text


def _rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"id": "r", "kind": "payment", "name": "Wallet", "payment_channels": ["alipay"],
                            "discount_bp": 200}
    rule.update(changes)
    return {"currency": "GBP", "rules": [rule]}


VIP = {"id": "v", "kind": "vip_tiers", "name": "VIP", "basis": "spend", "window_days": 365}


@pytest.mark.parametrize(("rules", "wanted"), [
    (_rule(kind="coupon"), "does not match any of the expected tags: 'vip_tiers', 'offer', 'payment', 'channel_price'"),
    (_rule(discount_bp=-5), "a discount cannot be negative; got -5 basis points"),
    (_rule(discount_bp=12_000), "a discount cannot exceed 100% (10000 basis points); got 12000"),
    (_rule(starts_at="2011-12-10T00:00:00Z", ends_at="2011-12-01T00:00:00Z"), "ends_at (2011-12-01T00:00:00+00:00) "
                                                                             "must be after starts_at"),
    ({"currency": "GBP", "rules": [{**VIP, "window_days": 0, "tiers": [{"name": "a", "min": 1, "discount_bp": 1}]}]},
     "window_days"),
    ({"currency": "GBP", "rules": [{**VIP, "tiers": [{"name": "silver", "min": 500, "discount_bp": 100},
                                                     {"name": "gold", "min": 500, "discount_bp": 500}]}]},
     "tiers overlap or are out of order: 'gold' starts at 500, not above 'silver' at 500"),
    ({"currency": "GBP", "rules": [_rule()["rules"][0], _rule()["rules"][0]]}, "rule ids must be unique; repeated: r"),
    ({"currency": "GBP", "rules": [{"id": "o", "kind": "offer", "name": "O", "discount_bp": 100,
                                    "condition": {"trait": "price_sensitivity"}, **OFFER_WINDOW}]},
     "needs at_least or at_most"),
    ({"currency": "GBP", "rules": [{"id": "o", "kind": "offer", "name": "O", "discount_bp": 100,
                                    "condition": {"segment": "deal-hunters"}}]}, "starts_at"),
    ({"currency": "pounds", "rules": []}, "currency"),
])
def test_a_bad_rule_set_is_refused_with_a_clear_422(
    app_client: TestClient, admin: dict[str, str], rules: dict[str, Any], wanted: str
) -> None:
    response = app_client.put("/v1/pricing/rule-set", json=rules, headers=admin)
    assert response.status_code == 422, response.text
    assert wanted in response.text
    assert app_client.get("/v1/pricing/rule-set", headers=admin).status_code == 404


def test_pricing_routes_need_the_right_key(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    assert app_client.put("/v1/pricing/rule-set", json=RULES).status_code == 401
    assert app_client.put("/v1/pricing/rule-set", json=RULES, headers=platform).status_code == 403
    assert app_client.get("/v1/pricing/rule-set", headers=platform).status_code == 403
    body = {"currency": "GBP", "sales_channel": "web", "lines": CART}
    assert app_client.post("/v1/quotes", json=body).status_code == 401
    assert app_client.get("/v1/quotes/q-1", headers={"Authorization": "Bearer mk_wrong"}).status_code == 401
    saved(app_client, admin)
    assert app_client.post("/v1/quotes", json=body, headers=admin).status_code == 201  # admin implies platform


SEGMENT_RULES: dict[str, Any] = {
    "currency": "GBP",
    "rules": [{"id": "members", "kind": "offer", "name": "Members' offer", "discount_bp": 500,
               "condition": {"segment": "deal-hunters"}, **OFFER_WINDOW}, RULES["rules"][2]],
}


@pytest.fixture
def seg_client(fast_settings: GatewaySettings, keys: KeyStore, upstream: FakeServer) -> Iterator[TestClient]:
    with TestClient(create_app(fast_settings.model_copy(update={"segment_addr": upstream.address}), keys=keys)) as c:
        yield c


def test_a_segment_offer_reaches_the_segments_members(
    seg_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(seg_client, admin, SEGMENT_RULES)
    created = seg_client.post("/v1/segments", json={"name": "deal-hunters", "rule": "price_sensitivity > 0.6"},
                              headers=admin)
    assert created.status_code == 201
    assert seg_client.post("/v1/segments/deal-hunters/refresh", headers=admin).status_code == 200
    member = quote(seg_client, platform, customer_id="c-3")
    # The offer has the default priority (100): the wallet discount (30) goes first.
    assert [d["rule_id"] for d in member["discounts"]] == ["wallets", "members"]
    assert applied(member) == {"members": 110, "wallets": 45}
    assert member["discounts"][1]["reason"].startswith("Members' offer: in segment 'deal-hunters'")
    outsider = quote(seg_client, platform, customer_id="not-a-member")
    assert skipped(outsider)["members"] == "not in segment 'deal-hunters'" and outsider["degraded"] is False


def test_without_a_segment_service_segment_offers_are_skipped_and_the_quote_says_so(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str]
) -> None:
    saved(app_client, admin, SEGMENT_RULES)
    answer = quote(app_client, platform, customer_id="c-3")
    assert answer["degraded"] is True and answer["unavailable"]["segment"].startswith("segment service unavailable")
    assert applied(answer) == {"wallets": 45}


def test_each_applied_rule_is_counted_by_kind(
    app_client: TestClient, admin: dict[str, str], platform: dict[str, str], upstream: FakeServer
) -> None:
    def counted(kind: str) -> float:
        return REGISTRY.get_sample_value("marksman_gateway_quote_rules_applied_total", {"kind": kind}) or 0.0

    saved(app_client, admin)
    customer(app_client, platform, "vip-2", spend_minor=1500)
    upstream.profile.traits["vip-2"] = {"price_sensitivity": 0.2}
    before = {kind: counted(kind) for kind in ("vip_tiers", "payment", "offer")}
    quote(app_client, platform, customer_id="vip-2")
    quote(app_client, platform, customer_id="vip-2", payment_channel="bank_card")
    assert {kind: counted(kind) - before[kind] for kind in before} == {"vip_tiers": 2, "payment": 1, "offer": 0}
