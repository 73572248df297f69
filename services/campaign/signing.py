"""Request signatures of the push format (HMAC-SHA256 over timestamp + "." + body) and partner API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TIMESTAMP_HEADER = "X-Marksman-Timestamp"
SIGNATURE_HEADER = "X-Marksman-Signature"
API_KEY_PREFIX = "mkp_"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Lower-case hex HMAC-SHA256 of `timestamp.body` keyed by the partner's secret (PARTNERS.md)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def key_hash(api_key: str) -> str:
    """What is stored of an API key: its SHA-256 (a key is 256 random bits, so no salt or slow hash is needed)."""
    return hashlib.sha256(api_key.encode()).hexdigest()
