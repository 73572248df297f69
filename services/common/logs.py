"""JSON logs on stderr that never print an email address or a phone number."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Seven to fifteen digits (E.164), optionally with + and space, dash or bracket separators: phone-like.
# Dots are not separators and the run must stand alone, so IP addresses and the digit runs inside
# UUIDs or ids (preceded by a letter, digit, dash or dot) are left alone. A full stop may end the number
# (the end of a sentence) but not join it to more digits; ISO dates (2024-01-02) are not numbers to hide.
PHONE = re.compile(r"(?<![\w.-])(?!\d{4}-\d\d-\d\d(?!\d))\+?\(?\d(?:[\s()-]{0,2}\d){6,14}(?![\w-]|\.\w)")
REDACTED = "[redacted]"
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Replaces email addresses and phone-like numbers with a marker."""
    return PHONE.sub(REDACTED, EMAIL.sub(REDACTED, text))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object a line; the message and every extra field pass through redact()."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _redact_value(value)
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        # Objects JSON cannot hold (exceptions, sets, models) are logged as their text, redacted too.
        return orjson.dumps(entry, default=lambda value: redact(str(value))).decode()


def configure(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs carry query strings; ours carry only method, path template and status.
    logging.getLogger("uvicorn.access").disabled = True
