"""Signatures: the documented recipe, tampering, skew and malformed headers."""

from __future__ import annotations

import hashlib
import hmac

from services.partner_sample import signing

BODY = b'{"messages":[]}'


def test_signature_is_hmac_sha256_hex_over_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1733788800." + BODY, hashlib.sha256).hexdigest()
    assert signing.sign("s3cret", 1733788800, BODY) == expected
    assert signing.headers("s3cret", 1733788800, BODY)[signing.SIGNATURE_HEADER] == expected


def test_authentic_fresh_request_passes() -> None:
    sig = signing.sign("k", 1000, BODY)
    assert signing.check("k", "1000", sig, BODY, now=1000.0) is None
    assert signing.check("k", "1000", sig.upper(), BODY, now=1299.0) is None


def test_tampered_body_wrong_secret_or_timestamp_fail() -> None:
    sig = signing.sign("k", 1000, BODY)
    assert "does not match" in str(signing.check("k", "1000", sig, BODY + b" ", now=1000.0))
    assert "does not match" in str(signing.check("other", "1000", sig, BODY, now=1000.0))
    assert "does not match" in str(signing.check("k", "1001", sig, BODY, now=1000.0))
    # The header text is signed as sent: a zero-padded timestamp is another message.
    assert "does not match" in str(signing.check("k", "01000", sig, BODY, now=1000.0))


def test_skew_beyond_five_minutes_either_way_fails() -> None:
    sig = signing.sign("k", 1000, BODY)
    assert "+301 s" in str(signing.check("k", "1000", sig, BODY, now=1301.0))
    assert "-301 s" in str(signing.check("k", "1000", sig, BODY, now=699.0))
    assert signing.check("k", "1000", sig, BODY, now=700.0) is None


def test_missing_or_malformed_headers_are_named() -> None:
    assert "missing X-Marksman-Timestamp" in str(signing.check("k", None, "ab", BODY, now=0))
    assert "missing X-Marksman-Signature" in str(signing.check("k", "0", "", BODY, now=0))
    assert "not whole Unix seconds" in str(signing.check("k", "12.5", "ab", BODY, now=0))
