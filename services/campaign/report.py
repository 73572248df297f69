"""A campaign's report from its recipients and attributed responses, and two campaigns side by side.

Counts and money are exact: rates and ROI are Fractions of integers (money in minor units), rounded
only when printed. ROI is given both ways, labelled: revenue / cost (1 is break-even, the figure
precision-marketing texts print as "99%") and (revenue - cost) / cost (0 is break-even).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from services.campaign.attribution import Recipient, Response
from services.campaign.uplift import Uplift, uplift
from services.common.money import exponent

NONE = "-"


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign_id: str
    name: str
    currency: str
    targeted: int
    holdout: int
    sent: int
    delivered: int
    responses: int
    holdout_responses: int
    revenue_minor: int
    holdout_revenue_minor: int
    cost_minor: int
    # None when the denominator is zero (no targeted customer, nothing sent or spent, no responder).
    response_rate: Fraction | None
    holdout_response_rate: Fraction | None
    cost_per_contact: Fraction | None
    revenue_per_responder: Fraction | None
    revenue_over_cost: Fraction | None
    net_roi: Fraction | None
    # Revenue beyond what the targeted customers would have spent at the holdout's revenue per customer.
    incremental_revenue_minor: int | None
    uplift: Uplift | None


def _ratio(numerator: int, denominator: int) -> Fraction | None:
    return Fraction(numerator, denominator) if denominator else None


def build(campaign_id: str, name: str, currency: str, recipients: Sequence[Recipient],
          responses: Sequence[Response], confidence: float = 0.95) -> CampaignReport:
    """The report of one campaign; every response must belong to one of its recipients (same group)."""
    groups = {r.customer_id: r.holdout for r in recipients}
    seen: set[str] = set()
    for response in responses:
        if groups.get(response.customer_id) is not response.holdout:
            raise ValueError(f"response of {response.customer_id!r} does not match a recipient of that group")
        if response.customer_id in seen:
            raise ValueError(f"customer {response.customer_id!r} responds twice")
        seen.add(response.customer_id)
    targeted = [r for r in recipients if not r.holdout]
    holdout = len(recipients) - len(targeted)
    sent = sum(1 for r in targeted if r.sent_at is not None)
    delivered = sum(1 for r in targeted if r.delivered_at is not None)
    cost = sum(r.cost_minor for r in targeted)
    responding = [r for r in responses if not r.holdout]
    control = [r for r in responses if r.holdout]
    revenue = sum(r.revenue_minor for r in responding)
    holdout_revenue = sum(r.revenue_minor for r in control)
    incremental = None
    if holdout and targeted:
        expected = Fraction(holdout_revenue * len(targeted), holdout)
        incremental = revenue - round(expected)
    lift = (uplift(len(responding), len(targeted), len(control), holdout, confidence)
            if holdout and targeted else None)
    return CampaignReport(
        campaign_id=campaign_id, name=name, currency=currency, targeted=len(targeted), holdout=holdout,
        sent=sent, delivered=delivered, responses=len(responding), holdout_responses=len(control),
        revenue_minor=revenue, holdout_revenue_minor=holdout_revenue, cost_minor=cost,
        response_rate=_ratio(len(responding), len(targeted)), holdout_response_rate=_ratio(len(control), holdout),
        cost_per_contact=_ratio(cost, sent), revenue_per_responder=_ratio(revenue, len(responding)),
        revenue_over_cost=_ratio(revenue, cost), net_roi=_ratio(revenue - cost, cost),
        incremental_revenue_minor=incremental, uplift=lift)


def percent(value: Fraction | float | None, places: int = 2) -> str:
    """A proportion as a percentage, rounded half to even at `places` decimals ("2.37%")."""
    if value is None:
        return NONE
    exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else Decimal(value)
    return f"{(exact * 100).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)}%"


def money(minor: Fraction | int | None, currency: str) -> str:
    """Minor units in major units with thousands separators, rounded to the minor unit ("100,000.00")."""
    if minor is None:
        return NONE
    places = exponent(currency)
    value = Fraction(minor)
    major = (Decimal(value.numerator) / Decimal(value.denominator)).scaleb(-places)
    return f"{major.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN):,}"


def _interval(lift: Uplift | None) -> str:
    if lift is None:
        return NONE
    return f"{percent(lift.low)} to {percent(lift.high)}"


def rows(report: CampaignReport) -> list[tuple[str, str]]:
    """(label, value) lines of one report, in the order the comparison prints them."""
    c = report.currency
    return [
        ("targets", f"{report.targeted:,}"),
        ("sent", f"{report.sent:,}"),
        ("delivered", f"{report.delivered:,}"),
        ("cost per contact", money(report.cost_per_contact, c)),
        ("cost", money(report.cost_minor, c)),
        ("responses", f"{report.responses:,}"),
        ("response rate", percent(report.response_rate)),
        ("revenue", money(report.revenue_minor, c)),
        ("revenue per responder", money(report.revenue_per_responder, c)),
        ("ROI: revenue / cost", percent(report.revenue_over_cost)),
        ("ROI: (revenue - cost) / cost", percent(report.net_roi)),
        ("holdout", f"{report.holdout:,}"),
        ("holdout response rate", percent(report.holdout_response_rate)),
        ("uplift over holdout", percent(report.uplift.difference) if report.uplift else NONE),
        (f"uplift {report.uplift.confidence:.0%} CI" if report.uplift else "uplift 95% CI", _interval(report.uplift)),
        ("incremental revenue", money(report.incremental_revenue_minor, c)),
    ]


def side_by_side(header: str, names: tuple[str, str], left: list[tuple[str, str]],
                 right: list[tuple[str, str]]) -> str:
    """Two columns of (label, value) lines with the same labels, values right-aligned under their names."""
    width = max(len(header), *(len(label) for label, _ in left))
    columns = [max(len(name), *(len(value) for _, value in side)) for name, side in zip(names, (left, right), strict=True)]
    lines = [f"{header:<{width}}  {names[0]:>{columns[0]}}  {names[1]:>{columns[1]}}"]
    lines += [f"{label:<{width}}  {a:>{columns[0]}}  {b:>{columns[1]}}"
              for (label, a), (_, b) in zip(left, right, strict=True)]
    return "\n".join(lines) + "\n"


def compare(first: CampaignReport, second: CampaignReport) -> str:
    """Two campaigns side by side, one figure a line."""
    if first.currency != second.currency:
        raise ValueError(f"cannot compare campaigns in {first.currency} and {second.currency}")
    return side_by_side(f"({first.currency})", (first.name, second.name), rows(first), rows(second))
