"""Trailing customer totals: the pure windows, the store's read on SQLite and PostgreSQL, and the RPC."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common.db import make_engine
from services.common.grpc_server import Registration, start
from services.profile.domain import Customer, Event, EventType, Line
from services.profile.portraits import PortraitKeeper
from services.profile.server import ProfileServicer
from services.profile.store import ProfileStore
from services.profile.totals import window_totals

NOW = datetime(2011, 12, 10, tzinfo=UTC)


def order(event_id: str, days_ago: int, amount: int, customer: str = "c1", **kw: object) -> Event:
    return Event(event_id, EventType.ORDER, NOW - timedelta(days=days_ago), customer_id=customer, currency="GBP",
                 lines=(Line("SKU1", 1, amount, amount, 0, "Home", ""),), **kw)  # type: ignore[arg-type]


def refund(event_id: str, days_ago: int, amount: int = 0, order_id: str = "", customer: str = "c1") -> Event:
    lines = (Line("SKU1", 1, amount, amount, 0, "Home", ""),) if amount else ()
    return Event(event_id, EventType.REFUND, NOW - timedelta(days=days_ago), customer_id=customer, currency="GBP",
                 order_id=order_id, lines=lines)


HISTORY = [
    order("o-old", 400, 10_000),
    order("o-1", 200, 3_000),
    order("o-2", 20, 2_000),
    refund("r-1", 10, 500),                  # lines in the window: taken back
    refund("r-old", 5, order_id="o-old"),    # line-less, its order outside the 365-day window: nothing
    Event("v-1", EventType.VIEW, NOW - timedelta(days=1), customer_id="c1", lines=(Line("SKU9"),)),
]


def test_each_window_counts_only_its_own_orders_and_refunds() -> None:
    starts = [NOW - timedelta(days=365), NOW - timedelta(days=30), NOW - timedelta(days=1000)]
    year, month, ever = window_totals("c1", HISTORY, starts, NOW)
    assert (year.net_spend_minor, year.orders, year.currency) == (4_500, 2, "GBP")
    assert (month.net_spend_minor, month.orders) == (1_500, 1)
    # With the order in the window the line-less refund takes back all of it, as the portrait does.
    assert (ever.net_spend_minor, ever.orders) == (4_500, 3)


def test_events_at_or_after_until_are_left_out() -> None:
    (totals,) = window_totals("c1", HISTORY, [NOW - timedelta(days=365)], NOW - timedelta(days=15))
    assert (totals.net_spend_minor, totals.orders) == (5_000, 2)


def test_a_customer_without_orders_has_zero_totals() -> None:
    (totals,) = window_totals("c1", [], [NOW - timedelta(days=365)])
    assert (totals.net_spend_minor, totals.orders, totals.currency) == (0, 0, "")


@pytest.fixture
def store(database_url: str) -> ProfileStore:
    store = ProfileStore(make_engine(database_url))
    store.migrate()
    return store


def test_the_store_reads_one_customers_orders_and_refunds_in_the_range(store: ProfileStore) -> None:
    store.upsert_customers([Customer("c1"), Customer("c2")], NOW)
    store.ingest([(i, e) for i, e in enumerate([*HISTORY, order("o-x", 3, 999, customer="c2")])], NOW)
    found = store.money_events("c1", NOW - timedelta(days=365), NOW - timedelta(days=8))
    assert found is not None
    events, portrait = found
    assert sorted(e.event_id for e in events) == ["o-1", "o-2", "r-1"] and portrait is None
    assert {e.lines[0].paid_minor for e in events} == {3_000, 2_000, 500}
    assert store.money_events("nobody", NOW - timedelta(days=365)) is None


def test_the_store_adds_the_stored_portrait_when_asked(store: ProfileStore) -> None:
    store.upsert_customers([Customer("c1")], NOW)
    store.ingest(list(enumerate(HISTORY)), NOW)
    before = store.money_events("c1", NOW - timedelta(days=30), with_portrait=True)
    assert before is not None and before[1] is None  # none computed yet
    PortraitKeeper(store, lambda: NOW).recompute_all()
    found = store.money_events("c1", NOW - timedelta(days=30), with_portrait=True)
    assert found is not None and found[1] is not None
    assert found[1].frequency == 3 and found[1].customer_id == "c1"


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[profile_pb2_grpc.ProfileServiceStub]:
    store = ProfileStore(make_engine(f"sqlite:///{tmp_path / 'p.db'}"))
    store.migrate()
    store.upsert_customers([Customer("c1")], NOW)
    store.ingest(list(enumerate(HISTORY)), NOW)
    servicer = ProfileServicer(store, PortraitKeeper(store, lambda: NOW), lambda: NOW)
    running = start("profile-totals-test", [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server,
                                                         servicer, "marksman.profile.v1.ProfileService")],
                    metrics_port=None)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield profile_pb2_grpc.ProfileServiceStub(channel)
    running.stop(0)


def test_the_rpc_answers_one_total_per_window_in_request_order(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    request = profile_pb2.GetCustomerTotalsRequest(
        customer_id="c1", since=[stamp(NOW - timedelta(days=30)), stamp(NOW - timedelta(days=365))], until=stamp(NOW))
    reply = stub.GetCustomerTotals(request)
    assert [(t.net_spend.amount_minor, t.orders) for t in reply.totals] == [(1_500, 1), (4_500, 2)]
    assert reply.totals[0].net_spend.currency == "GBP"
    assert reply.totals[1].since.ToDatetime(tzinfo=UTC) == NOW - timedelta(days=365)
    assert not reply.HasField("portrait")


def test_the_rpc_adds_the_portrait_without_contact_data(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    stub.RecomputePortraits(profile_pb2.RecomputePortraitsRequest())
    request = profile_pb2.GetCustomerTotalsRequest(customer_id="c1", since=[stamp(NOW)], with_portrait=True)
    portrait = stub.GetCustomerTotals(request).portrait
    assert portrait.customer_id == "c1" and portrait.frequency == 3 and portrait.has_orders
    assert (portrait.region, list(portrait.consents)) == ("", [])


def test_the_rpc_refuses_unknown_customers_and_bad_windows(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        stub.GetCustomerTotals(profile_pb2.GetCustomerTotalsRequest(customer_id="nobody", since=[stamp(NOW)]))
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as empty:
        stub.GetCustomerTotals(profile_pb2.GetCustomerTotalsRequest(customer_id="c1"))
    assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "1 to 16" in (empty.value.details() or "")
    with pytest.raises(grpc.RpcError) as bad_id:
        stub.GetCustomerTotals(profile_pb2.GetCustomerTotalsRequest(customer_id="a b", since=[stamp(NOW)]))
    assert bad_id.value.code() is grpc.StatusCode.INVALID_ARGUMENT
