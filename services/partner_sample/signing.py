"""HMAC-SHA256 request signatures over `timestamp + "." + body` and the timestamp-skew check (FORMAT.md)."""

from __future__ import annotations

import hmac

# The sender's own definition of the push signature: the receiver checks exactly what the dispatcher signs.
from services.campaign.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["MAX_SKEW_S", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "check", "headers", "sign"]
# A captured request replays for at most this long.
MAX_SKEW_S = 300


def headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers a sender adds to a signed request."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Content-Type": "application/json"}


def check(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
          max_skew_s: float = MAX_SKEW_S) -> str | None:
    """None when the request is authentic and fresh; otherwise the reason to refuse it."""
    if not timestamp:
        return f"missing {TIMESTAMP_HEADER} header"
    if not signature:
        return f"missing {SIGNATURE_HEADER} header"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not whole Unix seconds: {timestamp[:40]!r}"
    if abs(now - sent_at) > max_skew_s:
        return f"timestamp {sent_at} is {now - sent_at:+.0f} s from the receiver's clock (limit {max_skew_s:.0f} s)"
    # The timestamp is checked first, but the comparison below is constant-time either way.
    # Over the header text exactly as sent: "0017" and "17" sign differently.
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower()):
        return "signature does not match the body and timestamp"
    return None
