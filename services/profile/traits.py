"""Pure functions that turn a customer's raw events, and statistics over the whole base, into a portrait."""

from __future__ import annotations

import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TypeVar

from services.profile.domain import (
    BaseStats,
    Event,
    EventType,
    LifecycleStage,
    Line,
    PaymentChannel,
    Portrait,
    RfmEdges,
    SalesChannel,
)

_DAY = timedelta(days=1)
_SECONDS_PER_DAY = 86_400.0

NEW_WITHOUT_ORDERS_DAYS = 90
NEW_FIRST_ORDER_DAYS = 30
NEW_MAX_FREQUENCY = 2
DEFAULT_RHYTHM_DAYS = 90.0
MIN_EXPECTED_GAP_DAYS = 14.0
MAX_EXPECTED_GAP_DAYS = 180.0
CHURNED_AFTER_DAYS = 365
ACTIVE_MAX_RATIO = 1.5
AT_RISK_MAX_RATIO = 3.0
DORMANT_MAX_RATIO = 6.0
TOP_CATEGORIES = 3
ORDER_LINE_WEIGHT = 3
CART_LINE_WEIGHT = 2
VIEW_LINE_WEIGHT = 1

RFM_SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "cant_lose_them",
    "at_risk",
    "hibernating",
    "lost",
)

_C = TypeVar("_C", PaymentChannel, SalesChannel)


@dataclass(frozen=True, slots=True)
class ChannelUse:
    """How often a channel was used, and when last."""

    count: int
    last_at: datetime


@dataclass(slots=True)
class CustomerFacts:
    """Per-customer aggregates of raw events, independent of the base and of `now`.

    Money is in minor units of `currency` and covers only orders and refunds in that currency
    (events without a currency count as that currency). Orders are distinct by effective order id.
    """

    customer_id: str
    currency: str = ""
    # Distinct orders in any currency.
    frequency: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    order_times: tuple[datetime, ...] = ()
    # Paid totals of orders in `currency`, and what refunds in `currency` took back.
    gross_spend_minor: int = 0
    refunded_minor: int = 0
    # Paid spend of order lines with `Line.discounted`, in `currency`.
    discounted_spend_minor: int = 0
    spend_by_category: dict[str, int] = field(default_factory=dict)
    spend_by_brand: dict[str, int] = field(default_factory=dict)
    # Per category, (unit_price_minor, quantity) of each order line in `currency`, sorted.
    category_line_prices: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    # Per category, number of lines of orders (any currency), carts and views.
    order_lines_by_category: dict[str, int] = field(default_factory=dict)
    cart_lines_by_category: dict[str, int] = field(default_factory=dict)
    view_lines_by_category: dict[str, int] = field(default_factory=dict)
    payment_channels: dict[PaymentChannel, ChannelUse] = field(default_factory=dict)
    order_sales_channels: dict[SalesChannel, ChannelUse] = field(default_factory=dict)
    event_sales_channels: dict[SalesChannel, ChannelUse] = field(default_factory=dict)
    views: int = 0
    carts: int = 0
    searches: int = 0
    refunds: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None

    @property
    def has_orders(self) -> bool:
        return self.frequency > 0

    @property
    def net_spend_minor(self) -> int:
        """Monetary: order totals less refunds; may be negative."""
        return self.gross_spend_minor - self.refunded_minor


def _order_total(event: Event) -> int:
    return sum(line.paid_minor for line in event.lines)


def _choose_currency(orders: Iterable[Event], refunds: Iterable[Event]) -> str:
    """The most common non-empty currency of the orders (ties: alphabetical); of the refunds when no
    order names one; "" when no event does."""
    for events in (orders, refunds):
        counts = Counter(e.currency for e in events if e.currency)
        if counts:
            return min(counts, key=lambda c: (-counts[c], c))
    return ""


def _sorted_dict(counts: Mapping[str, int]) -> dict[str, int]:
    return {key: counts[key] for key in sorted(counts)}


def _tally_channels(uses: Iterable[tuple[_C | None, datetime]]) -> dict[_C, ChannelUse]:
    counts: Counter[_C] = Counter()
    last: dict[_C, datetime] = {}
    for channel, at in uses:
        if channel is None:
            continue
        counts[channel] += 1
        if channel not in last or at > last[channel]:
            last[channel] = at
    return {c: ChannelUse(counts[c], last[c]) for c in sorted(counts, key=str)}


def _count_category_lines(events: Iterable[Event]) -> dict[str, int]:
    counts: Counter[str] = Counter(line.category for e in events for line in e.lines if line.category)
    return _sorted_dict(counts)


def summarize(customer_id: str, events: Iterable[Event]) -> CustomerFacts:
    """Aggregate one customer's events (any order, already unique by event_id) into facts.

    ORDER events sharing an effective order id are one order: the one with the smallest event_id
    is kept, the others are ignored entirely. A refund with lines takes back the sum of their
    paid_minor; one without lines but with an order_id takes back that order's whole paid total if
    the order is among the events (at most once per order), otherwise nothing. A refund without
    a currency is in its order's currency when that order is known.
    """
    all_events = list(events)
    orders_by_id: dict[str, Event] = {}
    refund_events: list[Event] = []
    view_events: list[Event] = []
    cart_events: list[Event] = []
    searches = 0
    for event in all_events:
        if event.type is EventType.ORDER:
            key = event.effective_order_id
            kept = orders_by_id.get(key)
            if kept is None or event.event_id < kept.event_id:
                orders_by_id[key] = event
        elif event.type is EventType.REFUND:
            refund_events.append(event)
        elif event.type is EventType.VIEW:
            view_events.append(event)
        elif event.type is EventType.ADD_TO_CART:
            cart_events.append(event)
        elif event.type is EventType.SEARCH:
            searches += 1

    orders = sorted(orders_by_id.values(), key=lambda e: (e.occurred_at, e.event_id))
    currency = _choose_currency(orders, refund_events)

    def in_currency(code: str) -> bool:
        return code in (currency, "")

    money_lines: list[Line] = [
        line for order in orders if in_currency(order.currency) for line in order.lines
    ]
    gross = sum(line.paid_minor for line in money_lines)
    discounted = sum(line.paid_minor for line in money_lines if line.discounted)
    spend_by_category: Counter[str] = Counter()
    spend_by_brand: Counter[str] = Counter()
    prices: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    for line in money_lines:
        if line.category:
            spend_by_category[line.category] += line.paid_minor
            prices[line.category].append((line.unit_price_minor, line.quantity))
        if line.brand:
            spend_by_brand[line.brand] += line.paid_minor

    refunded = 0
    wholly_refunded: set[str] = set()
    for refund in refund_events:
        order = orders_by_id.get(refund.order_id) if refund.order_id else None
        refund_currency = refund.currency or (order.currency if order is not None else "")
        if refund.lines:
            if in_currency(refund_currency):
                refunded += sum(line.paid_minor for line in refund.lines)
        elif order is not None and refund.order_id not in wholly_refunded:
            # Two line-less refunds of one order are one refund: an order is only reversed once.
            wholly_refunded.add(refund.order_id)
            if in_currency(refund_currency) and in_currency(order.currency):
                refunded += _order_total(order)

    order_times = tuple(order.occurred_at for order in orders)
    event_times = [e.occurred_at for e in all_events]
    return CustomerFacts(
        customer_id=customer_id,
        currency=currency,
        frequency=len(orders),
        first_order_at=order_times[0] if order_times else None,
        last_order_at=order_times[-1] if order_times else None,
        order_times=order_times,
        gross_spend_minor=gross,
        refunded_minor=refunded,
        discounted_spend_minor=discounted,
        spend_by_category=_sorted_dict(spend_by_category),
        spend_by_brand=_sorted_dict(spend_by_brand),
        category_line_prices={c: tuple(sorted(prices[c])) for c in sorted(prices)},
        order_lines_by_category=_count_category_lines(orders),
        cart_lines_by_category=_count_category_lines(cart_events),
        view_lines_by_category=_count_category_lines(view_events),
        payment_channels=_tally_channels((o.payment_channel, o.occurred_at) for o in orders),
        order_sales_channels=_tally_channels((o.sales_channel, o.occurred_at) for o in orders),
        event_sales_channels=_tally_channels((e.sales_channel, e.occurred_at) for e in all_events),
        views=len(view_events),
        carts=len(cart_events),
        searches=searches,
        refunds=len(refund_events),
        first_event_at=min(event_times) if event_times else None,
        last_event_at=max(event_times) if event_times else None,
    )


# --- per-customer traits --------------------------------------------------------------------


def recency_days(facts: CustomerFacts, now: datetime) -> int:
    """Whole days (floored) from the last order to `now`, at least 0; -1 without orders."""
    if facts.last_order_at is None:
        return -1
    return max(0, (now - facts.last_order_at) // _DAY)


def purchase_interval_days(facts: CustomerFacts) -> float:
    """Days from first to last order divided by (frequency - 1); 0.0 below two orders."""
    if facts.frequency < 2 or facts.first_order_at is None or facts.last_order_at is None:
        return 0.0
    span = (facts.last_order_at - facts.first_order_at).total_seconds() / _SECONDS_PER_DAY
    return span / (facts.frequency - 1)


def average_order_value_minor(facts: CustomerFacts) -> int:
    """Net spend / frequency rounded half to even (may be negative); 0 without orders."""
    if facts.frequency == 0:
        return 0
    return round(Fraction(facts.net_spend_minor, facts.frequency))


def _count_below(edges: tuple[float, ...], value: float) -> int:
    return sum(1 for edge in edges if edge < value)


def _clamp_score(score: int) -> int:
    return min(5, max(1, score))


def rfm_scores(facts: CustomerFacts, rfm: RfmEdges, now: datetime) -> tuple[int, int, int]:
    """(R, F, M) in 1..5, or (0, 0, 0) without orders or when any edge list is empty.

    F = 1 + number of frequency edges strictly below the frequency; M likewise on the net spend
    clamped at 0; R = 5 - number of recency edges strictly below the recency (recent is better).
    """
    if not facts.has_orders or not (rfm.recency_days and rfm.frequency and rfm.monetary_minor):
        return 0, 0, 0
    r = _clamp_score(5 - _count_below(rfm.recency_days, recency_days(facts, now)))
    f = _clamp_score(1 + _count_below(rfm.frequency, facts.frequency))
    m = _clamp_score(1 + _count_below(rfm.monetary_minor, max(facts.net_spend_minor, 0)))
    return r, f, m


def rfm_segment(r: int, f: int, m: int) -> str:
    """The named segment of R and FM = (F + M) / 2 rounded half up; "" when any score is 0 (unscored).

    ====  ======================================================================
    R     FM 1             FM 2             FM 3             FM 4      FM 5
    ====  ======================================================================
    5     new_customers    potential_loy.   potential_loy.   champions champions
    4     promising        potential_loy.   potential_loy.   loyal     loyal
    3     about_to_sleep   about_to_sleep   need_attention   loyal     loyal
    2     hibernating      hibernating      at_risk          at_risk   cant_lose_them
    1     lost             hibernating      at_risk          at_risk   cant_lose_them
    ====  ======================================================================

    (potential_loy. = potential_loyalists.) Scores outside 0..5 raise ValueError.
    """
    for score in (r, f, m):
        if not 0 <= score <= 5:
            raise ValueError(f"RFM score out of range 0..5: {score}")
    if 0 in (r, f, m):
        return ""
    fm = (f + m + 1) // 2
    if r == 5 and fm >= 4:
        return "champions"
    if r >= 3 and fm >= 4:
        return "loyal"
    if r >= 4 and fm >= 2:
        return "potential_loyalists"
    if r == 5:
        return "new_customers"
    if r == 4:
        return "promising"
    if r == 3:
        return "need_attention" if fm == 3 else "about_to_sleep"
    if fm == 5:
        return "cant_lose_them"
    if fm >= 3:
        return "at_risk"
    if r == 2 or fm == 2:
        return "hibernating"
    return "lost"


def lifecycle_stage(facts: CustomerFacts, base: BaseStats, now: datetime) -> LifecycleStage:
    """The stage by recency against the customer's own rhythm.

    Without orders: NEW if the first event is at most 90 days before `now` (or none is known),
    else DORMANT. With orders: NEW if the first order is at most 30 days before `now` and there are
    at most 2 orders. Otherwise rhythm = purchase_interval_days with 2+ orders, else the base's
    median interval (90 when that is 0); expected_gap = rhythm clamped to 14..180 days;
    ratio = recency_days / expected_gap: <= 1.5 ACTIVE, <= 3 AT_RISK, <= 6 DORMANT, else CHURNED.
    More than 365 days since the last order is always CHURNED.
    """
    if not facts.has_orders or facts.first_order_at is None:
        new_window = timedelta(days=NEW_WITHOUT_ORDERS_DAYS)
        if facts.first_event_at is None or now - facts.first_event_at <= new_window:
            return LifecycleStage.NEW
        return LifecycleStage.DORMANT
    if (
        now - facts.first_order_at <= timedelta(days=NEW_FIRST_ORDER_DAYS)
        and facts.frequency <= NEW_MAX_FREQUENCY
    ):
        return LifecycleStage.NEW
    recency = recency_days(facts, now)
    if recency > CHURNED_AFTER_DAYS:
        return LifecycleStage.CHURNED
    if facts.frequency >= 2:
        rhythm = purchase_interval_days(facts)
    else:
        rhythm = base.median_purchase_interval_days or DEFAULT_RHYTHM_DAYS
    expected_gap = min(MAX_EXPECTED_GAP_DAYS, max(MIN_EXPECTED_GAP_DAYS, rhythm))
    ratio = recency / expected_gap
    if ratio <= ACTIVE_MAX_RATIO:
        return LifecycleStage.ACTIVE
    if ratio <= AT_RISK_MAX_RATIO:
        return LifecycleStage.AT_RISK
    if ratio <= DORMANT_MAX_RATIO:
        return LifecycleStage.DORMANT
    return LifecycleStage.CHURNED


def price_percentile(table: tuple[int, ...], price: int) -> float:
    """(values < price + half the values == price) / len(table), in 0..1."""
    below = bisect_left(table, price)
    equal = bisect_right(table, price) - below
    return (below + equal / 2) / len(table)


def purchasing_power_by_category(facts: CustomerFacts, base: BaseStats) -> dict[str, float]:
    """Per category in the base's price table: the quantity-weighted mean percentile of the unit
    prices of the customer's order lines there (see price_percentile), rounded to 4 decimals."""
    result: dict[str, float] = {}
    for category, lines in facts.category_line_prices.items():
        table = base.category_price_percentiles.get(category)
        quantity = sum(q for _, q in lines)
        if not table or quantity <= 0:
            continue
        weighted = sum(price_percentile(table, price) * q for price, q in lines)
        result[category] = round(weighted / quantity, 4)
    return result


def purchasing_power(facts: CustomerFacts, by_category: Mapping[str, float]) -> float:
    """Mean of the per-category purchasing power weighted by the customer's paid spend in each
    category (unweighted if that spend is all 0), rounded to 4 decimals; 0.0 without categories."""
    if not by_category:
        return 0.0
    weights = {c: max(facts.spend_by_category.get(c, 0), 0) for c in by_category}
    total = sum(weights.values())
    if total == 0:
        return round(sum(by_category.values()) / len(by_category), 4)
    return round(sum(by_category[c] * w for c, w in weights.items()) / total, 4)


def price_sensitivity(facts: CustomerFacts) -> float:
    """Paid spend on discounted order lines / paid spend on all order lines, clamped to 0..1 and
    rounded to 4 decimals; 0.0 without spend. Refunds are not netted out."""
    if facts.gross_spend_minor <= 0:
        return 0.0
    share = facts.discounted_spend_minor / facts.gross_spend_minor
    return round(min(1.0, max(0.0, share)), 4)


def herfindahl(spend: Mapping[str, int]) -> float:
    """Sum of squared shares of positive spend (1.0 = all on one key), 4 decimals; 0.0 without."""
    positive = [v for v in spend.values() if v > 0]
    total = sum(positive)
    if total == 0:
        return 0.0
    return round(sum((v / total) ** 2 for v in positive), 4)


def top_categories(facts: CustomerFacts) -> list[str]:
    """Up to 3 categories by 3 x order lines + 2 x cart lines + 1 x view lines, ties by name."""
    scores: Counter[str] = Counter()
    for counts, weight in (
        (facts.order_lines_by_category, ORDER_LINE_WEIGHT),
        (facts.cart_lines_by_category, CART_LINE_WEIGHT),
        (facts.view_lines_by_category, VIEW_LINE_WEIGHT),
    ):
        for category, n in counts.items():
            scores[category] += weight * n
    ranked = sorted(scores, key=lambda c: (-scores[c], c))
    return ranked[:TOP_CATEGORIES]


def _preferred(uses: Mapping[_C, ChannelUse]) -> _C | None:
    """The most used channel; ties: the most recently used, then by name."""
    if not uses:
        return None
    by_recency = sorted(uses, key=lambda c: (uses[c].count, uses[c].last_at), reverse=True)
    best = uses[by_recency[0]]
    tied = [c for c in by_recency if (uses[c].count, uses[c].last_at) == (best.count, best.last_at)]
    return min(tied, key=str)


def build_portrait(facts: CustomerFacts, base: BaseStats, now: datetime) -> Portrait:
    """The portrait of one customer from their facts and the base statistics, as of `now`."""
    r, f, m = rfm_scores(facts, base.rfm, now)
    by_category = purchasing_power_by_category(facts, base)
    return Portrait(
        customer_id=facts.customer_id,
        computed_at=now,
        has_orders=facts.has_orders,
        recency_days=recency_days(facts, now),
        frequency=facts.frequency,
        monetary_minor=facts.net_spend_minor,
        average_order_value_minor=average_order_value_minor(facts),
        currency=facts.currency,
        r_score=r,
        f_score=f,
        m_score=m,
        rfm_segment=rfm_segment(r, f, m),
        lifecycle_stage=lifecycle_stage(facts, base, now),
        purchasing_power=purchasing_power(facts, by_category),
        purchasing_power_by_category=by_category,
        price_sensitivity=price_sensitivity(facts),
        brand_loyalty=herfindahl(facts.spend_by_brand),
        category_loyalty=herfindahl(facts.spend_by_category),
        top_categories=top_categories(facts),
        preferred_payment_channel=_preferred(facts.payment_channels),
        # Falls back to all events when no order names a sales channel.
        preferred_sales_channel=_preferred(facts.order_sales_channels)
        or _preferred(facts.event_sales_channels),
        first_order_at=facts.first_order_at,
        last_order_at=facts.last_order_at,
        last_event_at=facts.last_event_at,
        views=facts.views,
        carts=facts.carts,
        searches=facts.searches,
        refunds=facts.refunds,
        purchase_interval_days=purchase_interval_days(facts),
        base_computed_at=base.computed_at,
    )


def compute_portrait(customer_id: str, events: Iterable[Event], base: BaseStats, now: datetime) -> Portrait:
    """build_portrait(summarize(customer_id, events), base, now)."""
    return build_portrait(summarize(customer_id, events), base, now)


# --- base statistics ------------------------------------------------------------------------


def quintile_edges(values: Iterable[float]) -> tuple[float, ...]:
    """The 20/40/60/80th percentiles by linear interpolation (statistics.quantiles, "inclusive");
    four copies of the value for one value; () for none."""
    data = sorted(values)
    if not data:
        return ()
    if len(data) == 1:
        return (float(data[0]),) * 4
    return tuple(float(q) for q in statistics.quantiles(data, n=5, method="inclusive"))


def percentile_table(values: Iterable[int]) -> tuple[int, ...]:
    """The 0th..100th percentiles (101 ints) of the values: linear interpolation between the
    sorted values at position k/100 x (n - 1), rounded half to even; () for no values."""
    data = sorted(values)
    if not data:
        return ()
    last = len(data) - 1
    table: list[int] = []
    for k in range(101):
        position = Fraction(k * last, 100)
        i = int(position)
        low = data[i]
        high = data[min(i + 1, last)]
        table.append(round(low + (high - low) * (position - i)))
    return tuple(table)


def compute_base_stats(facts: Iterable[CustomerFacts], now: datetime) -> BaseStats:
    """Statistics over the whole base, as of `now`.

    rfm: quintile_edges of recency_days, frequency and net spend clamped at 0, over customers with
    orders. category_price_percentiles: percentile_table of the unit prices of all order lines of
    all customers per category, each line once whatever its quantity. median_purchase_interval_days:
    median of purchase_interval_days over customers with 2+ orders (0.0 if none).
    """
    recencies: list[float] = []
    frequencies: list[float] = []
    monetaries: list[float] = []
    intervals: list[float] = []
    prices: defaultdict[str, list[int]] = defaultdict(list)
    for customer in facts:
        for category, lines in customer.category_line_prices.items():
            prices[category].extend(price for price, _ in lines)
        if not customer.has_orders:
            continue
        recencies.append(recency_days(customer, now))
        frequencies.append(customer.frequency)
        monetaries.append(max(customer.net_spend_minor, 0))
        if customer.frequency >= 2:
            intervals.append(purchase_interval_days(customer))
    return BaseStats(
        computed_at=now,
        rfm=RfmEdges(
            recency_days=quintile_edges(recencies),
            frequency=quintile_edges(frequencies),
            monetary_minor=quintile_edges(monetaries),
        ),
        category_price_percentiles={c: percentile_table(prices[c]) for c in sorted(prices)},
        median_purchase_interval_days=float(statistics.median(intervals)) if intervals else 0.0,
    )
