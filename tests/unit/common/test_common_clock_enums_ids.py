"""services.common.clock, protoenums and ids: the small shared helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.common import clock, protoenums
from services.common.ids import is_valid_id

# --- clock -------------------------------------------------------------------------------------

PINNED = datetime(2011, 12, 9, 12, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2011-12-09T12:50:00Z",
        "2011-12-09T12:50:00",
        " 2011-12-09T12:50:00+00:00 ",
        "2011-12-09T20:50:00+08:00",
    ],
)
def test_now_is_pinned_by_as_of_and_in_utc(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(clock.AS_OF_ENV, value)
    now = clock.now()
    assert now == PINNED
    assert now.tzinfo is UTC
    assert now.isoformat() == "2011-12-09T12:50:00+00:00"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_now_is_wall_time_when_not_pinned(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(clock.AS_OF_ENV, raising=False)
    else:
        monkeypatch.setenv(clock.AS_OF_ENV, value)
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert before <= now <= after
    assert now.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:00:00Z", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01T10:00:00.250Z", datetime(2024, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-03-01T10:00:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("2024-03-01", datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-03-01T12:00:00+02:00", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("  2024-03-01T10:00:00Z\n", datetime(2024, 3, 1, 10, tzinfo=UTC)),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    parsed = clock.parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo is not None


def test_parse_instant_keeps_a_given_offset() -> None:
    parsed = clock.parse_instant("2024-03-01T12:00:00+02:00")
    assert parsed.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01T00:00:00Z", "01/03/2024"])
def test_parse_instant_rejects_non_iso(text: str) -> None:
    with pytest.raises(ValueError):
        clock.parse_instant(text)


def test_as_utc() -> None:
    assert clock.as_utc(datetime(2024, 1, 1, 12)) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    shifted = clock.as_utc(datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5))))
    assert (shifted.hour, shifted.tzinfo) == (17, UTC)
    skew = clock.MAX_FUTURE_SKEW
    assert skew == timedelta(hours=24)


# --- protoenums --------------------------------------------------------------------------------

ENUMS: list[tuple[Any, str]] = [
    (protoenums.SALES_CHANNEL, "SALES_CHANNEL_"),
    (protoenums.PAYMENT_CHANNEL, "PAYMENT_CHANNEL_"),
    (protoenums.LIFECYCLE_STAGE, "LIFECYCLE_STAGE_"),
    (protoenums.CONTACT_CHANNEL, "CONTACT_CHANNEL_"),
    (protoenums.EVENT_TYPE, "EVENT_TYPE_"),
    (protoenums.INGEST_STATUS, "INGEST_STATUS_"),
]


def test_every_contract_enum_maps_by_its_unspecified_prefix() -> None:
    # No list of prefixes: the prefix is read off <PREFIX>_UNSPECIFIED, so every enum of the contracts works.
    from marksman.campaign.v1 import campaign_pb2

    for descriptor in campaign_pb2.DESCRIPTOR.enum_types_by_name.values():
        enum = getattr(campaign_pb2, descriptor.name)
        prefix = descriptor.values_by_number[0].name.removesuffix("UNSPECIFIED")
        for value in descriptor.values[1:]:
            name = protoenums.to_name(enum, value.number)
            assert name == value.name.removeprefix(prefix).lower()
            assert protoenums.to_number(enum, name) == value.number
    assert protoenums.tables(campaign_pb2.Channel)[1]["email"] == campaign_pb2.CHANNEL_EMAIL


@pytest.mark.parametrize(("enum", "prefix"), ENUMS, ids=[prefix.rstrip("_") for _, prefix in ENUMS])
def test_round_trip_for_every_value(enum: Any, prefix: str) -> None:
    values = [(name, number) for name, number in enum.items() if number != 0]
    assert len(values) >= 3
    for proto_name, number in values:
        name = protoenums.to_name(enum, number)
        assert name == proto_name.removeprefix(prefix).lower()
        assert protoenums.to_number(enum, name) == number
    assert protoenums.names(enum) == sorted(
        proto_name.removeprefix(prefix).lower() for proto_name, _ in values
    )


def test_known_values() -> None:
    assert protoenums.to_name(protoenums.SALES_CHANNEL, 3) == "mini_program"
    assert protoenums.to_number(protoenums.PAYMENT_CHANNEL, "cash_on_delivery") == 4
    assert protoenums.to_name(protoenums.EVENT_TYPE, 3) == "add_to_cart"
    assert protoenums.to_number(protoenums.LIFECYCLE_STAGE, "at_risk") == 3
    assert protoenums.names(protoenums.CONTACT_CHANNEL) == ["email", "push", "sms"]


@pytest.mark.parametrize(("enum", "prefix"), ENUMS, ids=[prefix.rstrip("_") for _, prefix in ENUMS])
def test_unspecified_and_unknown_numbers_have_no_name(enum: Any, prefix: str) -> None:
    assert protoenums.to_name(enum, 0) is None
    assert protoenums.to_name(enum, 999) is None
    assert protoenums.to_number(enum, None) == 0
    assert protoenums.to_number(enum, "") == 0
    assert "unspecified" not in protoenums.names(enum)


def test_unknown_name_lists_the_allowed_names() -> None:
    with pytest.raises(ValueError) as raised:
        protoenums.to_number(protoenums.CONTACT_CHANNEL, "fax")
    assert str(raised.value) == "unknown value 'fax'; expected one of: email, push, sms"


@pytest.mark.parametrize("name", ["WEB", "SALES_CHANNEL_WEB", "unspecified", " web"])
def test_names_are_exact_lower_case(name: str) -> None:
    with pytest.raises(ValueError, match=r"expected one of: app, marketplace, mini_program, partner, web$"):
        protoenums.to_number(protoenums.SALES_CHANNEL, name)


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["17850", "anon-536365", "a.b:c@d+e=f-g", "x", "A" * 128, "C536365", "0", "bob@example.com"]
)
def test_valid_ids(value: str) -> None:
    assert is_valid_id(value) is True


@pytest.mark.parametrize(
    "value",
    [
        "",
        "with space",
        "a/b",
        "a\\b",
        "a" * 129,
        "-leading-dash",
        ".leading-dot",
        "_underscore",
        "tab\tinside",
        "trailing-newline\n",
        "\nleading-newline",
        "caf\u00e9",
        "a?b",
        "a#b",
    ],
)
def test_invalid_ids(value: str) -> None:
    assert is_valid_id(value) is False
