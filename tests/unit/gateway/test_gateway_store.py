"""The gateway's key store: hashes only, scopes, revocation, the verification cache, bootstrap keys."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore, hash_key


def test_keys_are_random_and_only_their_hashes_are_stored(keys: KeyStore) -> None:
    key = keys.create_key("shop", ["platform"])
    assert re.fullmatch(r"mk_[A-Za-z0-9_-]{32}", key)
    with keys.engine.connect() as connection:
        rows = connection.execute(text("SELECT name, key_hash, scopes, revoked_at FROM api_keys")).all()
    assert rows == [("shop", hash_key(key), "platform", None)]
    assert key not in str(rows)
    assert keys.verify(key) == frozenset({"platform"})
    assert keys.verify("mk_" + "x" * 32) is None and keys.verify("") is None


def test_unknown_scopes_are_refused(keys: KeyStore) -> None:
    with pytest.raises(ValueError, match="scopes"):
        keys.create_key("x", ["root"])
    with pytest.raises(ValueError, match="scopes"):
        keys.create_key("x", [])


def test_verification_is_cached(keys: KeyStore) -> None:
    key = keys.create_key("shop", ["platform"])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(keys.engine, "before_cursor_execute", count)
    try:
        for _ in range(100):
            assert keys.verify(key) == frozenset({"platform"})
        assert keys.cached(key) == (True, frozenset({"platform"}))
        for _ in range(100):
            assert keys.verify("mk_unknown") is None
    finally:
        event.remove(keys.engine, "before_cursor_execute", count)
    assert len(statements) == 2  # one lookup for the good key, one for the unknown key


def test_revocation_takes_effect_at_once(keys: KeyStore) -> None:
    key = keys.create_key("shop", ["platform", "admin"])
    assert keys.verify(key) == frozenset({"platform", "admin"})
    assert keys.revoke(key) and not keys.revoke(key)
    assert keys.verify(key) is None


def test_bootstrap_keys_on_first_start_only(keys: KeyStore, tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "api-keys.txt"
    created = keys.ensure_bootstrap_keys(path)
    assert created is not None and set(created) == {"admin", "platform"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert lines == [f"admin={created['admin']}", f"platform={created['platform']}"]
    assert keys.verify(created["admin"]) == frozenset({"admin"})
    assert keys.verify(created["platform"]) == frozenset({"platform"})
    assert keys.ensure_bootstrap_keys(path) is None


def test_migrations_apply_twice_and_default_to_the_data_dir(tmp_path: Path) -> None:
    settings = GatewaySettings(data_dir=tmp_path / "var")
    first = KeyStore.open(settings.resolved_database_url())
    first.create_key("shop", ["platform"])
    first.close()
    again = KeyStore.open(settings.resolved_database_url())
    assert again.count() == 1
    again.close()
    assert (tmp_path / "var" / "gateway.db").exists()
    assert settings.resolved_bootstrap_keys_file() == tmp_path / "var" / "api-keys.txt"


def test_settings_read_the_gateway_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_GATEWAY_PORT", "9999")
    monkeypatch.setenv("MARKSMAN_GATEWAY_PROFILE_ADDR", "profile:50051")
    monkeypatch.setenv("MARKSMAN_GATEWAY_SEGMENT_ADDR", "segment:50052")
    settings = GatewaySettings()
    assert (settings.port, settings.profile_addr, settings.service_name) == (9999, "profile:50051", "gateway")
    assert settings.max_body_bytes == 10 * 1024 * 1024 and settings.upstream_timeout_s == 5.0
    assert settings.other_upstreams() == {"segment": "segment:50052", "recommend": "", "campaign": ""}
