"""Proto enums <-> the lower-case names of the HTTP API and the domain ("SALES_CHANNEL_WEB" <-> "web")."""

from __future__ import annotations

from functools import cache
from typing import Any

from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2

# enum descriptor name -> the prefix its value names carry
_PREFIXES = {
    "SalesChannel": "SALES_CHANNEL_",
    "PaymentChannel": "PAYMENT_CHANNEL_",
    "LifecycleStage": "LIFECYCLE_STAGE_",
    "ContactChannel": "CONTACT_CHANNEL_",
    "EventType": "EVENT_TYPE_",
    "IngestStatus": "INGEST_STATUS_",
}

SALES_CHANNEL = common_pb2.SalesChannel
PAYMENT_CHANNEL = common_pb2.PaymentChannel
LIFECYCLE_STAGE = common_pb2.LifecycleStage
CONTACT_CHANNEL = common_pb2.ContactChannel
EVENT_TYPE = profile_pb2.EventType
INGEST_STATUS = profile_pb2.IngestStatus


@cache
def _tables(enum: Any) -> tuple[dict[int, str], dict[str, int]]:
    prefix = _PREFIXES[enum.DESCRIPTOR.name]
    to_name = {
        number: name[len(prefix) :].lower()
        for name, number in enum.items()
        if number != 0
    }
    return to_name, {name: number for number, name in to_name.items()}


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
