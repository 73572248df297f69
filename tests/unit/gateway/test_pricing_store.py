"""The pricing store on SQLite and PostgreSQL: rule-set versions, quotes, idempotent redemptions, usage, erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Table

from services.gateway.models import metadata
from services.gateway.pricing_rules import RuleSetIn
from services.gateway.store import KeyStore, NewQuote, PricingStore, RedeemStatus, Redemption

NOW = datetime(2011, 12, 10, tzinfo=UTC)
SPEC = RuleSetIn.model_validate({"currency": "GBP", "rules": [
    {"id": "wallet", "kind": "payment", "name": "Wallet", "payment_channels": ["alipay"], "discount_bp": 200}]})


@pytest.fixture
def store(database_url: str) -> PricingStore:
    keys = KeyStore.open(database_url)  # applies the gateway's migrations
    return PricingStore(keys.engine, current_ttl_s=0.0)


def new_quote(quote_id: str, customer: str | None = "c1", discounts: tuple[tuple[str, int], ...] = (("deals", 150),),
              version: int = 1) -> NewQuote:
    return NewQuote(quote_id, customer, version, NOW, NOW + timedelta(minutes=15), discounts,
                    orjson.dumps({"quote_id": quote_id}))


def _table(difference: Any) -> str:
    """The table an autogenerate difference is about: ('add_table', Table), ('add_column', schema, name,
    Column), ('add_index', Index), [('modify_type', schema, name, column, ...)] ..."""
    operation = difference[0] if isinstance(difference, list) else difference
    for part in operation[1:]:
        if isinstance(part, str):
            return part
        if isinstance(part, Table):
            return str(part.name)
        if getattr(part, "table", None) is not None:
            return str(part.table.name)
    return ""


def test_the_migrations_build_exactly_the_pricing_models(store: PricingStore) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in differences if _table(d).startswith("pricing")] == []


def test_rule_sets_get_consecutive_versions_and_old_ones_stay(store: PricingStore) -> None:
    assert store.current_rule_set() is None
    first = store.save_rule_set(SPEC, NOW)
    second = store.save_rule_set(SPEC.model_copy(update={"floor_bp": 100}), NOW + timedelta(hours=1))
    assert (first.version, second.version) == (1, 2)
    fresh = PricingStore(store.engine)  # another process: reads from the database
    current = fresh.current_rule_set()
    assert current is not None and current.version == 2 and current.spec.floor_bp == 100
    old = fresh.rule_set(1)
    assert old is not None and old.spec == SPEC and old.created_at == NOW
    assert fresh.rule_set(3) is None


def test_the_current_rule_set_is_cached_and_a_new_version_replaces_it(
    store: PricingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr("services.gateway.store.time.monotonic", lambda: clock[0])
    here = PricingStore(store.engine, current_ttl_s=1.0)  # this gateway process
    there = PricingStore(store.engine, current_ttl_s=1.0)  # another one on the same database
    first = here.save_rule_set(SPEC, NOW)
    assert here.current_rule_set() is first
    monkeypatch.setattr(here, "engine", None)  # any read of the database would now fail
    assert here.current_rule_set() is first  # answered from memory: no query per quote
    monkeypatch.setattr(here, "engine", store.engine)
    second = there.save_rule_set(SPEC.model_copy(update={"floor_bp": 100}), NOW)
    assert there.current_rule_set() is second  # the saving process uses it at once
    clock[0] += 0.5
    cached = here.current_rule_set()
    assert cached is not None and cached.version == 1  # the other process's version: seen within the TTL
    clock[0] += 0.6
    fresh = here.current_rule_set()
    assert fresh is not None and fresh.version == 2 and fresh.spec.floor_bp == 100
    third = here.save_rule_set(SPEC.model_copy(update={"floor_bp": 200}), NOW)
    assert here.current_rule_set() is third and third.version == 3  # a local save never waits for the TTL


def test_quotes_are_stored_and_read_back(store: PricingStore) -> None:
    store.save_quotes([new_quote("q-1"), new_quote("q-2", customer=None)])
    found = store.quote("q-1")
    assert found is not None and found.customer_id == "c1" and found.expires_at == NOW + timedelta(minutes=15)
    assert orjson.loads(found.body) == {"quote_id": "q-1"}
    assert store.quote("q-9") is None


def test_redemptions_are_idempotent_and_a_quote_is_redeemed_once(store: PricingStore) -> None:
    store.save_quotes([new_quote("q-1", discounts=(("deals", 150), ("wallet", 20))), new_quote("q-2")])
    outcome = store.redeem([Redemption("e-1", "q-1", NOW), Redemption("e-2", "q-1", NOW),
                            Redemption("e-3", "q-unknown", NOW), Redemption("e-1", "q-1", NOW)])
    assert outcome == {"e-1": RedeemStatus.RECORDED, "e-2": RedeemStatus.ALREADY_REDEEMED,
                       "e-3": RedeemStatus.UNKNOWN_QUOTE}
    assert store.redeem([Redemption("e-1", "q-1", NOW)]) == {"e-1": RedeemStatus.DUPLICATE}
    assert store.redeem([Redemption("e-4", "q-2", NOW)]) == {"e-4": RedeemStatus.RECORDED}
    usage = store.usage("c1", ["deals", "wallet", "other"])
    assert usage.customer_uses == {"deals": 2, "wallet": 1}
    assert usage.budget_spent == {"deals": 300, "wallet": 20}
    assert store.usage("c2", ["deals"]).customer_uses == {}
    assert store.usage(None, ["deals"]).budget_spent == {"deals": 300}


def test_erasure_deletes_quotes_and_keeps_anonymous_redemptions_for_budgets(store: PricingStore) -> None:
    store.save_quotes([new_quote("q-1"), new_quote("q-2", customer="c2")])
    store.redeem([Redemption("e-1", "q-1", NOW)])
    assert store.erase("c1") == 3  # one quote deleted, a redemption and its rule row made anonymous
    assert store.quote("q-1") is None and store.quote("q-2") is not None
    usage = store.usage("c1", ["deals"])
    assert usage.customer_uses == {} and usage.budget_spent == {"deals": 150}
    assert store.redeem([Redemption("e-1", "q-1", NOW)]) == {"e-1": RedeemStatus.DUPLICATE}
