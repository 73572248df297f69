"""services.common.logs: redaction of emails and phone numbers, and the one-object-a-line JSON format."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from services.common import logs
from services.common.logs import REDACTED, JsonFormatter, redact

# --- redact -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bob@example.com", REDACTED),
        ("write to first.last+tag@mail.example.co.uk today", f"write to {REDACTED} today"),
        ("+44 7700 900123", REDACTED),
        ("07700900123", REDACTED),
        ("(020) 7946-0958", REDACTED),
        ("+1 (555) 123-4567", REDACTED),
        ("555-123-4567", REDACTED),
        ("+86 138 0013 8000", REDACTED),
        ("call +44 7700 900123, then email bob@example.com", f"call {REDACTED}, then email {REDACTED}"),
        ("phone=07700900123;", f"phone={REDACTED};"),
        ('"07700900123"', f'"{REDACTED}"'),
        ("[07700 900123]", f"[{REDACTED}]"),
        # A number that ends a sentence is still a phone number.
        ("call me on 07700900123.", f"call me on {REDACTED}."),
        ("tel: 07700 900123. Thanks", f"tel: {REDACTED}. Thanks"),
        ("a@b.io and c@d.org", f"{REDACTED} and {REDACTED}"),
    ],
)
def test_redact_removes_emails_and_phone_numbers(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "client 192.168.100.200 connected",
        "peer 10.0.0.1:50051",
        "at 2024-01-02T03:04:05Z",
        "at 2024-01-02T03:04:05.123456+00:00",
        "at 2024-01-02T03:04:05-05:00",
        "at 2024-01-02T03:04:05.123+00:00.",
        # str(datetime) and plain ISO dates are timestamps too, not phone numbers.
        "as of 2024-01-02 03:04:05+00:00",
        "day 2024-01-02 done",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "uuid 12345678-1234-5678-1234-567812345678",
        "customer 17850 and 536365",
        "anon-536365 anon-5363651234",
        "ratio 1234567.89",
        "",
        "nothing personal here",
    ],
)
def test_redact_keeps_ips_timestamps_uuids_and_short_ids(text: str) -> None:
    assert redact(text) == text


# --- JsonFormatter -----------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc-test"))
    logger = logging.getLogger("marksman.test.common.logs")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers[:] = []
    logger.propagate = True


def _entries(stream: io.StringIO) -> list[dict[str, object]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_line_with_the_standard_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("first %s", "one")
    logger.warning("second\nwith a newline")
    entries = _entries(stream)
    assert len(entries) == 2
    assert entries[0]["level"] == "info"
    assert entries[0]["service"] == "svc-test"
    assert entries[0]["logger"] == "marksman.test.common.logs"
    assert entries[0]["msg"] == "first one"
    assert entries[1]["level"] == "warning"
    assert entries[1]["msg"] == "second\nwith a newline"
    assert set(entries[0]) == {"ts", "level", "service", "logger", "msg"}


def test_timestamp_is_utc_iso_with_milliseconds() -> None:
    record = logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None)
    record.created = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC).timestamp()
    entry = json.loads(JsonFormatter("svc").format(record))
    assert entry["ts"] == "2024-01-02T03:04:05.678+00:00"


def test_message_and_arguments_are_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("customer %s phoned from %s at 2024-01-02T03:04:05Z", "bob@example.com", "+44 7700 900123")
    (entry,) = _entries(stream)
    assert entry["msg"] == f"customer {REDACTED} phoned from {REDACTED} at 2024-01-02T03:04:05Z"
    assert "bob@example.com" not in stream.getvalue()
    assert "7700" not in stream.getvalue()


def test_extra_fields_are_emitted_and_redacted_recursively(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info(
        "upsert",
        extra={
            "customer_id": "17850",
            "count": 3,
            "ok": True,
            "ratio": 0.5,
            "nothing": None,
            "contact": "bob@example.com",
            "nested": {"phones": ["07700900123", "(020) 7946-0958"], "ip": "10.0.0.1", "n": 7},
            "pair": ("alice@example.org", 17850),
        },
    )
    (entry,) = _entries(stream)
    assert entry["customer_id"] == "17850"
    assert entry["count"] == 3
    assert entry["ok"] is True
    assert entry["ratio"] == 0.5
    assert entry["nothing"] is None
    assert entry["contact"] == REDACTED
    assert entry["nested"] == {"phones": [REDACTED, REDACTED], "ip": "10.0.0.1", "n": 7}
    assert entry["pair"] == [REDACTED, 17850]


def test_extra_objects_that_are_not_json_are_stringified_and_redacted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.warning("failed", extra={"err": ValueError("mail bob@example.com"), "tags": {"07700900123"}})
    (entry,) = _entries(stream)
    assert entry["err"] == f"mail {REDACTED}"
    assert entry["tags"] == "{'[redacted]'}"
    assert "bob@example.com" not in stream.getvalue()


def test_extra_dict_keys_are_redacted_and_non_string_keys_do_not_lose_the_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("by key", extra={"by_contact": {"bob@example.com": 1}, "by_code": {404: 2}})
    (entry,) = _entries(stream)
    assert entry["by_contact"] == {REDACTED: 1}
    assert entry["by_code"] == {"404": 2}


def test_private_and_standard_record_attributes_are_not_emitted(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("m", extra={"_hidden": "x", "visible": "y"})
    (entry,) = _entries(stream)
    assert entry["visible"] == "y"
    assert "_hidden" not in entry
    for standard in ("args", "pathname", "lineno", "funcName", "thread", "exc_info", "created", "message"):
        assert standard not in entry


def test_exception_text_is_included_redacted_on_one_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError("no customer with email bob@example.com or phone 07700 900123")
    except ValueError:
        logger.exception("lookup failed for %s", "alice@example.org")
    text = stream.getvalue()
    assert text.count("\n") == 1
    (entry,) = _entries(stream)
    assert entry["level"] == "error"
    assert entry["msg"] == f"lookup failed for {REDACTED}"
    error = entry["error"]
    assert isinstance(error, str)
    assert error.startswith("Traceback (most recent call last):")
    assert error.endswith(f"ValueError: no customer with email {REDACTED} or phone {REDACTED}")
    assert "bob@example.com" not in text
    assert "900123" not in text


def test_no_error_field_without_exception(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.error("plain")
    (entry,) = _entries(stream)
    assert "error" not in entry


def test_configure_installs_one_json_handler_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_disabled = access.disabled
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        logs.configure("gw", level="debug")
        assert root.level == logging.DEBUG
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert access.disabled is True
        logging.getLogger("marksman.test.common.configure").debug("hello %s", "bob@example.com")
        entry = json.loads(stream.getvalue())
        assert (entry["service"], entry["level"], entry["msg"]) == ("gw", "debug", f"hello {REDACTED}")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        access.disabled = saved_disabled
