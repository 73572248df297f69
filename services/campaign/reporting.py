"""A campaign's report as the API returns it: the store's counts, and attribution when its module computes it."""

from __future__ import annotations

from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.common.v1 import common_pb2

from services.campaign.store import CampaignStore


class Reports:
    def __init__(self, store: CampaignStore) -> None:
        self.store = store

    def report(self, campaign_id: int) -> pb.CampaignReport:
        info = self.store.get_campaign(campaign_id)
        counts = info.counts
        assert counts is not None
        currency = info.spec.currency
        spent = info.spent_minor
        return pb.CampaignReport(
            campaign_id=info.id, name=info.spec.name, targeted=counts.targeted, holdout=counts.holdout,
            sent=counts.sent, delivered=counts.delivered, cost=common_pb2.Money(amount_minor=spent, currency=currency),
            revenue=common_pb2.Money(amount_minor=0, currency=currency), attribution_days=info.spec.attribution_days,
        )
