"""The control group: a deterministic share of a campaign's audience, chosen by a hash of campaign and customer."""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def position(campaign_id: int, customer_id: str) -> float:
    """Where the customer falls in [0, 1) for this campaign; the same pair always falls in the same place,
    and different campaigns split the same customers independently."""
    digest = hashlib.blake2b(f"{campaign_id}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def in_holdout(campaign_id: int, customer_id: str, percent: float) -> bool:
    return percent > 0 and position(campaign_id, customer_id) < percent / 100.0
