"""Schema <-> proto conversions: timestamps, enums, the portrait's nulls, and the event path's speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2

from services.gateway import batch, convert
from services.gateway.batch import EVENT
from services.gateway.event_structs import from_validated
from services.gateway.schemas import LineIn
from tests.unit.gateway.gateway_fakes import order


@pytest.mark.parametrize(
    "value",
    [
        datetime(2011, 12, 9, 12, 50, tzinfo=UTC),
        datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC),
        datetime(2011, 12, 9, 12, 50, 0, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(3000, 1, 1, tzinfo=UTC),
    ],
)
def test_fast_timestamps_equal_from_datetime(value: datetime) -> None:
    fast, reference = Timestamp(), Timestamp()
    convert.set_timestamp(fast, value)
    reference.FromDatetime(value)
    assert (fast.seconds, fast.nanos) == (reference.seconds, reference.nanos)
    assert fast.ToDatetime(tzinfo=UTC) == value


def test_event_fields_and_enums() -> None:
    event = from_validated(EVENT.validate_python(order(
        "o-1", quote_id="q-1", order_id="ord-1", sales_channel="mini_program", payment_channel="wechat_pay",
        lines=[{"sku": "A", "quantity": 3, "unit_price_minor": 100, "list_price_minor": 150,
                "discount_minor": 20, "category": "Home", "brand": "Acme"}],
    )))
    message = convert.events_request([event]).events[0]
    assert message.type == profile_pb2.EVENT_TYPE_ORDER
    assert message.sales_channel == common_pb2.SALES_CHANNEL_MINI_PROGRAM
    assert message.payment_channel == common_pb2.PAYMENT_CHANNEL_WECHAT_PAY
    assert (message.order_id, message.quote_id, message.anonymous_id) == ("ord-1", "q-1", "")
    assert message.lines[0] == profile_pb2.Line(sku="A", quantity=3, unit_price_minor=100, list_price_minor=150,
                                                discount_minor=20, category="Home", brand="Acme")
    assert set(LineIn.__annotations__) == set(profile_pb2.Line.DESCRIPTOR.fields_by_name)


def test_a_thousand_events_convert_with_defaults_applied() -> None:
    lines = [{"sku": f"s{j}", "unit_price_minor": 100, "list_price_minor": 120, "category": "Home"} for j in range(5)]
    events = [from_validated(EVENT.validate_python(order(f"e{i}", lines=lines))) for i in range(1000)]
    request = convert.events_request(events)
    assert len(request.events) == 1000 and len(request.events[-1].lines) == 5
    # An absent quantity means one item; absent texts and prices are empty and zero.
    assert request.events[-1].lines[0] == profile_pb2.Line(sku="s0", quantity=1, unit_price_minor=100,
                                                           list_price_minor=120, category="Home")


def test_validation_reasons_name_the_field() -> None:
    checked = batch.validate([
        order("ok"),
        order("naive", when="2011-12-01T10:00:00"),
        {**order("x"), "colour": "red"},
        order("bad-sku", lines=[{"sku": "", "quantity": 1}, {"sku": "B", "unit_price_minor": -5}]),
    ])
    assert [e.event_id for e in checked.valid] == ["ok"] and checked.positions == [0]
    reasons = {r["index"]: r["reason"] for r in checked.results if r}
    assert "occurred_at" in reasons[1] and "time zone" in reasons[1]
    assert reasons[2].startswith("colour: Extra inputs are not permitted")
    assert "lines[0].sku" in reasons[3] and "lines[1].unit_price_minor" in reasons[3]
    assert checked.rejections == {"value_error": 1, "extra_forbidden": 1, "string_too_short": 1}
