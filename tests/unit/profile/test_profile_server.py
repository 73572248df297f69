"""The profile servicer over a real gRPC channel with a real SQLite store: streams, cursors, errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common.db import make_engine
from services.common.grpc_server import Registration, start
from services.profile.portraits import PortraitKeeper
from services.profile.server import ProfileServicer
from services.profile.store import ProfileStore

NOW = datetime(2011, 12, 10, tzinfo=UTC)


def stamp(text: str) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(datetime.fromisoformat(text))
    return value


def order(event_id: str, customer: str = "c1", when: str = "2011-12-01T10:00:00+00:00") -> profile_pb2.Event:
    return profile_pb2.Event(
        event_id=event_id, type=profile_pb2.EVENT_TYPE_ORDER, customer_id=customer, occurred_at=stamp(when),
        currency="GBP", payment_channel=common_pb2.PAYMENT_CHANNEL_ALIPAY,
        lines=[profile_pb2.Line(sku="A", quantity=2, unit_price_minor=150, list_price_minor=150, category="Home")],
    )


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[profile_pb2_grpc.ProfileServiceStub]:
    store = ProfileStore(make_engine(f"sqlite:///{tmp_path / 'p.db'}"))
    store.migrate()
    servicer = ProfileServicer(store, PortraitKeeper(store, lambda: NOW), lambda: NOW)
    running = start("profile-test", [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server, servicer,
                                                  "marksman.profile.v1.ProfileService")], metrics_port=None)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield profile_pb2_grpc.ProfileServiceStub(channel)
    running.stop(0)


def test_a_client_stream_of_batches_gets_one_summary(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    batches = [
        profile_pb2.IngestEventsRequest(events=[order("e1"), order("e2")]),
        profile_pb2.IngestEventsRequest(events=[order("e2"), profile_pb2.Event(event_id="bad", customer_id="c1")]),
    ]
    reply = stub.StreamEvents(iter(batches))
    assert (reply.accepted, reply.duplicates, reply.rejected) == (2, 1, 1)
    assert [r.index for r in reply.results] == [0, 1, 2, 3]
    assert "type is missing" in reply.results[3].reason


def test_each_bad_event_names_its_reason_and_the_rest_are_stored(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    no_time = profile_pb2.Event(event_id="t", type=profile_pb2.EVENT_TYPE_VIEW, customer_id="c1",
                                lines=[profile_pb2.Line(sku="A")])
    nobody = order("n", customer="")
    empty_order = order("o")
    del empty_order.lines[:]
    bad_id = order("has space")
    reply = stub.IngestEvents(profile_pb2.IngestEventsRequest(events=[no_time, nobody, empty_order, bad_id, order("ok")]))
    reasons = [r.reason for r in reply.results]
    assert reasons[0] == "occurred_at is required"
    assert reasons[1] == "customer_id or anonymous_id is required"
    assert reasons[2] == "an order needs at least one line"
    assert reasons[3].startswith("event_id must be")
    assert reply.results[4].status == profile_pb2.INGEST_STATUS_ACCEPTED
    portrait = stub.GetPortrait(profile_pb2.GetPortraitRequest(customer_id="c1")).portrait
    assert portrait.frequency == 1 and portrait.monetary.amount_minor == 300


def test_export_cursors_page_through_everything_once(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    stub.IngestEvents(profile_pb2.IngestEventsRequest(events=[order(f"e{i}", customer=f"c{i}") for i in range(7)]))
    stub.RecomputePortraits(profile_pb2.RecomputePortraitsRequest())
    pages = list(stub.ExportPortraits(profile_pb2.ExportPortraitsRequest(page_size=3)))
    assert [len(p.portraits) for p in pages] == [3, 3, 1]
    assert sorted(x.customer_id for p in pages for x in p.portraits) == [f"c{i}" for i in range(7)]
    again = list(stub.ExportPortraits(profile_pb2.ExportPortraitsRequest(since_cursor=pages[-1].next_cursor)))
    assert sum(len(p.portraits) for p in again) == 0
    interactions = list(stub.ExportInteractions(profile_pb2.ExportInteractionsRequest(page_size=5)))
    assert sum(len(p.interactions) for p in interactions) == 7
    later = stub.ExportInteractions(profile_pb2.ExportInteractionsRequest(since_cursor=interactions[-1].next_cursor))
    assert sum(len(p.interactions) for p in later) == 0


@pytest.mark.parametrize("request_", [
    profile_pb2.ExportPortraitsRequest(since_cursor="not-a-cursor"),
    profile_pb2.ExportPortraitsRequest(page_size=100_000),
])
def test_bad_export_requests_are_invalid_arguments(stub: profile_pb2_grpc.ProfileServiceStub,
                                                   request_: profile_pb2.ExportPortraitsRequest) -> None:
    with pytest.raises(grpc.RpcError) as error:
        list(stub.ExportPortraits(request_))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_customers_and_bad_ids_get_clear_status_codes(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetCustomer(profile_pb2.GetCustomerRequest(customer_id="nobody"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as bad:
        stub.MergeIdentity(profile_pb2.MergeIdentityRequest(customer_id="c1", anonymous_id="a b"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as consent:
        stub.UpdateConsent(profile_pb2.UpdateConsentRequest(customer_id="nobody"))
    assert consent.value.code() == grpc.StatusCode.NOT_FOUND


def test_customers_round_trip_with_unicode_and_zone_checks(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    reply = stub.UpsertCustomers(profile_pb2.UpsertCustomersRequest(customers=[
        profile_pb2.Customer(customer_id="u1", name="Zoë 王小明", time_zone="Asia/Shanghai", consents=[
            profile_pb2.Consent(channel=common_pb2.CONTACT_CHANNEL_SMS, granted=True,
                                changed_at=stamp("2011-01-01T00:00:00+00:00"))]),
        profile_pb2.Customer(customer_id="u2", time_zone="Mars/Olympus"),
    ]))
    assert [r.ok for r in reply.results] == [True, False]
    assert "IANA" in reply.results[1].error
    customer = stub.GetCustomer(profile_pb2.GetCustomerRequest(customer_id="u1")).customer
    assert customer.name == "Zoë 王小明" and customer.consents[0].granted


def test_a_batch_read_answers_known_customers_and_lists_the_unknown(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    stub.UpsertCustomers(profile_pb2.UpsertCustomersRequest(customers=[
        profile_pb2.Customer(customer_id=cid, email=f"{cid}@example.com", time_zone="Europe/Paris", consents=[
            profile_pb2.Consent(channel=common_pb2.CONTACT_CHANNEL_EMAIL, granted=True,
                                changed_at=stamp("2011-01-01T00:00:00+00:00"))]) for cid in ("b1", "b2", "b3")]))
    stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="b2"))
    reply = stub.GetCustomers(profile_pb2.GetCustomersRequest(customer_ids=["b3", "nobody", "b1", "b2", "b3"]))
    assert [c.customer_id for c in reply.customers] == ["b3", "b1"]
    assert list(reply.not_found) == ["nobody", "b2"]
    assert reply.customers[1] == stub.GetCustomer(profile_pb2.GetCustomerRequest(customer_id="b1")).customer
    assert reply.customers[0].consents[0].granted and reply.customers[0].time_zone == "Europe/Paris"


def test_a_batch_read_refuses_too_many_none_or_malformed_ids(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    cases = {
        "1,001": [f"c{i}" for i in range(1001)],
        "got 0": [],
        "positions 1, 3": ["ok", "a b", "fine", ""],
    }
    for expected, ids in cases.items():
        with pytest.raises(grpc.RpcError) as error:
            stub.GetCustomers(profile_pb2.GetCustomersRequest(customer_ids=ids))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert expected in (error.value.details() or "")
    # A repeated id counts once toward the limit.
    reply = stub.GetCustomers(profile_pb2.GetCustomersRequest(customer_ids=["same"] * 1500))
    assert list(reply.not_found) == ["same"]


def test_a_batch_read_answers_preferred_sales_channels_when_asked(stub: profile_pb2_grpc.ProfileServiceStub) -> None:
    market = order("m1", "m1")
    market.sales_channel = common_pb2.SALES_CHANNEL_MARKETPLACE
    web = order("w1", "w1")
    web.sales_channel = common_pb2.SALES_CHANNEL_WEB
    stub.IngestEvents(profile_pb2.IngestEventsRequest(events=[market, web, order("n1", "none")]))
    stub.RecomputePortraits(profile_pb2.RecomputePortraitsRequest())
    ids = ["m1", "w1", "none", "nobody"]
    assert not stub.GetCustomers(profile_pb2.GetCustomersRequest(customer_ids=ids)).sales_channels
    reply = stub.GetCustomers(profile_pb2.GetCustomersRequest(customer_ids=ids, with_sales_channels=True))
    # "none" ordered without naming a channel: it has none, and is left out.
    assert dict(reply.sales_channels) == {"m1": common_pb2.SALES_CHANNEL_MARKETPLACE,
                                          "w1": common_pb2.SALES_CHANNEL_WEB}
