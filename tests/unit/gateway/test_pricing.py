"""The pure pricing engine: each rule kind, stacking and priority, guard rails, rounding, and properties over random carts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from services.gateway.pricing import (
    SEGMENTS,
    TOTALS,
    TRAITS,
    CustomerFacts,
    Priced,
    QuoteLine,
    QuoteRequest,
    Totals,
    Usage,
    money,
    needed_sources,
    percent,
    price,
    usage_needed,
)
from services.gateway.pricing_rules import RuleSet, RuleSetIn

AT = datetime(2011, 12, 10, 12, tzinfo=UTC)
WINDOW = {"starts_at": "2011-12-01T00:00:00Z", "ends_at": "2012-01-01T00:00:00Z"}
VIP = {"id": "vip", "kind": "vip_tiers", "name": "VIP", "priority": 10, "basis": "spend", "window_days": 365,
       "tiers": [{"name": "silver", "min": 100_000, "discount_bp": 200},
                 {"name": "gold", "min": 500_000, "discount_bp": 500}]}
OFFER = {"id": "deals", "kind": "offer", "name": "Deals", "priority": 20, "discount_bp": 1000,
         "condition": {"trait": "price_sensitivity", "at_least": 0.6}, **WINDOW}
WALLET = {"id": "wallet", "kind": "payment", "name": "Wallet", "priority": 30,
          "payment_channels": ["wechat_pay", "alipay"], "discount_bp": 200}


def rules(*items: dict[str, Any], version: int = 1, **top: Any) -> RuleSet:
    spec = RuleSetIn.model_validate({"currency": "GBP", "rules": list(items), **top})
    return RuleSet(version, spec, AT)


def cart(*lines: QuoteLine, customer: str | None = "c1", sales: str = "web", payment: str | None = "alipay",
         at: datetime = AT) -> QuoteRequest:
    return QuoteRequest(customer, "GBP", lines or (QuoteLine("A", 1000, 1),), sales, payment, at)


def facts(spend: int = 0, orders: int = 0, sensitivity: float | None = None,
          segments: frozenset[str] = frozenset(), **kw: Any) -> CustomerFacts:
    traits = {"price_sensitivity": sensitivity} if sensitivity is not None else {}
    return CustomerFacts("c1", totals={365: Totals(spend, orders, "GBP")}, traits=traits, segments=segments, **kw)


def applied(quote: Priced) -> dict[str, int]:
    return {d.rule_id: d.amount_minor for d in quote.discounts}


def skipped(quote: Priced) -> dict[str, str]:
    return {d.rule_id: d.reason for d in quote.not_applied}


# ---- each rule kind ----

def test_the_highest_vip_tier_reached_wins_and_the_reason_shows_the_figures() -> None:
    quote = price(rules(VIP), cart(), facts(spend=523_000), Usage())
    assert applied(quote) == {"vip": 50}
    assert quote.discounts[0].reason == "VIP gold: spend 5,230.00 GBP in the last 365 days >= 5,000.00; 5% off"
    assert applied(price(rules(VIP), cart(), facts(spend=100_000), Usage())) == {"vip": 20}
    below = price(rules(VIP), cart(), facts(spend=99_999), Usage())
    assert skipped(below)["vip"] == ("spend 999.99 GBP in the last 365 days is below the lowest tier 'silver' "
                                     "(1,000.00 GBP)")


def test_vip_tiers_by_order_count() -> None:
    by_orders = {**VIP, "basis": "orders", "tiers": [{"name": "regular", "min": 5, "discount_bp": 300}]}
    quote = price(rules(by_orders), cart(), facts(orders=7), Usage())
    assert quote.discounts[0].reason == "VIP regular: 7 orders in the last 365 days >= 5; 3% off"


def test_vip_spend_in_another_currency_is_not_compared() -> None:
    other = CustomerFacts("c1", totals={365: Totals(900_000, 3, "EUR")})
    assert skipped(price(rules(VIP), cart(), other, Usage()))["vip"] == "spend is in EUR, the tiers in GBP"


def test_an_offer_needs_its_condition_its_window_uses_and_budget() -> None:
    rule_set = rules(OFFER)
    assert applied(price(rule_set, cart(), facts(sensitivity=0.72), Usage())) == {"deals": 100}
    assert price(rule_set, cart(), facts(sensitivity=0.72), Usage()).discounts[0].reason == (
        "Deals: price_sensitivity 0.72 >= 0.60, 2011-12-01T00:00:00Z to 2012-01-01T00:00:00Z; 10% off")
    assert skipped(price(rule_set, cart(), facts(sensitivity=0.4), Usage()))["deals"] == "price_sensitivity 0.40 < 0.60"
    late = cart(at=datetime(2012, 1, 1, tzinfo=UTC))
    assert skipped(price(rule_set, late, facts(sensitivity=0.9), Usage()))["deals"] == "ended at 2012-01-01T00:00:00Z"
    early = cart(at=datetime(2011, 11, 30, tzinfo=UTC))
    assert skipped(price(rule_set, early, facts(sensitivity=0.9), Usage()))["deals"].startswith("not started")
    limited = rules({**OFFER, "per_customer_limit": 2, "budget_minor": 1000})
    assert skipped(price(limited, cart(), facts(sensitivity=0.9), Usage(customer_uses={"deals": 2})))["deals"] == (
        "use limit reached: 2 of 2 redeemed")
    spent = Usage(budget_spent={"deals": 1000})
    assert skipped(price(limited, cart(), facts(sensitivity=0.9), spent))["deals"] == (
        "budget spent: 10.00 GBP of 10.00 GBP")


def test_an_offers_budget_left_is_spread_over_lines_in_order() -> None:
    limited = rules({**OFFER, "budget_minor": 1000})
    lines = (QuoteLine("A", 5000, 1), QuoteLine("B", 5000, 1), QuoteLine("C", 5000, 1))
    quote = price(limited, cart(*lines), facts(sensitivity=0.9), Usage(budget_spent={"deals": 300}))
    assert [ln.discount_minor for ln in quote.lines] == [500, 200, 0]
    assert "trimmed from 5.00 GBP: offer budget spent" in quote.lines[1].discounts[0].reason
    assert quote.lines[2].not_applied[0].reason == "offer budget spent"


def test_an_offer_for_a_segment_and_the_bounds_of_a_trait() -> None:
    members = rules({**OFFER, "condition": {"segment": "deal-hunters"}})
    assert applied(price(members, cart(), facts(segments=frozenset({"deal-hunters"})), Usage())) == {"deals": 100}
    assert skipped(price(members, cart(), facts(), Usage()))["deals"] == "not in segment 'deal-hunters'"
    capped = rules({**OFFER, "condition": {"trait": "purchasing_power", "at_most": 0.3}})
    poor = CustomerFacts("c1", traits={"purchasing_power": 0.5})
    assert skipped(price(capped, cart(), poor, Usage()))["deals"] == "purchasing_power 0.50 > 0.30"


def test_payment_channel_discounts() -> None:
    rule_set = rules(WALLET)
    assert applied(price(rule_set, cart(customer=None), None, Usage())) == {"wallet": 20}
    card = price(rule_set, cart(payment="bank_card"), None, Usage())
    assert skipped(card)["wallet"] == "paying by bank_card (applies to wechat_pay, alipay)"
    assert skipped(price(rule_set, cart(payment=None), None, Usage()))["wallet"] == "no payment channel given"


def test_channel_only_prices_and_channel_restrictions() -> None:
    app_price = {"id": "app-price", "kind": "channel_price", "name": "App price", "sales_channels": ["app"],
                 "prices": {"A": 850, "B": 2000}}
    rule_set = rules(app_price, {**WALLET, "sales_channels": ["web"]})
    lines = (QuoteLine("A", 1000, 2), QuoteLine("B", 1500, 1), QuoteLine("C", 700, 1))
    on_app = price(rule_set, cart(*lines, sales="app"), None, Usage())
    assert [ln.final_minor for ln in on_app.lines] == [1700, 1500, 700]
    assert on_app.lines[0].discounts[0].reason == "App price: app price (8.50 GBP instead of list 10.00 GBP)"
    assert on_app.lines[1].not_applied[0].reason == "channel price 20.00 GBP is not below 15.00 GBP"
    assert on_app.lines[2].not_applied[0].reason == "no app price for C"
    assert skipped(on_app)["wallet"] == "not on the app channel (applies on web)"
    on_web = price(rule_set, cart(*lines, sales="web"), None, Usage())
    assert skipped(on_web)["app-price"] == "not on the web channel (applies on app)" and "wallet" in applied(on_web)


def test_rules_limited_to_categories_reach_only_those_lines() -> None:
    home_only = rules({**WALLET, "categories": ["Home"]})
    quote = price(home_only, cart(QuoteLine("A", 1000, 1, category="Home"), QuoteLine("B", 1000, 1)), None, Usage())
    assert [ln.discount_minor for ln in quote.lines] == [20, 0]
    assert quote.lines[1].not_applied[0].reason == "category '' is not one of Home"


# ---- stacking, priority and guard rails ----

def test_stackable_rules_apply_in_priority_order_each_on_what_is_left() -> None:
    quote = price(rules(WALLET, OFFER, VIP), cart(), facts(spend=523_000, sensitivity=0.9), Usage())
    assert [d.rule_id for d in quote.discounts] == ["vip", "deals", "wallet"]
    # 1000 -> 5% = 50 -> 950; 10% = 95 -> 855; 2% = 17.1 -> 17 -> 838
    assert applied(quote) == {"vip": 50, "deals": 95, "wallet": 17} and quote.final_minor == 838


def test_ties_in_priority_are_broken_by_rule_id() -> None:
    a = {**WALLET, "id": "b-wallet", "priority": 5}
    b = {**WALLET, "id": "a-wallet", "priority": 5}
    assert [d.rule_id for d in price(rules(a, b), cart(), None, Usage()).discounts] == ["a-wallet", "b-wallet"]


def test_an_exclusive_rule_applied_first_stops_the_others() -> None:
    exclusive_offer = {**OFFER, "priority": 1, "exclusive": True}
    quote = price(rules(VIP, exclusive_offer, WALLET), cart(), facts(spend=523_000, sensitivity=0.9), Usage())
    assert applied(quote) == {"deals": 100}
    assert quote.lines[0].not_applied[0].reason == "exclusive rule 'deals' applied"
    assert skipped(quote)["vip"] == "on no line: exclusive rule 'deals' applied"


def test_an_exclusive_rule_after_others_does_not_join_them() -> None:
    exclusive_wallet = {**WALLET, "exclusive": True}
    quote = price(rules(VIP, exclusive_wallet), cart(), facts(spend=523_000), Usage())
    assert applied(quote) == {"vip": 50}
    assert skipped(quote)["wallet"] == "on no line: exclusive, and 'vip' applied first"


def test_the_maximum_total_discount_trims_the_rule_that_crosses_it() -> None:
    quote = price(rules(VIP, OFFER, WALLET, max_total_discount_bp=1200), cart(),
                  facts(spend=523_000, sensitivity=0.9), Usage())
    assert applied(quote) == {"vip": 50, "deals": 70} and quote.final_minor == 880
    assert "trimmed from 0.95 GBP: max total discount 12% of list reached" in quote.lines[0].discounts[1].reason
    assert quote.lines[0].not_applied[0].reason == "max total discount 12% of list reached"


def test_never_below_cost_price_or_the_floor() -> None:
    big = {**WALLET, "discount_bp": 9000}
    at_cost = price(rules(big), cart(QuoteLine("A", 1000, 3, cost_price_minor=700)), None, Usage())
    assert at_cost.lines[0].final_minor == 2100 and at_cost.lines[0].floor_minor == 2100
    assert "floor 21.00 GBP reached" in at_cost.lines[0].discounts[0].reason
    floored = price(rules(big, floor_bp=2501), cart(QuoteLine("A", 999, 1)), None, Usage())
    assert floored.lines[0].final_minor == 250  # 25.01% of 9.99 = 2.4985, rounded up
    above_list = price(rules(big), cart(QuoteLine("A", 1000, 1, cost_price_minor=1500)), None, Usage())
    assert above_list.lines[0].final_minor == 1000 and above_list.discounts == []


def test_rounding_is_half_to_even_once_per_rule_and_line() -> None:
    one_percent = rules({**WALLET, "discount_bp": 100})
    halves = [price(one_percent, cart(QuoteLine("A", amount, 1)), None, Usage()).discount_minor
              for amount in (50, 150, 250, 349)]
    assert halves == [0, 2, 2, 3]
    # On the line, not per unit: 3 x 1% of 50 is 1.5 -> 2, where per unit it would be 3 x 0.
    assert price(one_percent, cart(QuoteLine("A", 50, 3)), None, Usage()).discount_minor == 2


def test_missing_customer_data_blocks_only_the_rules_that_need_it() -> None:
    partial = CustomerFacts("c1", totals={365: Totals(523_000, 9, "GBP")},
                            missing={TRAITS: "profile service unavailable: no answer within 0.25 s"})
    quote = price(rules(VIP, OFFER, WALLET), cart(), partial, Usage())
    assert set(applied(quote)) == {"vip", "wallet"}
    assert skipped(quote)["deals"] == "customer data unavailable: profile service unavailable: no answer within 0.25 s"
    nothing = price(rules(VIP, OFFER, WALLET), cart(), None, Usage())
    assert set(applied(nothing)) == {"wallet"} and skipped(nothing)["vip"] == "customer data unavailable"


def test_only_the_facts_of_rules_in_force_are_asked_for() -> None:
    segment_offer = {**OFFER, "id": "seg", "condition": {"segment": "x"}}
    rule_set = rules(VIP, OFFER, segment_offer, WALLET)
    assert needed_sources(rule_set, cart()) == {TOTALS, TRAITS, SEGMENTS}
    assert needed_sources(rule_set, cart(at=datetime(2012, 2, 1, tzinfo=UTC))) == {TOTALS}
    assert needed_sources(rules(WALLET), cart()) == set()


def test_wording_helpers() -> None:
    assert money(523_000, "GBP") == "5,230.00 GBP" and money(1500, "JPY") == "1,500 JPY"
    assert money(-250, "GBP") == "-2.50 GBP" and money(1234, "KWD") == "1.234 KWD"
    assert (percent(200), percent(250), percent(1234), percent(10_000)) == ("2%", "2.5%", "12.34%", "100%")


# ---- properties over random carts and rule sets ----

bps = st.integers(min_value=0, max_value=10_000)
channels = st.sampled_from(["web", "app", "mini_program", "marketplace", "partner"])
payments = st.sampled_from(["wechat_pay", "alipay", "bank_card", "cash_on_delivery", "other"])


@st.composite
def rule_dicts(draw: st.DrawFn, index: int) -> dict[str, Any]:
    base: dict[str, Any] = {"id": f"r{index}", "name": f"Rule {index}", "priority": draw(st.integers(0, 50)),
                            "exclusive": draw(st.booleans())}
    if draw(st.booleans()):
        base["sales_channels"] = draw(st.lists(channels, min_size=1, max_size=3, unique=True))
    kind = draw(st.sampled_from(["vip_tiers", "offer", "payment", "channel_price"]))
    if kind == "vip_tiers":
        mins = sorted(draw(st.lists(st.integers(0, 10**7), min_size=1, max_size=4, unique=True)))
        return {**base, "kind": kind, "basis": draw(st.sampled_from(["spend", "orders"])),
                "window_days": draw(st.sampled_from([30, 365])),
                "tiers": [{"name": f"t{i}", "min": m, "discount_bp": draw(bps)} for i, m in enumerate(mins)]}
    if kind == "offer":
        condition = ({"trait": "price_sensitivity", "at_least": draw(st.floats(0, 1))} if draw(st.booleans())
                     else {"segment": "deal-hunters"})
        return {**base, "kind": kind, "condition": condition, "discount_bp": draw(bps), **WINDOW,
                "per_customer_limit": draw(st.none() | st.integers(1, 3)),
                "budget_minor": draw(st.none() | st.integers(1, 10**6))}
    if kind == "payment":
        return {**base, "kind": kind, "payment_channels": draw(st.lists(payments, min_size=1, max_size=3, unique=True)),
                "discount_bp": draw(bps)}
    base.pop("sales_channels", None)
    return {**base, "kind": kind, "sales_channels": draw(st.lists(channels, min_size=1, max_size=2, unique=True)),
            "prices": draw(st.dictionaries(st.sampled_from("ABCDE"), st.integers(0, 10**6), min_size=1))}


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    count = draw(st.integers(0, 6))
    items = [draw(rule_dicts(i)) for i in range(count)]
    return rules(*items, version=draw(st.integers(1, 99)), max_total_discount_bp=draw(bps), floor_bp=draw(bps))


quote_lines = st.builds(
    QuoteLine,
    sku=st.sampled_from("ABCDEF"),
    list_price_minor=st.integers(0, 10**7),
    quantity=st.integers(1, 50),
    cost_price_minor=st.none() | st.integers(0, 2 * 10**7),
    category=st.none() | st.sampled_from(["Home", "Kitchen"]),
)
requests = st.builds(
    QuoteRequest,
    customer_id=st.none() | st.just("c1"),
    currency=st.just("GBP"),
    lines=st.lists(quote_lines, min_size=1, max_size=8).map(tuple),
    sales_channel=channels,
    payment_channel=st.none() | payments,
    at=st.datetimes(min_value=datetime(2011, 11, 1), max_value=datetime(2012, 2, 1), timezones=st.just(UTC)),
)
customer_facts = st.none() | st.builds(
    CustomerFacts,
    customer_id=st.just("c1"),
    known=st.booleans(),
    totals=st.none() | st.builds(lambda spend, orders: {30: Totals(spend, orders, "GBP"),
                                                          365: Totals(spend * 3, orders * 3, "GBP")},
                                 st.integers(-10**5, 10**7), st.integers(0, 40)),
    traits=st.none() | st.builds(lambda v: {"price_sensitivity": v}, st.floats(0, 1)),
    segments=st.none() | st.sampled_from([frozenset(), frozenset({"deal-hunters"})]),
)
usages = st.builds(Usage, customer_uses=st.dictionaries(st.sampled_from([f"r{i}" for i in range(6)]), st.integers(0, 4)),
                   budget_spent=st.dictionaries(st.sampled_from([f"r{i}" for i in range(6)]), st.integers(0, 10**6)))


def _complete(facts_: CustomerFacts | None) -> CustomerFacts | None:
    """Random facts name every source, missing ones in `missing` (as pricing_facts builds them)."""
    if facts_ is None:
        return None
    missing = {source: "down" for source, value in
               ((TOTALS, facts_.totals), (TRAITS, facts_.traits), (SEGMENTS, facts_.segments)) if value is None}
    return CustomerFacts(facts_.customer_id, facts_.known, facts_.totals, facts_.traits, facts_.segments, missing)


@settings(max_examples=300, deadline=None)
@given(rule_sets(), requests, customer_facts, usages)
def test_guard_rails_hold_for_any_cart_and_rule_set(
    rule_set: RuleSet, request: QuoteRequest, facts_: CustomerFacts | None, usage: Usage
) -> None:
    facts_ = _complete(facts_)
    quote = price(rule_set, request, facts_, usage)
    spec = rule_set.spec
    for line, priced in zip(request.lines, quote.lines, strict=True):
        list_minor = line.list_price_minor * line.quantity
        floor = min(list_minor, max((line.cost_price_minor or 0) * line.quantity,
                                    -(-list_minor * spec.floor_bp // 10_000)))
        assert priced.list_minor == list_minor
        assert 0 <= floor <= priced.final_minor <= list_minor
        assert priced.discount_minor == list_minor - priced.final_minor == sum(d.amount_minor for d in priced.discounts)
        assert priced.discount_minor * 10_000 <= list_minor * spec.max_total_discount_bp
        assert all(d.amount_minor > 0 and d.rule_set_version == rule_set.version for d in priced.discounts)
    assert quote.final_minor == sum(pl.final_minor for pl in quote.lines)
    assert quote.discount_minor == sum(d.amount_minor for d in quote.discounts)
    for rule in spec.rules:
        budget = getattr(rule, "budget_minor", None)
        if budget is not None:
            given_now = sum(d.amount_minor for d in quote.discounts if d.rule_id == rule.id)
            assert given_now <= max(0, budget - usage.budget_spent.get(rule.id, 0))
    # Every rule is either applied or explained.
    assert {d.rule_id for d in quote.discounts} | {d.rule_id for d in quote.not_applied} == {r.id for r in spec.rules}


@settings(max_examples=100, deadline=None)
@given(rule_sets(), requests, customer_facts, usages)
def test_the_same_input_and_version_always_give_the_same_quote(
    rule_set: RuleSet, request: QuoteRequest, facts_: CustomerFacts | None, usage: Usage
) -> None:
    facts_ = _complete(facts_)
    again = RuleSet(rule_set.version, RuleSetIn.model_validate_json(rule_set.spec.model_dump_json()), AT + timedelta(1))
    assert price(rule_set, request, facts_, usage) == price(again, request, facts_, usage)


@settings(max_examples=300, deadline=None)
@given(rule_sets(), requests, customer_facts, usages)
def test_reading_usage_only_for_the_offers_in_play_gives_the_same_quote(
    rule_set: RuleSet, request: QuoteRequest, facts_: CustomerFacts | None, usage: Usage
) -> None:
    # The quote route reads redemptions only for usage_needed(): the rest of the usage must never matter.
    facts_ = _complete(facts_)
    wanted = set(usage_needed(rule_set, request, facts_))
    read = Usage({k: v for k, v in usage.customer_uses.items() if k in wanted},
                 {k: v for k, v in usage.budget_spent.items() if k in wanted})
    assert price(rule_set, request, facts_, read) == price(rule_set, request, facts_, usage)


def test_usage_is_needed_only_for_limited_offers_the_customer_qualifies_for() -> None:
    limited = {**OFFER, "per_customer_limit": 1}
    budgeted = {**OFFER, "id": "budgeted", "budget_minor": 500, "condition": {"segment": "deal-hunters"}}
    rule_set = rules(VIP, limited, budgeted, {**OFFER, "id": "unlimited"}, WALLET)
    assert usage_needed(rule_set, cart(), facts(sensitivity=0.9)) == ["deals"]
    assert usage_needed(rule_set, cart(), facts(sensitivity=0.9, segments=frozenset({"deal-hunters"}))) == [
        "budgeted", "deals"]  # stacking order: same priority, then rule id
    assert usage_needed(rule_set, cart(), facts(sensitivity=0.1)) == []
    assert usage_needed(rule_set, cart(customer=None), None) == []
    assert usage_needed(rule_set, cart(at=AT + timedelta(days=60)), facts(sensitivity=0.9)) == []
    assert usage_needed(rule_set, cart(), facts(sensitivity=0.9, missing={TRAITS: "timed out"})) == []


@pytest.mark.parametrize("kind", ["vip_tiers", "offer", "payment", "channel_price"])
def test_every_rule_kind_is_generated(kind: str) -> None:
    # The property tests above are only as good as their generator: it must reach every kind.
    assert find(rule_dicts(0), lambda rule: rule["kind"] == kind)["kind"] == kind
