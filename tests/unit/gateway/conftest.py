"""Fixtures of the gateway tests: a real gRPC server with fake upstreams, a key store, the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import FakeServer, bearer, start_fake_server


@pytest.fixture
def upstream() -> Iterator[FakeServer]:
    running = start_fake_server()
    yield running
    running.stop()


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    store = KeyStore.open(f"sqlite:///{tmp_path / 'gateway.db'}")
    yield store
    store.close()


@pytest.fixture
def api_keys(keys: KeyStore) -> dict[str, str]:
    return {"admin": keys.create_key("admin", ["admin"]), "platform": keys.create_key("platform", ["platform"])}


@pytest.fixture
def settings(tmp_path: Path, upstream: FakeServer) -> GatewaySettings:
    return GatewaySettings(
        data_dir=tmp_path,
        profile_addr=upstream.address,
        segment_addr="",
        recommend_addr="",
        campaign_addr="",
        # Generous enough that a loaded CI machine does not trip it; the slow fake sleeps past it.
        upstream_timeout_s=2.0,
        ingest_timeout_s=5.0,
        health_timeout_s=0.5,
    )


@pytest.fixture
def client(settings: GatewaySettings, keys: KeyStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, keys=keys)) as test_client:
        yield test_client


@pytest.fixture
def platform(api_keys: dict[str, str]) -> dict[str, str]:
    return bearer(api_keys["platform"])


@pytest.fixture
def admin(api_keys: dict[str, str]) -> dict[str, str]:
    return bearer(api_keys["admin"])


