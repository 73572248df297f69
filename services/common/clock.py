"""The one clock of every service: wall time, or the instant pinned by MARKSMAN_AS_OF."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

AS_OF_ENV = "MARKSMAN_AS_OF"
# Events further ahead of the clock than this are rejected (DESIGN.md section 8).
MAX_FUTURE_SKEW = timedelta(hours=24)


def parse_instant(text: str) -> datetime:
    """Parses an ISO 8601 time; a time without zone is taken as UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now() -> datetime:
    """Now, in UTC; pinned when MARKSMAN_AS_OF is set (the demo pins it to its data's last day)."""
    pinned = os.environ.get(AS_OF_ENV, "").strip()
    return parse_instant(pinned).astimezone(UTC) if pinned else datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
