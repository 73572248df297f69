"""Proto enums <-> the lower-case names of the HTTP API and the domain ("SALES_CHANNEL_WEB" <-> "web")."""

from __future__ import annotations

from functools import cache
from typing import Any

from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2

SALES_CHANNEL = common_pb2.SalesChannel
PAYMENT_CHANNEL = common_pb2.PaymentChannel
LIFECYCLE_STAGE = common_pb2.LifecycleStage
CONTACT_CHANNEL = common_pb2.ContactChannel
EVENT_TYPE = profile_pb2.EventType
INGEST_STATUS = profile_pb2.IngestStatus


@cache
def _tables(enum: Any) -> tuple[dict[int, str], dict[str, int]]:
    # Every enum's zero value is <PREFIX>_UNSPECIFIED and every value carries the prefix (a contract test
    # checks both), so any enum of the contracts works here without a list of prefixes.
    prefix = enum.DESCRIPTOR.values_by_number[0].name[: -len("UNSPECIFIED")]
    to_name = {
        number: name[len(prefix) :].lower()
        for name, number in enum.items()
        if number != 0
    }
    return to_name, {name: number for number, name in to_name.items()}


def tables(enum: Any) -> tuple[dict[int, str], dict[str, int]]:
    """(number -> name, name -> number) of any contract enum, _UNSPECIFIED left out; shared: do not change them."""
    return _tables(enum)


def to_name(enum: Any, number: int) -> str | None:
    """The lower-case name of a value; None for _UNSPECIFIED or an unknown number."""
    return _tables(enum)[0].get(number)


def to_number(enum: Any, name: str | None) -> Any:
    """The value for a lower-case name; 0 (_UNSPECIFIED) for None or an empty name; ValueError if unknown.

    Typed Any: each generated enum has its own ValueType, and callers pass the number straight to it.
    """
    if not name:
        return 0
    try:
        return _tables(enum)[1][name]
    except KeyError:
        allowed = ", ".join(sorted(_tables(enum)[1]))
        raise ValueError(f"unknown value {name!r}; expected one of: {allowed}") from None


def names(enum: Any) -> list[str]:
    return sorted(_tables(enum)[1])
