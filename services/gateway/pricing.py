"""The pricing engine: a cart, the customer's facts and a rule-set version in, a priced and explained quote out.

Pure and deterministic: the same request, facts, usage and rule-set version always give the same quote.

Money is integer minor units. A line's amounts are taken on the line (unit list price x quantity),
never per unit. Percentage discounts apply in stacking order to what is left of the line after the
rules before them; each rule's discount on a line is rounded once, half to even, to a whole minor
unit. Guard rails, always: a line never costs more than its list amount, never less than its floor
(the larger of its cost price x quantity and the rule set's floor share of the list amount, rounded
up, and never above list), never less than zero, and never gets more than the rule set's maximum
total discount (of its list amount, rounded down). A rule that would cross one of these is trimmed
to what is left, and the reason says so; with nothing left it is listed as not applied, with why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.common.money import exponent
from services.gateway.pricing_rules import (
    BP,
    ChannelPriceRule,
    OfferRule,
    PaymentRule,
    RuleSet,
    SegmentCondition,
    TraitCondition,
    VipTiersRule,
)

# The customer facts a rule reads, by source.
TOTALS, TRAITS, SEGMENTS = "totals", "traits", "segments"


@dataclass(frozen=True, slots=True)
class QuoteLine:
    sku: str
    list_price_minor: int
    quantity: int
    cost_price_minor: int | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class QuoteRequest:
    customer_id: str | None
    currency: str
    lines: tuple[QuoteLine, ...]
    sales_channel: str
    payment_channel: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Totals:
    net_spend_minor: int
    orders: int
    currency: str


@dataclass(frozen=True)
class CustomerFacts:
    """What is known of the customer; a source that could not answer is None, with the reason in `missing`."""

    customer_id: str
    known: bool = True  # False: no record yet (a new customer): no history, no portrait
    totals: Mapping[int, Totals] | None = None  # window in days -> totals
    traits: Mapping[str, float] | None = None
    segments: frozenset[str] | None = None
    missing: Mapping[str, str] = field(default_factory=dict)  # source -> why it is unavailable


@dataclass(frozen=True)
class Usage:
    """Redemptions so far: this customer's uses of each rule, and each rule's discount given in total."""

    customer_uses: Mapping[str, int] = field(default_factory=dict)
    budget_spent: Mapping[str, int] = field(default_factory=dict)


_NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Applied:
    rule_id: str
    kind: str
    name: str
    rule_set_version: int
    amount_minor: int
    reason: str


@dataclass(frozen=True, slots=True)
class NotApplied:
    rule_id: str
    kind: str
    name: str
    reason: str


@dataclass(slots=True)
class PricedLine:
    index: int
    sku: str
    quantity: int
    unit_list_price_minor: int
    list_minor: int
    floor_minor: int
    final_minor: int
    discount_minor: int
    discounts: list[Applied]
    not_applied: list[NotApplied]


@dataclass(slots=True)
class Priced:
    rule_set_version: int
    currency: str
    lines: list[PricedLine]
    list_minor: int
    final_minor: int
    discount_minor: int
    discounts: list[Applied]  # per rule over the whole quote, in stacking order
    not_applied: list[NotApplied]  # rules applied on no line, with why


def money(minor: int, currency: str) -> str:
    """'5,230.00 GBP' (reasons only)."""
    places = exponent(currency)
    value = Decimal(minor).scaleb(-places)
    return f"{value:,.{places}f} {currency}"


def percent(bp: int) -> str:
    """'2%', '2.5%', '12.34%'."""
    return f"{Decimal(bp).scaleb(-2).normalize():f}%"


def _bp_of(amount: int, bp: int) -> int:
    """amount x bp / 10,000, rounded half to even."""
    quotient, remainder = divmod(amount * bp, BP)
    twice = 2 * remainder
    if twice > BP or (twice == BP and quotient % 2 == 1):
        quotient += 1
    return quotient


def _ceil_bp_of(amount: int, bp: int) -> int:
    return -((-amount * bp) // BP)


def _when(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def needed_sources(rule_set: RuleSet, request: QuoteRequest) -> set[str]:
    """The customer facts worth asking for: those read by rules that apply at this time on this channel."""
    return {source for rule in rule_set.ordered
            if (source := _source(rule)) is not None and _time_or_channel(rule, request) is None}


def usage_needed(rule_set: RuleSet, request: QuoteRequest, facts: CustomerFacts | None) -> list[str]:
    """The limited offers (use limit or budget) this customer qualifies for: only their redemptions can change
    the quote, so only they are worth a read (none for an anonymous shopper or one no offer targets)."""
    return [rule.id for rule in rule_set.ordered
            if isinstance(rule, OfferRule) and (rule.per_customer_limit is not None or rule.budget_minor is not None)
            # Limits and budgets are >= 1, so with no usage the verdict rests on time, channel and condition alone.
            and not isinstance(_eligibility(rule, request, facts, _NO_USAGE, rule_set.spec.currency), str)]


def _source(rule: Any) -> str | None:
    """The customer facts a rule reads: VIP tiers the totals, offers traits or segments, the others none."""
    if isinstance(rule, VipTiersRule):
        return TOTALS
    if isinstance(rule, OfferRule):
        return SEGMENTS if isinstance(rule.condition, SegmentCondition) else TRAITS
    return None


def _time_or_channel(rule: Any, request: QuoteRequest) -> str | None:
    if rule.starts_at is not None and request.at < rule.starts_at:
        return f"not started: runs from {_when(rule.starts_at)}"
    if rule.ends_at is not None and request.at >= rule.ends_at:
        return f"ended at {_when(rule.ends_at)}"
    if rule.sales_channels is not None and request.sales_channel not in rule.sales_channels:
        return f"not on the {request.sales_channel} channel (applies on {', '.join(rule.sales_channels)})"
    return None


def _unavailable(facts: CustomerFacts | None, request: QuoteRequest, source: str) -> str | None:
    """Why a rule reading `source` cannot be evaluated, or None when it can."""
    if request.customer_id is None:
        return "anonymous customer: needs customer data"
    if facts is None or source in facts.missing:
        why = facts.missing.get(source, "") if facts is not None else ""
        return f"customer data unavailable{': ' + why if why else ''}"
    return None


def _vip(rule: VipTiersRule, facts: CustomerFacts, currency: str) -> tuple[int, str] | str:
    """(discount bp, reason) of the highest tier reached, or why none is."""
    assert facts.totals is not None
    totals = facts.totals.get(rule.window_days, Totals(0, 0, ""))
    window = f"in the last {rule.window_days} days"
    if rule.basis == "spend":
        if totals.net_spend_minor and totals.currency not in ("", currency):
            return f"spend is in {totals.currency}, the tiers in {currency}"
        value, shown = totals.net_spend_minor, f"spend {money(totals.net_spend_minor, currency)} {window}"
    else:
        value, shown = totals.orders, f"{totals.orders} orders {window}"
    reached = [tier for tier in rule.tiers if value >= tier.min]
    if not reached:
        lowest = rule.tiers[0]
        threshold = money(lowest.min, currency) if rule.basis == "spend" else str(lowest.min)
        return f"{shown} is below the lowest tier '{lowest.name}' ({threshold})"
    tier = reached[-1]
    threshold = money(tier.min, currency).removesuffix(f" {currency}") if rule.basis == "spend" else str(tier.min)
    return tier.discount_bp, f"{rule.name} {tier.name}: {shown} >= {threshold}; {percent(tier.discount_bp)} off"


def _offer(rule: OfferRule, facts: CustomerFacts, usage: Usage, currency: str) -> str | tuple[int, str]:
    """(discount bp, reason) when the customer qualifies and the offer has uses and budget left, else why not."""
    condition = rule.condition
    if isinstance(condition, TraitCondition):
        value = (facts.traits or {}).get(condition.trait)
        if value is None:
            return f"no {condition.trait} yet (no portrait)" if facts.known else "new customer: no portrait yet"
        if condition.at_least is not None and value < condition.at_least:
            return f"{condition.trait} {value:.2f} < {condition.at_least:.2f}"
        if condition.at_most is not None and value > condition.at_most:
            return f"{condition.trait} {value:.2f} > {condition.at_most:.2f}"
        bounds = [f">= {condition.at_least:.2f}" if condition.at_least is not None else "",
                  f"<= {condition.at_most:.2f}" if condition.at_most is not None else ""]
        why = f"{condition.trait} {value:.2f} {' and '.join(b for b in bounds if b)}"
    else:
        if condition.segment not in (facts.segments or frozenset()):
            return f"not in segment '{condition.segment}'"
        why = f"in segment '{condition.segment}'"
    uses = usage.customer_uses.get(rule.id, 0)
    if rule.per_customer_limit is not None and uses >= rule.per_customer_limit:
        return f"use limit reached: {uses} of {rule.per_customer_limit} redeemed"
    if rule.budget_minor is not None and usage.budget_spent.get(rule.id, 0) >= rule.budget_minor:
        return f"budget spent: {money(usage.budget_spent.get(rule.id, 0), currency)} of {money(rule.budget_minor, currency)}"
    period = f"{_when(rule.starts_at)} to {_when(rule.ends_at)}"
    return rule.discount_bp, f"{rule.name}: {why}, {period}; {percent(rule.discount_bp)} off"


def _eligibility(
    rule: Any, request: QuoteRequest, facts: CustomerFacts | None, usage: Usage, currency: str
) -> tuple[int, str] | str:
    """(discount bp, basis reason) when the rule applies to this quote (bp 0 for channel prices), else why not."""
    blocked = _time_or_channel(rule, request)
    if blocked is not None:
        return blocked
    if isinstance(rule, PaymentRule):
        if request.payment_channel is None:
            return "no payment channel given"
        if request.payment_channel not in rule.payment_channels:
            return f"paying by {request.payment_channel} (applies to {', '.join(rule.payment_channels)})"
        return rule.discount_bp, f"{rule.name}: paying by {request.payment_channel}; {percent(rule.discount_bp)} off"
    if isinstance(rule, ChannelPriceRule):
        return 0, f"{rule.name}: {request.sales_channel} price"
    missing = _unavailable(facts, request, _source(rule) or "")
    if missing is not None:
        return missing
    assert facts is not None
    if isinstance(rule, VipTiersRule):
        return _vip(rule, facts, currency)
    return _offer(rule, facts, usage, currency)


@dataclass(slots=True)
class _LineState:
    list_minor: int
    floor_minor: int
    cap_minor: int  # most discount the line may get
    current: int
    given: int = 0
    exclusive_by: str | None = None
    applied_ids: list[str] = field(default_factory=list)


def _wanted(rule: Any, bp: int, line: QuoteLine, state: _LineState, currency: str) -> tuple[int, str]:
    """The discount the rule would give on the line before guard rails, with the line's own wording."""
    if isinstance(rule, ChannelPriceRule):
        price = rule.prices.get(line.sku)
        if price is None:
            return 0, f"no {', '.join(rule.sales_channels)} price for {line.sku}"
        target = price * line.quantity
        if target >= state.current:
            return 0, f"channel price {money(price, currency)} is not below {money(state.current, currency)}"
        return state.current - target, f"{money(price, currency)} instead of list {money(line.list_price_minor, currency)}"
    if bp == 0:
        return 0, "0% off"
    return _bp_of(state.current, bp), ""


def _limit_reason(limit: str, rule_set: RuleSet, state: _LineState, currency: str) -> str:
    if limit == "cap":
        return f"max total discount {percent(rule_set.spec.max_total_discount_bp)} of list reached"
    if limit == "floor":
        return f"floor {money(state.floor_minor, currency)} reached (cost price or {percent(rule_set.spec.floor_bp)} of list)"
    return "offer budget spent"


def price(rule_set: RuleSet, request: QuoteRequest, facts: CustomerFacts | None, usage: Usage) -> Priced:
    """Prices every line under the rule set; see the module docstring for the arithmetic and guard rails."""
    spec = rule_set.spec
    currency = spec.currency
    eligible: list[tuple[Any, int, str]] = []
    not_applied: list[NotApplied] = []
    for rule in rule_set.ordered:
        verdict = _eligibility(rule, request, facts, usage, currency)
        if isinstance(verdict, str):
            not_applied.append(NotApplied(rule.id, rule.kind, rule.name, verdict))
        else:
            eligible.append((rule, *verdict))
    budget_left = {rule.id: rule.budget_minor - usage.budget_spent.get(rule.id, 0)
                   for rule, _, _ in eligible if isinstance(rule, OfferRule) and rule.budget_minor is not None}

    lines: list[PricedLine] = []
    per_rule: dict[str, int] = {}
    line_reasons: dict[str, list[str]] = {}
    for index, line in enumerate(request.lines):
        list_minor = line.list_price_minor * line.quantity
        floor = max((line.cost_price_minor or 0) * line.quantity, _ceil_bp_of(list_minor, spec.floor_bp))
        state = _LineState(list_minor, min(floor, list_minor), list_minor * spec.max_total_discount_bp // BP, list_minor)
        applied: list[Applied] = []
        skipped: list[NotApplied] = []
        for rule, bp, basis in eligible:
            reason = _line_block(rule, line, state)
            amount = 0
            if reason is None:
                wanted, wording = _wanted(rule, bp, line, state, currency)
                room, limit = state.cap_minor - state.given, "cap"
                if state.current - state.floor_minor < room:
                    room, limit = state.current - state.floor_minor, "floor"
                if rule.id in budget_left and budget_left[rule.id] < room:
                    room, limit = budget_left[rule.id], "budget"
                amount = max(0, min(wanted, room))
                if wanted <= 0:
                    reason = wording
                elif amount <= 0:
                    reason = _limit_reason(limit, rule_set, state, currency)
                else:
                    text = f"{basis}{' (' + wording + ')' if wording else ''}"
                    if amount < wanted:
                        text += (f"; trimmed from {money(wanted, currency)}: "
                                 f"{_limit_reason(limit, rule_set, state, currency)}")
                    applied.append(Applied(rule.id, rule.kind, rule.name, rule_set.version, amount, text))
                    state.current -= amount
                    state.given += amount
                    state.applied_ids.append(rule.id)
                    if rule.exclusive:
                        state.exclusive_by = rule.id
                    if rule.id in budget_left:
                        budget_left[rule.id] -= amount
                    per_rule[rule.id] = per_rule.get(rule.id, 0) + amount
            if reason is not None:
                skipped.append(NotApplied(rule.id, rule.kind, rule.name, reason))
                line_reasons.setdefault(rule.id, []).append(reason)
        lines.append(PricedLine(index, line.sku, line.quantity, line.list_price_minor, list_minor, state.floor_minor,
                                state.current, state.given, applied, skipped))

    discounts = [Applied(rule.id, rule.kind, rule.name, rule_set.version, per_rule[rule.id], basis)
                 for rule, _, basis in eligible if rule.id in per_rule]
    for rule, _, _ in eligible:
        if rule.id not in per_rule:
            reasons = list(dict.fromkeys(line_reasons.get(rule.id, ["no lines"])))
            not_applied.append(NotApplied(rule.id, rule.kind, rule.name, "on no line: " + "; ".join(reasons)))
    total_list = sum(pl.list_minor for pl in lines)
    total_final = sum(pl.final_minor for pl in lines)
    return Priced(rule_set.version, currency, lines, total_list, total_final, total_list - total_final,
                  discounts, not_applied)


def _line_block(rule: Any, line: QuoteLine, state: _LineState) -> str | None:
    """Why the rule does not reach this line at all (category, exclusivity), or None."""
    if rule.categories is not None and (line.category or "") not in rule.categories:
        return f"category '{line.category or ''}' is not one of {', '.join(rule.categories)}"
    if state.exclusive_by is not None:
        return f"exclusive rule '{state.exclusive_by}' applied"
    if rule.exclusive and state.applied_ids:
        return f"exclusive, and {', '.join(repr(i) for i in state.applied_ids)} applied first"
    return None

