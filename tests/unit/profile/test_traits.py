"""Portrait traits from raw events, against hand-computed values."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from services.profile.traits import (
    RFM_SEGMENTS,
    CustomerFacts,
    build_portrait,
    compute_base_stats,
    compute_portrait,
    percentile_table,
    rfm_segment,
    summarize,
)

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
EMPTY_BASE = BaseStats(computed_at=NOW)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def line(
    sku: str = "sku",
    quantity: int = 1,
    price: int = 100,
    *,
    list_price: int = 0,
    discount: int = 0,
    category: str = "",
    brand: str = "",
) -> Line:
    return Line(
        sku=sku,
        quantity=quantity,
        unit_price_minor=price,
        list_price_minor=list_price,
        discount_minor=discount,
        category=category,
        brand=brand,
    )


def order(
    event_id: str,
    days_ago: float,
    *lines: Line,
    order_id: str = "",
    currency: str = "GBP",
    pay: PaymentChannel | None = None,
    sales: SalesChannel | None = None,
    customer_id: str = "c1",
    anonymous_id: str = "",
) -> Event:
    return Event(
        event_id=event_id,
        type=EventType.ORDER,
        occurred_at=ago(days_ago),
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        currency=currency,
        order_id=order_id,
        payment_channel=pay,
        sales_channel=sales,
        lines=lines,
    )


def refund(event_id: str, days_ago: float, *lines: Line, order_id: str = "", currency: str = "GBP") -> Event:
    return Event(
        event_id=event_id,
        type=EventType.REFUND,
        occurred_at=ago(days_ago),
        customer_id="c1",
        currency=currency,
        order_id=order_id,
        lines=lines,
    )


def other(
    kind: EventType,
    event_id: str,
    days_ago: float,
    *lines: Line,
    sales: SalesChannel | None = None,
    customer_id: str = "c1",
    anonymous_id: str = "",
) -> Event:
    return Event(
        event_id=event_id,
        type=kind,
        occurred_at=ago(days_ago),
        customer_id=customer_id,
        anonymous_id=anonymous_id,
        sales_channel=sales,
        lines=lines,
    )


def portrait(events: list[Event], base: BaseStats = EMPTY_BASE, now: datetime = NOW) -> Portrait:
    return compute_portrait("c1", events, base, now)


# --- money: frequency, monetary, refunds, average order value ----------------------------------

# Order A pays 2x500 - 100 + 300 = 1200, order B pays 1000.
ORDER_A = order("e-a", 20, line("a1", 2, 500, discount=100), line("a2", 1, 300), order_id="A")
ORDER_B = order("e-b", 10, line("b1", 1, 1000), order_id="B")


def test_orders_sum_paid_lines() -> None:
    p = portrait([ORDER_A, ORDER_B])
    assert (p.has_orders, p.frequency, p.monetary_minor, p.average_order_value_minor) == (True, 2, 2200, 1100)
    assert p.currency == "GBP"
    assert (p.first_order_at, p.last_order_at) == (ago(20), ago(10))


def test_refund_by_lines_takes_back_their_paid_amount() -> None:
    p = portrait([ORDER_A, ORDER_B, refund("r1", 5, line("a2", 1, 300))])
    assert (p.frequency, p.monetary_minor, p.average_order_value_minor, p.refunds) == (2, 1900, 950, 1)


def test_refund_by_order_id_takes_back_the_whole_order_which_still_counts() -> None:
    p = portrait([ORDER_A, ORDER_B, refund("r1", 5, order_id="A")])
    assert (p.frequency, p.monetary_minor, p.average_order_value_minor) == (2, 1000, 500)


def test_refund_of_an_unknown_order_takes_back_nothing_until_the_order_arrives() -> None:
    early = portrait([ORDER_B, refund("r1", 5, order_id="A")])
    assert (early.frequency, early.monetary_minor, early.refunds) == (1, 1000, 1)
    assert portrait([ORDER_B, refund("r1", 5, order_id="A"), ORDER_A]).monetary_minor == 1000


def test_refund_arriving_before_its_order_gives_the_same_portrait() -> None:
    before = refund("r1", 30, order_id="A")  # occurred and listed before order A
    after = refund("r1", 5, order_id="A")
    p_before = portrait([before, ORDER_A, ORDER_B])
    p_after = portrait([ORDER_A, ORDER_B, after])
    assert p_before.monetary_minor == p_after.monetary_minor == 1000


def test_two_lineless_refunds_of_one_order_reverse_it_once() -> None:
    p = portrait([ORDER_A, ORDER_B, refund("r1", 5, order_id="A"), refund("r2", 4, order_id="A")])
    assert (p.monetary_minor, p.refunds) == (1000, 2)


def test_refund_with_lines_and_order_id_refunds_the_lines_only() -> None:
    p = portrait([ORDER_A, refund("r1", 5, line("a2", 1, 300), order_id="A")])
    assert p.monetary_minor == 900


def test_refund_without_currency_follows_its_order() -> None:
    eur = order("e-eur", 15, line("x", 1, 700), order_id="E", currency="EUR")
    # GBP is the customer's currency (2 orders against 1); the refund reverses a EUR order.
    p = portrait([ORDER_A, ORDER_B, eur, refund("r1", 5, line("x", 1, 700), order_id="E", currency="")])
    assert (p.currency, p.frequency, p.monetary_minor) == ("GBP", 3, 2200)


def test_monetary_may_go_negative_and_average_follows() -> None:
    p = portrait([order("o1", 10, line("x", 1, 1000)), refund("r1", 5, line("x", 1, 1500))])
    assert (p.monetary_minor, p.average_order_value_minor) == (-500, -500)


@pytest.mark.parametrize(
    ("prices", "expected"),
    [((2, 3), 2), ((3, 4), 4), ((1, 1, 1), 1)],  # 5/2 = 2.5 -> 2, 7/2 = 3.5 -> 4 (half to even), 3/3
)
def test_average_order_value_rounds_half_to_even(prices: tuple[int, ...], expected: int) -> None:
    events = [order(f"o{i}", 10 + i, line("x", 1, p)) for i, p in enumerate(prices)]
    assert portrait(events).average_order_value_minor == expected


def test_negative_average_rounds_half_to_even() -> None:
    # Net -5 over 2 orders = -2.5 -> -2.
    events = [
        order("o1", 10, line("x", 1, 1)),
        order("o2", 9, line("x", 1, 2)),
        refund("r", 1, line("x", 1, 8)),
    ]
    p = portrait(events)
    assert (p.monetary_minor, p.average_order_value_minor) == (-5, -2)


def test_duplicate_order_id_counts_once_keeping_the_smallest_event_id() -> None:
    first = order("e-2", 10, line("x", 1, 999), order_id="O1", pay=PaymentChannel.ALIPAY)
    second = order("e-1", 12, line("x", 1, 100), order_id="O1", pay=PaymentChannel.BANK_CARD)
    p = portrait([first, second])
    assert (p.frequency, p.monetary_minor) == (1, 100)
    assert (p.first_order_at, p.last_order_at) == (ago(12), ago(12))
    assert p.preferred_payment_channel is PaymentChannel.BANK_CARD


def test_orders_without_order_id_are_keyed_by_event_id() -> None:
    p = portrait([order("o1", 10, line("x", 1, 100)), order("o2", 10, line("x", 1, 100))])
    assert (p.frequency, p.monetary_minor) == (2, 200)


def test_currency_is_the_most_common_with_ties_alphabetical_and_blank_joins_it() -> None:
    events = [
        order("g1", 10, line("x", 1, 1), currency="GBP"),
        order("g2", 10, line("x", 1, 2), currency="GBP"),
        order("e1", 10, line("x", 1, 40), currency="EUR"),
        order("e2", 10, line("x", 1, 80), currency="EUR"),
        order("u1", 10, line("x", 1, 1600), currency="USD"),
        order("n1", 10, line("x", 1, 10000), currency=""),
        refund("r-gbp", 5, line("x", 1, 1), currency="GBP"),
        refund("r-eur", 5, line("x", 1, 20), currency="EUR"),
        refund("r-none", 5, line("x", 1, 300), currency=""),
    ]
    p = portrait(events)
    # EUR and GBP tie on two orders each; EUR sorts first. 40 + 80 + 10000 - 20 - 300.
    assert (p.currency, p.frequency, p.monetary_minor, p.average_order_value_minor) == ("EUR", 6, 9800, 1633)


def test_currency_of_a_customer_with_refunds_only_comes_from_the_refunds() -> None:
    p = portrait([refund("r1", 5, line("x", 1, 300), currency="USD")])
    assert (p.currency, p.has_orders, p.frequency, p.monetary_minor, p.refunds) == ("USD", False, 0, -300, 1)


# --- recency, rhythm ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_ago", "expected"),
    [(10.9, 10), (10.0, 10), (0.5, 0), (-1 / 12, 0), (400.01, 400)],
)
def test_recency_is_floored_whole_days_and_never_negative(days_ago: float, expected: int) -> None:
    assert portrait([order("o1", days_ago, line())]).recency_days == expected


def test_recency_without_orders_is_minus_one() -> None:
    assert portrait([other(EventType.VIEW, "v1", 3)]).recency_days == -1


def test_purchase_interval_is_the_span_over_gaps() -> None:
    events = [order("o1", 100, line()), order("o2", 70, line()), order("o3", 10, line())]
    assert portrait(events).purchase_interval_days == 45.0
    assert portrait([order("o1", 100, line())]).purchase_interval_days == 0.0
    assert portrait([order("o1", 100, line()), order("o2", 99.5, line())]).purchase_interval_days == 0.5


# --- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_event_days_ago", "expected"),
    [(90, LifecycleStage.NEW), (90.01, LifecycleStage.DORMANT), (1, LifecycleStage.NEW)],
)
def test_lifecycle_without_orders(first_event_days_ago: float, expected: LifecycleStage) -> None:
    events = [other(EventType.VIEW, "v1", first_event_days_ago), other(EventType.VIEW, "v2", 0)]
    assert portrait(events).lifecycle_stage is expected


def test_lifecycle_with_nothing_known_is_new() -> None:
    assert portrait([]).lifecycle_stage is LifecycleStage.NEW


def test_lifecycle_new_after_a_recent_first_order_with_at_most_two_orders() -> None:
    assert portrait([order("o1", 30, line()), order("o2", 29, line())]).lifecycle_stage is LifecycleStage.NEW
    # Just over 30 days: judged by rhythm (1 day, clamped to 14): 29 / 14 > 1.5.
    late = portrait([order("o1", 30.01, line()), order("o2", 29, line())])
    assert late.lifecycle_stage is LifecycleStage.AT_RISK
    # A third order ends NEW: rhythm 10 -> gap 14, recency 10 -> ACTIVE.
    three = portrait([order("o1", 30, line()), order("o2", 20, line()), order("o3", 10, line())])
    assert three.lifecycle_stage is LifecycleStage.ACTIVE


@pytest.mark.parametrize(
    ("median", "recency", "expected"),
    [
        # Median 0 -> rhythm 90 days: ACTIVE up to 135, AT_RISK up to 270, DORMANT up to 540 (but > 365 churns).
        (0.0, 40, LifecycleStage.ACTIVE),
        (0.0, 135, LifecycleStage.ACTIVE),
        (0.0, 136, LifecycleStage.AT_RISK),
        (0.0, 270, LifecycleStage.AT_RISK),
        (0.0, 271, LifecycleStage.DORMANT),
        (0.0, 365, LifecycleStage.DORMANT),
        (0.0, 366, LifecycleStage.CHURNED),
        # Median 10 -> gap clamped up to 14: 21 (still NEW at that age), 42, 84.
        (10.0, 42, LifecycleStage.AT_RISK),
        (10.0, 43, LifecycleStage.DORMANT),
        (10.0, 84, LifecycleStage.DORMANT),
        (10.0, 85, LifecycleStage.CHURNED),
        # Median 400 -> gap clamped down to 180: 270, then 365 caps it.
        (400.0, 270, LifecycleStage.ACTIVE),
        (400.0, 271, LifecycleStage.AT_RISK),
        (400.0, 365, LifecycleStage.AT_RISK),
        (400.0, 366, LifecycleStage.CHURNED),
    ],
)
def test_lifecycle_of_one_order_customers_uses_the_base_rhythm(
    median: float, recency: int, expected: LifecycleStage
) -> None:
    base = BaseStats(computed_at=NOW, median_purchase_interval_days=median)
    assert portrait([order("o1", recency + 0.5, line())], base).lifecycle_stage is expected


@pytest.mark.parametrize(
    ("recency", "expected"),
    [(60, LifecycleStage.ACTIVE), (61, LifecycleStage.AT_RISK), (120, LifecycleStage.AT_RISK),
     (121, LifecycleStage.DORMANT), (240, LifecycleStage.DORMANT), (241, LifecycleStage.CHURNED)],
)  # fmt: skip
def test_lifecycle_of_repeat_customers_uses_their_own_rhythm(recency: int, expected: LifecycleStage) -> None:
    # Orders 40 days apart -> gap 40: ACTIVE up to 60, AT_RISK up to 120, DORMANT up to 240.
    events = [order("o1", recency + 40, line()), order("o2", recency, line())]
    base = BaseStats(computed_at=NOW, median_purchase_interval_days=5.0)  # ignored: own rhythm
    assert portrait(events, base).lifecycle_stage is expected


@pytest.mark.parametrize(("recency", "expected"), [(21, LifecycleStage.ACTIVE), (22, LifecycleStage.AT_RISK)])
def test_lifecycle_short_rhythm_is_clamped_to_fourteen_days(recency: int, expected: LifecycleStage) -> None:
    # Orders 5 days apart -> rhythm 5 -> gap 14: ACTIVE up to 21 days.
    events = [
        order("o1", recency + 10, line()),
        order("o2", recency + 5, line()),
        order("o3", recency, line()),
    ]
    assert portrait(events).lifecycle_stage is expected


# --- RFM ---------------------------------------------------------------------------------------


def _rfm_base_customers() -> dict[str, list[Event]]:
    """Recency 10/20/30/40/50, frequency 5/3/2/1/1, monetary 1000/600/300/100/-500, plus a browser."""
    return {
        "c1": [order(f"c1-{d}", d, line("x", 1, 200)) for d in (10, 20, 30, 40, 50)],  # interval 10
        "c2": [order(f"c2-{d}", d, line("x", 1, 200)) for d in (20, 40, 60)],  # interval 20
        "c3": [order(f"c3-{d}", d, line("x", 1, 150)) for d in (30, 90)],  # interval 60
        "c4": [order("c4-1", 40, line("x", 1, 100))],
        "c5": [order("c5-1", 50, line("x", 1, 100)), refund("c5-r", 45, line("x", 1, 600))],
        "c6": [other(EventType.VIEW, "c6-v", 3)],
    }


def test_base_stats_rfm_edges_and_median_interval() -> None:
    facts = [summarize(cid, evs) for cid, evs in _rfm_base_customers().items()]
    base = compute_base_stats(facts, NOW)
    # Inclusive quintiles of 5 sorted values sit at positions 0.8, 1.6, 2.4, 3.2.
    assert base.rfm == RfmEdges(
        recency_days=(18.0, 26.0, 34.0, 42.0),
        frequency=(1.0, 1.6, 2.4, 3.4),
        monetary_minor=(80.0, 220.0, 420.0, 680.0),  # over 0 (c5 clamped), 100, 300, 600, 1000
    )
    assert base.median_purchase_interval_days == 20.0  # median of 10, 20, 60
    assert base.computed_at == NOW


@pytest.mark.parametrize(
    ("customer", "scores", "segment"),
    [
        ("c1", (5, 5, 5), "champions"),
        ("c2", (4, 4, 4), "loyal"),
        ("c3", (3, 3, 3), "need_attention"),
        ("c4", (2, 1, 2), "hibernating"),
        ("c5", (1, 1, 1), "lost"),  # negative monetary scores as 0
        ("c6", (0, 0, 0), ""),
    ],
)
def test_rfm_scores_against_the_base(customer: str, scores: tuple[int, int, int], segment: str) -> None:
    customers = _rfm_base_customers()
    base = compute_base_stats((summarize(cid, evs) for cid, evs in customers.items()), NOW)
    p = compute_portrait(customer, customers[customer], base, NOW)
    assert ((p.r_score, p.f_score, p.m_score), p.rfm_segment) == (scores, segment)


def test_rfm_scores_negative_monetary_as_zero() -> None:
    # Hand-made edges below zero make the clamp visible: 0 is above -1000 and -400 -> M 3; -500 would be 2.
    base = BaseStats(computed_at=NOW, rfm=RfmEdges((1.0,) * 4, (1.0,) * 4, (-1000.0, -400.0, 0.0, 100.0)))
    p = portrait([order("o1", 10, line("x", 1, 100)), refund("r1", 5, line("x", 1, 600))], base)
    assert (p.monetary_minor, p.m_score) == (-500, 3)


def test_rfm_unscored_without_edges() -> None:
    p = portrait([order("o1", 10, line())])
    assert (p.r_score, p.f_score, p.m_score, p.rfm_segment) == (0, 0, 0, "")


def test_rfm_with_a_single_customer_base() -> None:
    events = [order("o1", 10, line("x", 1, 500))]
    base = compute_base_stats([summarize("c1", events)], NOW)
    assert base.rfm == RfmEdges((10.0,) * 4, (1.0,) * 4, (500.0,) * 4)
    p = portrait(events, base)
    # No edge is strictly below any of the customer's values: R 5, F 1, M 1.
    assert (p.r_score, p.f_score, p.m_score, p.rfm_segment) == (5, 1, 1, "new_customers")


def test_rfm_scores_at_the_extremes() -> None:
    edges = (1.0, 2.0, 3.0, 4.0)
    base = BaseStats(computed_at=NOW, rfm=RfmEdges(edges, edges, edges))
    worst = portrait([order("o1", 4.5, line("x", 1, 1))], base)  # recency 4 = edge: 3 edges below
    assert (worst.r_score, worst.f_score, worst.m_score) == (2, 1, 1)
    best = portrait([order(f"o{i}", i, line("x", 1, 9)) for i in range(5)], base)
    assert (best.recency_days, best.r_score, best.f_score, best.m_score) == (0, 5, 5, 5)


# FM 1..5 for each R 5..1, as in the docstring of rfm_segment.
SEGMENT_GRID = {
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
}


def test_rfm_segment_grid_is_exhaustive_and_uses_fm_rounded_half_up() -> None:
    seen = set()
    for r, f, m in itertools.product(range(1, 6), repeat=3):
        fm = (f + m + 1) // 2
        name = rfm_segment(r, f, m)
        assert name == SEGMENT_GRID[r][fm - 1], (r, f, m)
        seen.add(name)
    assert seen == set(RFM_SEGMENTS)
    assert len(RFM_SEGMENTS) == len(set(RFM_SEGMENTS)) == 11


@pytest.mark.parametrize(
    ("r", "f", "m", "expected"),
    [
        (5, 4, 3, "champions"),  # FM 3.5 -> 4
        (5, 3, 2, "potential_loyalists"),  # FM 2.5 -> 3
        (5, 1, 2, "potential_loyalists"),  # FM 1.5 -> 2
        (5, 1, 1, "new_customers"),
        (3, 2, 3, "need_attention"),  # FM 2.5 -> 3
        (1, 1, 2, "hibernating"),  # FM 1.5 -> 2
        (1, 5, 4, "cant_lose_them"),  # FM 4.5 -> 5
    ],
)
def test_rfm_segment_examples(r: int, f: int, m: int, expected: str) -> None:
    assert rfm_segment(r, f, m) == expected


def test_rfm_segment_unscored_and_out_of_range() -> None:
    assert rfm_segment(0, 0, 0) == ""
    assert rfm_segment(5, 0, 5) == ""
    with pytest.raises(ValueError):
        rfm_segment(6, 1, 1)
    with pytest.raises(ValueError):
        rfm_segment(1, -1, 1)


# --- purchasing power --------------------------------------------------------------------------


def test_percentile_table_interpolates_and_rounds_half_to_even() -> None:
    table = percentile_table([500, 100, 400, 200, 300])
    assert len(table) == 101
    # Position k/25 between sorted values 100..500.
    assert (table[0], table[1], table[10], table[13], table[25], table[50], table[100]) == (
        100, 104, 140, 152, 200, 300, 500,
    )  # fmt: skip
    halves = percentile_table([1, 0])
    assert (halves[49], halves[50], halves[51], halves[100]) == (0, 0, 1, 1)  # 0.5 -> 0
    assert percentile_table([7]) == (7,) * 101
    assert percentile_table([]) == ()


def test_base_price_percentiles_count_each_line_once_across_customers() -> None:
    facts = [
        summarize(
            "a", [order("a1", 5, line("m1", 10, 100, category="mugs"), line("m2", 1, 300, category="mugs"))]
        ),
        summarize("b", [order("b1", 5, line("m3", 1, 200, category="mugs"), line("t", 1, 50))]),
        summarize("c", [other(EventType.VIEW, "c1", 5, line("m9", 1, 999, category="mugs"))]),
    ]
    tables = compute_base_stats(facts, NOW).category_price_percentiles
    # Prices 100, 200, 300 (quantity ignored, views ignored, uncategorised line left out).
    assert list(tables) == ["mugs"]
    mugs = tables["mugs"]
    assert (mugs[0], mugs[25], mugs[50], mugs[75], mugs[100]) == (100, 150, 200, 250, 300)


PP_BASE = BaseStats(
    computed_at=NOW,
    category_price_percentiles={
        "toys": tuple(range(0, 1001, 10)),  # 0, 10, ..., 1000
        "books": (100,) * 101,
    },
)


def test_purchasing_power_by_category_and_overall() -> None:
    events = [
        order("o1", 10, line("t1", 1, 500, category="toys"), line("b1", 2, 50, category="books")),
        order("o2", 5, line("t2", 3, 2000, category="toys"), line("g1", 1, 100, category="garden")),
    ]
    p = portrait(events, PP_BASE)
    # toys: 500 -> (50 + 1/2) / 101 = 0.5; 2000 -> 1.0; weighted by quantity (1, 3) -> 0.875.
    # books: 50 is below all 101 values -> 0.0. garden is not in the base: skipped.
    assert p.purchasing_power_by_category == {"books": 0.0, "toys": 0.875}
    # Weighted by paid spend toys 6500, books 100: 0.875 * 6500 / 6600 = 0.86174...
    assert p.purchasing_power == 0.8617


@pytest.mark.parametrize(
    ("price", "expected"),
    [(0, 0.005), (505, 0.505), (1000, 0.995), (5, 0.0099), (99, 0.099)],
)
def test_purchasing_power_percentile_of_a_price(price: int, expected: float) -> None:
    # 0 -> 0.5/101; 505 -> 51/101; 1000 -> 100.5/101; 5 -> 1/101; 99 -> 10/101.
    p = portrait([order("o1", 1, line("t", 1, price, category="toys"))], PP_BASE)
    assert p.purchasing_power_by_category == {"toys": expected}
    assert p.purchasing_power == expected


def test_purchasing_power_equal_prices_sit_in_the_middle() -> None:
    p = portrait([order("o1", 1, line("b", 1, 100, category="books"))], PP_BASE)
    assert p.purchasing_power_by_category == {"books": 0.5}


def test_purchasing_power_without_categories_in_the_base_is_zero() -> None:
    p = portrait([order("o1", 1, line("g", 1, 100, category="garden"))], PP_BASE)
    assert (p.purchasing_power_by_category, p.purchasing_power) == ({}, 0.0)


# --- price sensitivity, loyalty, interests, channels -------------------------------------------


def test_price_sensitivity_is_the_paid_share_on_discounted_lines() -> None:
    events = [
        order(
            "o1",
            5,
            line("a", 2, 500, discount=100),  # 900, discounted by a line discount
            line("b", 1, 300, list_price=400),  # 300, below list price
            line("c", 1, 800, list_price=800),  # 800, full price
            line("d", 1, 0, list_price=100),  # free: paid 0, not "discounted"
        ),
        refund("r1", 1, line("c", 1, 800)),  # refunds do not change the share
    ]
    assert portrait(events).price_sensitivity == 0.6  # 1200 / 2000


def test_price_sensitivity_rounds_to_four_decimals_and_is_zero_without_spend() -> None:
    events = [order("o1", 5, line("a", 1, 100, list_price=200), line("b", 1, 200))]
    assert portrait(events).price_sensitivity == 0.3333
    assert portrait([order("o1", 5, line("a", 1, 0))]).price_sensitivity == 0.0
    assert portrait([]).price_sensitivity == 0.0


def test_loyalty_is_the_herfindahl_index_of_paid_spend() -> None:
    events = [
        order(
            "o1",
            5,
            line("a", 2, 300, brand="A", category="x"),
            line("b", 1, 300, brand="B", category="x"),
            line("c", 1, 100, brand="C", category="y"),
            line("d", 1, 1000),  # no brand, no category: left out
        ),
        order("o2", 4, line("e", 1, 400, category="y")),
    ]
    p = portrait(events)
    assert p.brand_loyalty == 0.46  # shares 0.6, 0.3, 0.1
    assert p.category_loyalty == 0.5408  # x 900, y 500: (81 + 25) / 196 = 0.54081...


def test_loyalty_of_one_key_is_one_and_of_none_is_zero() -> None:
    one = portrait([order("o1", 5, line("a", 1, 900, category="x", brand="A"))])
    assert (one.category_loyalty, one.brand_loyalty) == (1.0, 1.0)
    assert portrait([order("o1", 5, line("a", 1, 900))]).brand_loyalty == 0.0


def test_top_categories_score_orders_carts_views_with_ties_by_name() -> None:
    events = [
        order("o1", 5, line("t", 1, 100, category="toys"), line("n", 5, 100)),  # toys 3
        other(EventType.ADD_TO_CART, "c1", 4, line("b", category="books")),  # books 2
        other(EventType.VIEW, "v1", 3, line("b", category="books"), line("g", category="garden")),  # books 3
        # garden 2, art 1
        other(EventType.VIEW, "v2", 2, line("g", category="garden"), line("a", category="art")),
        other(EventType.VIEW, "v3", 2, line("x"), line("y"), line("z")),  # uncategorised
    ]
    assert portrait(events).top_categories == ["books", "toys", "garden"]
    assert portrait([]).top_categories == []


def test_preferred_payment_channel_most_used_then_most_recent() -> None:
    events = [
        order("o1", 30, line(), pay=PaymentChannel.ALIPAY),
        order("o2", 20, line(), pay=PaymentChannel.WECHAT_PAY),
        order("o3", 10, line(), pay=PaymentChannel.ALIPAY),
        order("o4", 5, line(), pay=PaymentChannel.WECHAT_PAY),
        order("o5", 1, line()),
    ]
    assert portrait(events).preferred_payment_channel is PaymentChannel.WECHAT_PAY
    assert portrait(events[:3]).preferred_payment_channel is PaymentChannel.ALIPAY
    assert portrait([order("o1", 1, line())]).preferred_payment_channel is None


def test_preferred_channel_tie_at_the_same_moment_goes_by_name() -> None:
    events = [
        order("o1", 3, line(), pay=PaymentChannel.WECHAT_PAY, sales=SalesChannel.WEB),
        order("o2", 3, line(), pay=PaymentChannel.BANK_CARD, sales=SalesChannel.APP),
    ]
    p = portrait(events)
    assert p.preferred_payment_channel is PaymentChannel.BANK_CARD
    assert p.preferred_sales_channel is SalesChannel.APP


def test_preferred_sales_channel_from_orders_else_from_all_events() -> None:
    views = [
        other(EventType.VIEW, "v1", 9, sales=SalesChannel.APP),
        other(EventType.VIEW, "v2", 8, sales=SalesChannel.APP),
        other(EventType.SEARCH, "s1", 7, sales=SalesChannel.MINI_PROGRAM),
    ]
    orders = [
        order("o1", 6, line(), sales=SalesChannel.WEB),
        order("o2", 5, line(), sales=SalesChannel.WEB),
        order("o3", 4, line(), sales=SalesChannel.MARKETPLACE),
    ]
    assert portrait(views + orders).preferred_sales_channel is SalesChannel.WEB
    assert portrait(views).preferred_sales_channel is SalesChannel.APP
    # Orders that name no channel fall back to all events.
    assert portrait([*views, order("o9", 1, line())]).preferred_sales_channel is SalesChannel.APP
    assert portrait([order("o9", 1, line())]).preferred_sales_channel is None


# --- counts, customers without orders, merges --------------------------------------------------


def test_event_counts_and_last_event_at() -> None:
    events = [
        other(EventType.SEARCH, "s-late", 0.25),  # listed first, yet the latest
        other(EventType.VIEW, "v1", 9),
        other(EventType.VIEW, "v2", 8),
        other(EventType.ADD_TO_CART, "c1", 7),
        other(EventType.SEARCH, "s1", 6),
        ORDER_A,
        refund("r1", 2, order_id="A"),
        refund("r2", 1, line("zz", 1, 5)),
    ]
    p = portrait(events)
    assert (p.views, p.carts, p.searches, p.refunds) == (2, 1, 2, 2)
    assert p.last_event_at == ago(0.25)


def test_customer_without_orders() -> None:
    events = [other(EventType.VIEW, "v1", 10, line("t", category="toys")), other(EventType.SEARCH, "s1", 2)]
    base = BaseStats(
        computed_at=ago(1),
        rfm=RfmEdges((1.0, 2.0, 3.0, 4.0), (1.0, 2.0, 3.0, 4.0), (1.0, 2.0, 3.0, 4.0)),
        category_price_percentiles={"toys": (100,) * 101},
        median_purchase_interval_days=30.0,
    )
    assert portrait(events, base) == Portrait(
        customer_id="c1",
        computed_at=NOW,
        lifecycle_stage=LifecycleStage.NEW,
        top_categories=["toys"],
        last_event_at=ago(2),
        views=1,
        searches=1,
        base_computed_at=ago(1),
    )


def test_no_events_at_all() -> None:
    assert summarize("c1", []) == CustomerFacts(customer_id="c1")
    assert portrait([]) == Portrait(customer_id="c1", computed_at=NOW, base_computed_at=NOW)


def test_merged_anonymous_events_are_simply_included() -> None:
    anon = "anon-7"
    events = [
        other(EventType.VIEW, "v-anon", 20, line("t", category="toys"), customer_id="", anonymous_id=anon),
        other(
            EventType.ADD_TO_CART, "c-anon", 19, line("t", category="toys"), customer_id="", anonymous_id=anon
        ),
        order("o-anon", 18, line("t", 1, 400, category="toys"), customer_id="", anonymous_id=anon),
        order("o-known", 3, line("b", 1, 600, category="books")),
    ]
    p = portrait(events)
    assert (p.frequency, p.monetary_minor, p.views, p.carts) == (2, 1000, 1, 1)
    assert p.first_order_at == ago(18)
    assert p.top_categories == ["toys", "books"]  # toys 1 + 2 + 3, books 3


# --- a whole portrait, and order independence -------------------------------------------------

FULL_EVENTS = [
    order(
        "e-01",
        60,
        line("t1", 2, 1500, list_price=2000, category="toys", brand="Acme"),  # 3000, discounted
        line("b1", 1, 1000, category="books", brand="Pengu"),  # 1000
        order_id="O-1",
        pay=PaymentChannel.ALIPAY,
        sales=SalesChannel.APP,
    ),
    order(
        "e-02",
        30,
        line("t2", 1, 2000, category="toys", brand="Acme"),  # 2000
        order_id="O-2",
        pay=PaymentChannel.BANK_CARD,
        sales=SalesChannel.WEB,
    ),
    order("e-03", 30, line("t2", 1, 9999, category="toys"), order_id="O-2"),  # duplicate of O-2: ignored
    order(
        "e-04",
        20,
        line("b2", 4, 250, discount=200, category="books", brand="Pengu"),  # 800, discounted
        order_id="O-3",
        pay=PaymentChannel.BANK_CARD,
        sales=SalesChannel.APP,
    ),
    refund("e-05", 50, order_id="O-3"),  # before its order: reverses 800
    refund("e-06", 15, line("t1", 1, 1500)),  # 1500
    other(EventType.VIEW, "e-07", 12, line("g1", category="garden"), sales=SalesChannel.WEB),
    other(EventType.VIEW, "e-08", 11, line("g1", category="garden"), line("t1", category="toys")),
    other(EventType.ADD_TO_CART, "e-09", 10, line("g1", category="garden")),
    other(EventType.SEARCH, "e-10", 5.5),
]

FULL_BASE = BaseStats(
    computed_at=ago(1),
    rfm=RfmEdges(
        recency_days=(10.0, 30.0, 60.0, 120.0),
        frequency=(1.0, 2.0, 3.0, 4.0),
        monetary_minor=(1000.0, 2000.0, 3000.0, 8000.0),
    ),
    category_price_percentiles={"toys": tuple(range(0, 4001, 40)), "books": tuple(range(0, 2020, 20))},
    median_purchase_interval_days=12.0,
)


def test_full_portrait() -> None:
    # Gross 3000 + 1000 + 2000 + 800 = 6800; refunds 800 + 1500 -> net 4500 over 3 orders.
    # Recency 20 -> R 4 (edge 10 below); F 3 -> 3 (1, 2 below); M 4500 -> 4 (three edges below); FM 3.5 -> 4.
    # Rhythm (60 - 20) / 2 = 20 days; recency 20 -> ratio 1 -> ACTIVE.
    # toys (0, 40 .. 4000): 1500 -> 38/101 (x2), 2000 -> 50.5/101 (x1) -> 126.5/303 = 0.417492.
    # books (0, 20 .. 2000): 1000 -> 50.5/101 (x1), 250 -> 13/101 (x4) -> 102.5/505 = 0.202970.
    # Overall by paid spend toys 5000, books 1800: (0.417492*5000 + 0.202970*1800) / 6800 = 0.360707.
    # Discounted 3000 + 800 of 6800 = 0.5588. Brands Acme 5000, Pengu 1800: 0.5406 + 0.0701 = 0.6107.
    # Interests: toys 3+3+1 = 7, garden 1+1+2 = 4, books 3+3 = 6.
    assert compute_portrait("c1", FULL_EVENTS, FULL_BASE, NOW) == Portrait(
        customer_id="c1",
        computed_at=NOW,
        has_orders=True,
        recency_days=20,
        frequency=3,
        monetary_minor=4500,
        average_order_value_minor=1500,
        currency="GBP",
        r_score=4,
        f_score=3,
        m_score=4,
        rfm_segment="loyal",
        lifecycle_stage=LifecycleStage.ACTIVE,
        purchasing_power=0.3607,
        purchasing_power_by_category={"books": 0.203, "toys": 0.4175},
        price_sensitivity=0.5588,
        brand_loyalty=0.6107,
        category_loyalty=0.6107,
        top_categories=["toys", "books", "garden"],
        preferred_payment_channel=PaymentChannel.BANK_CARD,
        preferred_sales_channel=SalesChannel.APP,
        first_order_at=ago(60),
        last_order_at=ago(20),
        last_event_at=ago(5.5),
        views=2,
        carts=1,
        searches=1,
        refunds=2,
        purchase_interval_days=20.0,
        base_computed_at=ago(1),
    )


def test_compute_portrait_is_build_portrait_of_summarize() -> None:
    facts = summarize("c1", FULL_EVENTS)
    assert build_portrait(facts, FULL_BASE, NOW) == compute_portrait("c1", FULL_EVENTS, FULL_BASE, NOW)
    assert (facts.gross_spend_minor, facts.refunded_minor, facts.net_spend_minor) == (6800, 2300, 4500)
    assert facts.order_times == (ago(60), ago(30), ago(20))


@settings(max_examples=200, deadline=None)
@given(st.permutations(FULL_EVENTS))
def test_summarize_does_not_depend_on_event_order(events: list[Event]) -> None:
    expected = summarize("c1", FULL_EVENTS)
    facts = summarize("c1", events)
    assert facts == expected
    assert repr(facts) == repr(expected)  # same dict ordering too, not only equal
    assert compute_portrait("c1", events, FULL_BASE, NOW) == build_portrait(expected, FULL_BASE, NOW)


def test_base_stats_do_not_depend_on_customer_order() -> None:
    customers = _rfm_base_customers()
    facts = [summarize(cid, evs) for cid, evs in customers.items()]
    assert compute_base_stats(reversed(facts), NOW) == compute_base_stats(facts, NOW)
