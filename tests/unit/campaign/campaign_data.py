"""Shared test values for the campaign tests: a spec, partners, a store with a launched campaign."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from services.campaign import signing
from services.campaign.spec import Route, Spec
from services.campaign.store import CampaignStore, NewPartner, PartnerInfo

NOW = datetime(2011, 12, 10, 12, 0, tzinfo=UTC)
WALL = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def spec(**changes: Any) -> Spec:
    base = Spec(name="winter", goal="retention", segment="rfm_at_risk",
                routes=(Route("email", "mailer", 5), Route("sms", "texter", 12)),
                template="Hello {name}, use {offer_code}", currency="GBP")
    return replace(base, **changes)


def add_partner(store: CampaignStore, name: str, channel: str, mode: str = "push", endpoint: str = "http://x/messages",
                rate: int = 1000, batch: int = 100, key: str | None = None) -> PartnerInfo:
    return store.add_partner(NewPartner(name, endpoint, "s" * 20, signing.key_hash(key or f"key-{name}"), rate, batch,
                                        mode, channel), NOW)
