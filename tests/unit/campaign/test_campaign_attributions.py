"""Conversions and attributed revenue counted once (SQLite and PostgreSQL): the store remembers which responses a
report attributed, so later reports, restarts and other replicas do not count them again."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.campaign.attribution import Order
from services.campaign.reporting import Reports
from services.campaign.store import CampaignStore, attributions_t
from services.common.db import make_engine
from tests.unit.campaign.campaign_data import NOW, WALL, add_partner, spec


@pytest.fixture
def store(database_url: str) -> CampaignStore:
    store = CampaignStore(make_engine(database_url))
    store.migrate()
    return store


def launched(store: CampaignStore, n: int) -> int:
    """c0 is in the holdout group, c1 ... targeted."""
    add_partner(store, "mailer", "email")
    campaign = store.create_campaign(spec(routes=spec().routes[:1]), NOW)
    store.launch(campaign.id, 3, [(f"c{i}", i == 0) for i in range(n)], NOW, WALL, start_ahead=False)
    return campaign.id


class FakeOrders:
    def __init__(self) -> None:
        self.placed: list[Order] = []

    def buy(self, customer: str, revenue: int, currency: str) -> None:
        self.placed.append(Order(customer, f"o-{customer}", NOW + timedelta(hours=len(self.placed) + 1), revenue,
                                 currency))

    def orders(self, customer_ids: Collection[str], since: datetime, currency: str) -> list[Order]:
        return [o for o in self.placed if o.customer_id in customer_ids]


def counted(currency: str) -> tuple[float, float]:
    converted = REGISTRY.get_sample_value("marksman_campaign_responses_total", {"kind": "converted"}) or 0.0
    revenue = REGISTRY.get_sample_value("marksman_campaign_attributed_revenue_minor_total",
                                        {"currency": currency}) or 0.0
    return converted, revenue


def test_record_attributions_returns_only_what_is_new(store: CampaignStore) -> None:
    campaign_id = launched(store, 4)
    assert store.record_attributions(campaign_id, [("c1", 500), ("c2", 700)], "GBP", NOW) == [("c1", 500),
                                                                                              ("c2", 700)]
    assert store.record_attributions(campaign_id, [("c1", 500), ("c2", 700)], "GBP", NOW) == []
    assert store.record_attributions(campaign_id, [("c2", 700), ("c3", 100)], "GBP", NOW) == [("c3", 100)]
    assert store.record_attributions(campaign_id, [], "GBP", NOW) == []
    # Erasure takes the customer's attributions with it (the counters already counted them).
    assert store.erase_customer("c2", NOW) == 2
    with store.engine.connect() as conn:
        left = conn.execute(select(attributions_t.c.customer_id).order_by(attributions_t.c.customer_id)).scalars()
        assert list(left) == ["c1", "c3"]
        assert conn.execute(select(func.count()).select_from(attributions_t)).scalar_one() == 2


def test_each_targeted_conversion_counts_once_across_reports(store: CampaignStore) -> None:
    campaign_id = launched(store, 4)
    currency = store.get_campaign(campaign_id, counts=False).spec.currency
    orders = FakeOrders()
    reports, other_replica = Reports(store, orders), Reports(store, orders)
    before = counted(currency)
    orders.buy("c0", 900, currency)  # holdout: a response, but no revenue of the campaign's
    orders.buy("c1", 1250, currency)
    assert reports.figures(campaign_id)[0].responses == 1
    assert counted(currency) == (before[0] + 1, before[1] + 1250)
    reports.figures(campaign_id)
    other_replica.figures(campaign_id)
    assert counted(currency) == (before[0] + 1, before[1] + 1250)
    orders.buy("c2", 300, currency)
    other_replica.figures(campaign_id)
    assert counted(currency) == (before[0] + 2, before[1] + 1550)
