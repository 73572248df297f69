"""Reports from recorded deliveries and order events: the textbook comparison exactly, holdout and uplift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from services.campaign.attribution import Order, Recipient, Response, attribute
from services.campaign.report import CampaignReport, build, compare, money, percent, rows

LAUNCH = datetime(2011, 11, 1, 9, tzinfo=UTC)
WEEK = timedelta(days=7)
PER_RESPONDER = 21_000  # 210.00 GBP in pence


def recorded(prefix: str, targets: int, cost_minor: int, responders: int) -> tuple[list[Recipient], list[Order]]:
    """Deliveries as a campaign records them, and the order events that follow (some of which must not count)."""
    recipients, orders = [], []
    for i in range(targets):
        sent = LAUNCH + timedelta(seconds=i)
        recipients.append(Recipient(f"{prefix}-{i}", False, sent, sent + timedelta(minutes=2), cost_minor))
        customer = f"{prefix}-{i}"
        if i < responders:
            orders.append(Order(customer, f"{customer}-first", sent + timedelta(days=3), PER_RESPONDER, "GBP"))
            # A second order in the window: one response per customer, so its revenue is not the campaign's.
            orders.append(Order(customer, f"{customer}-again", sent + timedelta(days=5), 9_999, "GBP"))
        elif i < responders + 50:
            # Bought, but before the message or after the window.
            orders.append(Order(customer, f"{customer}-before", sent - timedelta(hours=1), 5_000, "GBP"))
            orders.append(Order(customer, f"{customer}-late", sent + WEEK, 5_000, "GBP"))
    orders.append(Order("not-a-recipient", "x", LAUNCH + timedelta(days=1), 50_000, "GBP"))
    return recipients, orders


def campaign(name: str, targets: int, cost_minor: int, responders: int) -> CampaignReport:
    recipients, orders = recorded(name, targets, cost_minor, responders)
    attributed = attribute(recipients, orders, launched_at=LAUNCH, window=WEEK, currency="GBP")
    return build(name, name, "GBP", recipients, attributed.responses)


TEXTBOOK_TABLE = """\
(GBP)                            blanket  precision
targets                           20,000      2,000
sent                              20,000      2,000
delivered                         20,000      2,000
cost per contact                    5.00      12.50
cost                          100,000.00  25,000.00
responses                            474        222
response rate                      2.37%     11.10%
revenue                        99,540.00  46,620.00
revenue per responder             210.00     210.00
ROI: revenue / cost               99.54%    186.48%
ROI: (revenue - cost) / cost      -0.46%     86.48%
holdout                                0          0
holdout response rate                  -          -
uplift over holdout                    -          -
uplift 95% CI                          -          -
incremental revenue                    -          -
"""


def test_textbook_blanket_versus_precision_campaign_exactly() -> None:
    blanket = campaign("blanket", 20_000, 500, 474)
    precision = campaign("precision", 2_000, 1_250, 222)

    assert (blanket.targeted, blanket.sent, blanket.delivered) == (20_000, 20_000, 20_000)
    assert blanket.cost_per_contact == 500 and blanket.cost_minor == 10_000_000
    assert blanket.responses == 474 and blanket.response_rate == Fraction(237, 10_000)
    assert blanket.revenue_minor == 9_954_000 and blanket.revenue_per_responder == PER_RESPONDER
    assert blanket.revenue_over_cost == Fraction(9954, 10_000)
    assert blanket.net_roi == Fraction(-46, 10_000)

    assert (precision.targeted, precision.sent, precision.delivered) == (2_000, 2_000, 2_000)
    assert precision.cost_per_contact == 1_250 and precision.cost_minor == 2_500_000
    assert precision.responses == 222 and precision.response_rate == Fraction(1110, 10_000)
    assert precision.revenue_minor == 4_662_000 and precision.revenue_per_responder == PER_RESPONDER
    assert precision.revenue_over_cost == Fraction(18648, 10_000)
    assert precision.net_roi == Fraction(8648, 10_000)

    for report in (blanket, precision):
        assert report.holdout == 0 and report.uplift is None and report.incremental_revenue_minor is None

    assert compare(blanket, precision) == TEXTBOOK_TABLE


def test_holdout_uplift_and_incremental_revenue() -> None:
    # Newcombe's first example as a campaign: 56 of 70 targeted and 48 of 80 held out responded.
    recipients = [Recipient(f"t{i}", False, LAUNCH, None, 100) for i in range(70)]
    recipients += [Recipient(f"h{i}", True) for i in range(80)]
    responses = [Response(f"t{i}", False, f"o{i}", LAUNCH, 1_000) for i in range(56)]
    responses += [Response(f"h{i}", True, f"p{i}", LAUNCH, 1_000) for i in range(48)]
    report = build("7", "spring", "GBP", recipients, responses)
    assert (report.targeted, report.holdout, report.sent, report.delivered) == (70, 80, 70, 0)
    assert report.response_rate == Fraction(4, 5) and report.holdout_response_rate == Fraction(3, 5)
    assert report.holdout_revenue_minor == 48_000
    # The targeted 70 would have spent 48,000 * 70 / 80 = 42,000 at the holdout's rate.
    assert report.incremental_revenue_minor == 56_000 - 42_000
    assert report.uplift is not None
    assert report.uplift.difference == pytest.approx(0.2)
    assert (round(report.uplift.low, 4), round(report.uplift.high, 4)) == (0.0524, 0.3339)
    printed = dict(rows(report))
    assert printed["uplift over holdout"] == "20.00%" and printed["uplift 95% CI"] == "5.24% to 33.39%"
    assert printed["incremental revenue"] == "140.00" and printed["holdout response rate"] == "60.00%"
    assert "uplift 95% CI                 5.24% to 33.39%  5.24% to 33.39%\n" in compare(report, report)


def test_unsent_and_undelivered_messages_and_nothing_spent() -> None:
    recipients = [Recipient("a", False, LAUNCH, LAUNCH, 0), Recipient("b", False), Recipient("c", False, LAUNCH)]
    report = build("1", "free", "GBP", recipients, [])
    assert (report.targeted, report.sent, report.delivered, report.cost_minor) == (3, 2, 1, 0)
    assert report.revenue_over_cost is None and report.net_roi is None and report.revenue_per_responder is None
    assert report.response_rate == 0 and report.uplift is None


def test_responses_must_belong_to_the_campaign_once() -> None:
    recipients = [Recipient("a", False), Recipient("h", True)]
    with pytest.raises(ValueError, match="does not match"):
        build("1", "x", "GBP", recipients, [Response("z", False, "o", LAUNCH, 1)])
    with pytest.raises(ValueError, match="does not match"):
        build("1", "x", "GBP", recipients, [Response("h", False, "o", LAUNCH, 1)])
    with pytest.raises(ValueError, match="responds twice"):
        build("1", "x", "GBP", recipients, [Response("a", False, "o", LAUNCH, 1)] * 2)


def test_comparing_two_currencies_is_refused() -> None:
    gbp = build("1", "a", "GBP", [], [])
    eur = build("2", "b", "EUR", [], [])
    with pytest.raises(ValueError, match="GBP and EUR"):
        compare(gbp, eur)


def test_printing_rounds_half_to_even_and_knows_the_currency_exponent() -> None:
    assert percent(Fraction(1, 8), 1) == "12.5%" and percent(Fraction(1, 800)) == "0.12%"
    assert percent(Fraction(3, 800)) == "0.38%"
    assert money(123_456_789, "GBP") == "1,234,567.89"
    assert money(123_456, "JPY") == "123,456"
    assert money(Fraction(10_001, 2), "GBP") == "50.00"  # 5000.5 pence, half to even
    assert money(None, "GBP") == "-"
