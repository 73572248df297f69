"""Interaction lines from profile's export: which events count, refund signs, the cache's pulls, erasure, failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.profile.v1 import profile_pb2

from services.common.errors import Unavailable
from services.segment import predict, synthetic
from services.segment.interactions import InteractionCache, lines_from_interactions
from tests.unit.segment.segment_fakes import NOW, FakeProfile, direct_interactions


def _item(customer: str, event: str, kind: int, amount: int, category: str = "Home",
          when: datetime = datetime(2011, 5, 1, 12, 30, tzinfo=UTC)) -> profile_pb2.Interaction:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return profile_pb2.Interaction(customer_id=customer, event_id=event, type=kind, amount_minor=amount,
                                   category=category, occurred_at=stamp, sku="s", quantity=1)


def test_orders_and_refunds_become_lines_views_and_carts_do_not() -> None:
    items = [
        _item("a", "order-1", profile_pb2.EVENT_TYPE_ORDER, 1000),
        _item("a", "order-1", profile_pb2.EVENT_TYPE_ORDER, 250, category=""),
        _item("a", "view-1", profile_pb2.EVENT_TYPE_VIEW, 0),
        _item("a", "cart-1", profile_pb2.EVENT_TYPE_ADD_TO_CART, 0),
        _item("b", "refund-9", profile_pb2.EVENT_TYPE_REFUND, 300, when=datetime(2011, 5, 2, tzinfo=UTC)),
    ]
    lines = lines_from_interactions(items)
    assert list(lines.columns) == list(predict.LINE_COLUMNS)
    assert lines["order_id"].tolist() == ["order-1", "order-1", "refund-9"]
    assert lines["amount_minor"].tolist() == [1000, 250, -300]  # what a refund paid back counts against spend
    assert lines["is_refund"].tolist() == [False, False, True]
    assert lines["category"].tolist() == ["Home", "Other", "Home"]
    assert lines["occurred_at"].iloc[0] == pd.Timestamp("2011-05-01 12:30", tz="UTC")
    empty = lines_from_interactions([])
    assert empty.empty and str(empty["occurred_at"].dtype) == "datetime64[ns, UTC]"


def test_the_lines_give_the_features_the_retail_lines_give() -> None:
    lines = synthetic.order_lines(60, pd.Timestamp(NOW))
    fake = FakeProfile()
    fake.put_lines(lines)
    pulled = InteractionCache(direct_interactions(fake), page_size=7).lines()
    cutoff = pd.Timestamp(NOW) - pd.Timedelta(days=45)
    by_order = ["customer_id", "order_id", "amount_minor"]
    expected = predict.features(lines, cutoff)
    got = predict.features(pulled.sort_values(by_order, ignore_index=True), cutoff)
    pd.testing.assert_frame_equal(got, expected)


@pytest.fixture
def fake() -> FakeProfile:
    fake = FakeProfile()
    fake.put_lines(synthetic.order_lines(40, pd.Timestamp(NOW), seed=5))
    return fake


def test_the_cache_pulls_all_first_then_only_what_is_new(fake: FakeProfile) -> None:
    cache = InteractionCache(direct_interactions(fake), page_size=50)
    first = cache.lines()
    assert fake.interaction_requests[0].since_cursor == "" and fake.interaction_requests[0].page_size == 50
    assert len(first) == sum(len(e) for e in fake.events)
    sent = len(fake.events)
    fake.put_lines(pd.DataFrame({
        "customer_id": ["new"], "order_id": ["o-new"], "occurred_at": [pd.Timestamp("2011-12-01", tz="UTC")],
        "amount_minor": [1234], "category": ["Toys"], "is_refund": [False]}))
    second = cache.lines()
    assert fake.interaction_requests[-1].since_cursor == str(sent)
    assert len(second) == len(first) + 1 and second["customer_id"].iloc[-1] == "new"
    assert cache.lines()["order_id"].tolist() == second["order_id"].tolist()  # nothing new, nothing doubled


def test_older_than_max_age_it_pulls_everything_again(fake: FakeProfile) -> None:
    cache = InteractionCache(direct_interactions(fake), max_age_s=0)
    cache.lines()
    before = len(cache.lines())
    assert [r.since_cursor for r in fake.interaction_requests] == ["", ""]
    assert len(cache.lines()) == before


def test_erasure_drops_a_customers_lines_now_and_from_a_pull_running_then(fake: FakeProfile) -> None:
    cache = InteractionCache(direct_interactions(fake))
    lines = cache.lines()
    victim = str(lines["customer_id"].iloc[0])
    assert cache.erase(victim) == int((lines["customer_id"] == victim).sum()) > 0
    assert victim not in set(cache.lines()["customer_id"])
    assert cache.erase(victim) == 0

    other = str(lines["customer_id"].iloc[-1])
    export = direct_interactions(fake)

    def erasing_midway(request: Any) -> Iterator[Any]:
        for page in export(request):
            racing.erase(other)  # the erasure lands while pages are still arriving
            yield page

    racing = InteractionCache(erasing_midway, max_age_s=0)
    assert other not in set(racing.lines()["customer_id"])


def test_a_failed_pull_keeps_what_was_there_and_says_why(fake: FakeProfile) -> None:
    cache = InteractionCache(direct_interactions(fake))
    before = cache.lines()
    fake.interactions_unavailable = True
    with pytest.raises(Unavailable, match=r"interaction export failed \(UNAVAILABLE: profile is restarting\)"):
        cache.lines()
    fake.interactions_unavailable = False
    assert cache.lines().equals(before)
    assert fake.interaction_requests[-1].since_cursor == str(len(fake.events))
