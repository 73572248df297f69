"""The msgspec fast path accepts only batches pydantic accepts, and reads them to the same values."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway import batch
from services.gateway.event_structs import Event, Line, decode_clean, parse_instant
from services.gateway.schemas import EventIn, LineIn

# Characters where the two libraries' ideas of whitespace, patterns and lengths could part ways.
TRICKY = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u1680", "\u2000", "\u2028",
          "\u200b", "\u3000", "\ufeff", "\x00", "\u0663", "é", "😀", "/", "a", "Z", "0", ".", "-", ":"]
texts = st.one_of(
    st.text(alphabet=st.sampled_from(TRICKY), max_size=6),
    st.builds(lambda pad, core, tail: pad + core + tail, st.sampled_from(["", " ", "\n", "\xa0", "\x1c"]),
              st.text(min_size=0, max_size=70), st.sampled_from(["", " ", "\n", "\u3000", "\x1f"])),
)
good_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,130}\Z")
# Valid values are drawn more often than odd ones, so that many examples reach the fast path.
ids = st.one_of(good_ids, good_ids, good_ids, texts)
numbers = st.one_of(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(-2, 10**14), st.sampled_from([0, 1, 5.0, 2.5, "5", True, None, 10**13, 10**13 + 1,
                                                               1_000_000, 1_000_001, 2**63, -(2**63) - 1]))
instants = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2011-12-09T12:50:00Z", "2011-12-09T12:50:00+01:00", "2011-12-09T12:50:00-00:00",
                     "2011-12-09t12:50:00z", "2011-12-09 12:50:00Z", "2011-12-09T12:50Z", "2011-12-09T12:50:00",
                     "2011-02-30T00:00:00Z", "2011-12-09T24:00:00Z", "2011-12-09T12:50:60Z",
                     "2011-12-09T12:50:00+24:00", "2011-12-09T12:50:00+05:60", "0001-01-01T00:00:00+01:00",
                     "9999-12-31T23:59:59-01:00", "2011-12-09T12:50:00.1234567Z", "\u0662011-12-09T12:50:00Z", "1323435000", "", None]),
    st.builds(lambda digits, frac, offset: f"2011-12-09T12:50:00{'.' + frac[:digits] if digits else ''}{offset}",
              st.integers(0, 9), st.from_regex(r"\A[0-9]{9}\Z"),
              st.sampled_from(["Z", "+00:00", "+05:30", "-11:45", "+23:59", ""])),
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.none())


lines = st.fixed_dictionaries(
    {"sku": texts},
    optional={"quantity": numbers, "unit_price_minor": numbers, "list_price_minor": numbers,
              "discount_minor": numbers, "category": texts, "brand": texts, "colour": texts},
)
events = st.fixed_dictionaries(
    {"event_id": ids, "type": st.sampled_from(["order", "view", "refund", "search", "add_to_cart", "Order", " order"]),
     "occurred_at": instants},
    optional={"customer_id": _maybe(ids), "anonymous_id": _maybe(ids),
              "sales_channel": _maybe(st.sampled_from(["web", "app", "partner", "shop"])),
              "payment_channel": _maybe(st.sampled_from(["alipay", "other", "cash"])),
              "currency": _maybe(st.sampled_from(["GBP", "gbp", "GBP\n", "EURO", " GBP"])),
              "order_id": _maybe(ids), "quote_id": _maybe(ids), "query": _maybe(texts),
              "lines": st.one_of(st.lists(lines, max_size=3), st.none()), "extra": st.integers()},
)


def comparable(event: Event) -> dict[str, Any]:
    fields = msgspec.structs.asdict(event)
    instant = parse_instant(event.occurred_at)
    fields["occurred_at"] = (instant, instant.utcoffset())
    fields["lines"] = [msgspec.structs.asdict(line) for line in event.lines]
    return fields


@settings(max_examples=300, deadline=None)
@given(st.lists(events, min_size=1, max_size=3))
def test_what_the_fast_path_accepts_pydantic_accepts_with_the_same_values(raw: list[dict[str, Any]]) -> None:
    body = json.dumps({"events": raw}, ensure_ascii=False).encode()  # orjson refuses integers past 64 bits
    fast = decode_clean(body)
    slow = batch.validate(batch.parse(body))
    if fast is None:
        return
    assert len(slow.valid) == len(raw), [r for r in slow.results if r]
    assert [comparable(e) for e in fast] == [comparable(e) for e in slow.valid]


def test_a_clean_batch_takes_the_fast_path_and_a_padded_one_the_slow() -> None:
    clean = {"event_id": "e1", "type": "order", "occurred_at": "2011-12-09T12:50:00Z", "currency": "GBP",
             "lines": [{"sku": "A", "unit_price_minor": 100, "category": "Home"}]}
    fast = decode_clean(orjson.dumps({"events": [clean]}))
    assert fast is not None and fast[0].lines[0] == Line(sku="A", quantity=1, unit_price_minor=100, category="Home")
    padded = {**clean, "lines": [{"sku": " A ", "category": "Home "}]}
    assert decode_clean(orjson.dumps({"events": [padded]})) is None
    checked = batch.check(orjson.dumps({"events": [padded]}))
    assert checked.valid[0].lines[0].sku == "A" and checked.valid[0].lines[0].category == "Home"


@pytest.mark.parametrize("body", [
    b'{"events": [{"event_id": "a", "event_id": "b", "type": "view", "occurred_at": "2011-12-09T12:50:00Z"}]}',
    b'{"events": [], "events": [{"event_id": "b", "type": "view", "occurred_at": "2011-12-09T12:50:00Z"}]}',
])
def test_repeated_keys_read_as_pydantic_reads_them(body: bytes) -> None:
    fast = decode_clean(body)
    slow = batch.validate(batch.parse(body))
    assert fast is not None and [comparable(e) for e in fast] == [comparable(e) for e in slow.valid]


def test_the_structs_have_the_documented_fields() -> None:
    assert set(Event.__struct_fields__) == set(EventIn.__annotations__)
    assert set(Line.__struct_fields__) == set(LineIn.__annotations__)
