"""A campaign's report as the API returns it: recipients from the store, orders from profile, figures from report.py."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Protocol

import grpc
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.campaign import report
from services.campaign.attribution import Order, Response, attribute
from services.campaign.metrics import ATTRIBUTED_REVENUE, RESPONSES
from services.campaign.store import CampaignStore
from services.common import clock
from services.common.errors import InvalidArgument, Unavailable

PAGE = 5000


class Orders(Protocol):
    def orders(self, customer_ids: Collection[str], since: datetime, currency: str) -> list[Order]: ...


@dataclass
class ProfileOrders:
    """Order events of some customers from profile's interaction export (one order per event id).

    Profile's interactions carry no currency: orders are taken to be in the campaign's currency, which
    holds for a shop in one currency (the demo's); a multi-currency shop needs profile to export it.
    """

    stub: profile_pb2_grpc.ProfileServiceStub
    timeout_s: float

    def orders(self, customer_ids: Collection[str], since: datetime, currency: str) -> list[Order]:
        wanted = set(customer_ids)
        # order id -> (customer, time), and its revenue over its lines
        heads: dict[str, tuple[str, datetime]] = {}
        revenue: dict[str, int] = {}
        request = profile_pb2.ExportInteractionsRequest(page_size=PAGE)
        try:
            for page in self.stub.ExportInteractions(request, timeout=self.timeout_s):
                for item in page.interactions:
                    if item.type != profile_pb2.EVENT_TYPE_ORDER or item.customer_id not in wanted:
                        continue
                    at = item.occurred_at.ToDatetime(tzinfo=UTC)
                    if at < since:
                        continue
                    heads.setdefault(item.event_id, (item.customer_id, at))
                    revenue[item.event_id] = revenue.get(item.event_id, 0) + item.amount_minor
        except grpc.RpcError as error:
            raise Unavailable(f"profile did not export the orders: {error.code().name}") from None
        return [Order(customer, order_id, at, revenue[order_id], currency)
                for order_id, (customer, at) in heads.items()]


def _rate(value: Fraction | None) -> float:
    return float(value) if value is not None else 0.0


def to_proto(figures: report.CampaignReport, campaign_id: int, attribution_days: int) -> pb.CampaignReport:
    c = figures.currency
    lift = figures.uplift
    return pb.CampaignReport(
        campaign_id=campaign_id, name=figures.name, targeted=figures.targeted, holdout=figures.holdout,
        sent=figures.sent, delivered=figures.delivered, responses=figures.responses,
        response_rate=_rate(figures.response_rate),
        revenue=common_pb2.Money(amount_minor=figures.revenue_minor, currency=c),
        cost=common_pb2.Money(amount_minor=figures.cost_minor, currency=c),
        revenue_over_cost=_rate(figures.revenue_over_cost), net_roi=_rate(figures.net_roi),
        holdout_responses=figures.holdout_responses, holdout_response_rate=_rate(figures.holdout_response_rate),
        uplift=lift.difference if lift else 0.0, uplift_ci_low=lift.low if lift else 0.0,
        uplift_ci_high=lift.high if lift else 0.0, attribution_days=attribution_days,
        incremental_revenue=common_pb2.Money(amount_minor=figures.incremental_revenue_minor or 0, currency=c),
    )


class Reports:
    def __init__(self, store: CampaignStore, orders: Orders | None) -> None:
        self.store = store
        self.orders = orders

    def figures(self, campaign_id: int) -> tuple[report.CampaignReport, int]:
        return self._figures([campaign_id])[0]

    def _figures(self, campaign_ids: Sequence[int]) -> list[tuple[report.CampaignReport, int]]:
        """The campaigns' reports from one read of their customers' orders (profile exports every order line,
        so two campaigns side by side cost one export, not two)."""
        campaigns = [(self.store.get_campaign(cid, counts=False), self.store.recipients(cid)) for cid in campaign_ids]
        launched = [(info, recipients) for info, recipients in campaigns if info.launched_at is not None and recipients]
        orders: list[Order] = []
        if launched and self.orders is not None:
            currencies = {info.spec.currency for info, _ in launched}
            if len(currencies) > 1:
                raise InvalidArgument(f"cannot compare campaigns in {' and '.join(sorted(currencies))}")
            since = min(info.launched_at for info, _ in launched if info.launched_at is not None)
            ids = {r.customer_id for _, recipients in launched for r in recipients}
            orders = self.orders.orders(ids, since, currencies.pop())
        results = []
        for (info, recipients), campaign_id in zip(campaigns, campaign_ids, strict=True):
            spec = info.spec
            responses = []
            if info.launched_at is not None and self.orders is not None and recipients:
                responses = attribute(recipients, orders, launched_at=info.launched_at,
                                      window=timedelta(days=spec.attribution_days), currency=spec.currency).responses
                self._count_new(campaign_id, responses, spec.currency)
            results.append((report.build(str(campaign_id), spec.name, spec.currency, recipients, responses),
                            spec.attribution_days))
        return results

    def _count_new(self, campaign_id: int, responses: list[Response], currency: str) -> None:
        """Conversions and revenue go into the metrics once, when a report first attributes them (the store
        remembers which were counted, across reports, restarts and replicas)."""
        targeted = [(r.customer_id, r.revenue_minor) for r in responses if not r.holdout]
        new = self.store.record_attributions(campaign_id, targeted, currency, clock.now())
        if new:
            RESPONSES.labels("converted").inc(len(new))
            ATTRIBUTED_REVENUE.labels(currency).inc(sum(revenue for _, revenue in new))

    def report(self, campaign_id: int) -> pb.CampaignReport:
        figures, days = self.figures(campaign_id)
        return to_proto(figures, campaign_id, days)

    def compare(self, first_id: int, second_id: int) -> pb.CompareCampaignsResponse:
        """Both reports and the side-by-side table; InvalidArgument when their currencies differ."""
        (first, first_days), (second, second_days) = self._figures([first_id, second_id])
        try:
            text = report.compare(first, second)
        except ValueError as error:
            raise InvalidArgument(str(error)) from None
        return pb.CompareCampaignsResponse(first=to_proto(first, first_id, first_days),
                                           second=to_proto(second, second_id, second_days), table=text)
