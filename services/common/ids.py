"""The shape of the platform's ids (customers, events, orders), checked the same way everywhere."""

from __future__ import annotations

import re

# Printable, no whitespace or slashes (they appear in URLs), at most 128 characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}$"
ID_RE = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    # fullmatch: `$` alone would also accept a trailing newline.
    return bool(ID_RE.fullmatch(value))
