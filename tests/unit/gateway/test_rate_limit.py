"""Per-API-key rate limits through the gateway app: 429 with a JSON body and Retry-After, recovery, scopes."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.gateway.channel_rules import RateLimit
from services.gateway.ratelimit import KeyRateLimiter
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import bearer

PROBE = "/v1/quotes/q-none"  # a platform route that answers 404 without calling any upstream


def limits(channel_rules: dict[str, Any]) -> dict[str, Any]:
    return {"currency": "GBP", "rules": [], "channel_rules": channel_rules}


def refused(scope: str) -> float:
    return REGISTRY.get_sample_value("marksman_gateway_rate_limited_total", {"scope": scope}) or 0.0


def test_a_burst_over_the_limit_gets_429_with_retry_after_and_recovers_after_the_window(
        client: TestClient, admin: dict[str, str], platform: dict[str, str]) -> None:
    saved = client.put("/v1/pricing/rule-set", headers=admin, json=limits(
        {"api_keys": {"platform": {"rate_limit": {"requests_per_s": 2, "burst": 3}}}}))
    assert saved.status_code == 201, saved.text
    before = refused("platform")
    answers = [client.get(PROBE, headers=platform) for _ in range(4)]
    assert [a.status_code for a in answers] == [404, 404, 404, 429]
    over = answers[-1]
    retry_after = int(over.headers["Retry-After"])
    assert retry_after == 1  # the burst window is one second
    body = over.json()
    assert body["error"] == "rate limit exceeded" and body["request_id"] == over.headers["X-Request-ID"]
    assert body["detail"] == {"scope": "platform", "requests_per_s": 2, "burst": 3, "retry_after_s": retry_after}
    assert refused("platform") == before + 1
    # The admin key has no limit of its own and there is no default: never limited.
    assert all(client.get("/v1/pricing/rule-set", headers=admin).status_code == 200 for _ in range(6))
    time.sleep(retry_after + 0.05)
    assert client.get(PROBE, headers=platform).status_code == 404


def test_keys_without_their_own_limit_share_the_default_each_with_its_own_counter(
        client: TestClient, keys: KeyStore, admin: dict[str, str]) -> None:
    client.put("/v1/pricing/rule-set", headers=admin,
               json=limits({"rate_limit": {"requests_per_s": 1, "burst": 1}}))
    first, second = bearer(keys.create_key("shop-a", ["platform"])), bearer(keys.create_key("shop-b", ["platform"]))
    before = refused("default")
    assert client.get(PROBE, headers=first).status_code == 404
    assert client.get(PROBE, headers=second).status_code == 404  # its own counter
    limited = client.get(PROBE, headers=first)
    assert limited.status_code == 429 and limited.json()["detail"]["scope"] == "default"
    assert refused("default") == before + 1
    # A bad key is refused by authentication (401) before any limit is counted.
    assert client.get(PROBE, headers=bearer("mk_unknown")).status_code == 401


def test_a_new_rule_set_version_changes_the_limit_at_once(
        client: TestClient, admin: dict[str, str], platform: dict[str, str]) -> None:
    client.put("/v1/pricing/rule-set", headers=admin,
               json=limits({"api_keys": {"platform": {"rate_limit": {"requests_per_s": 1, "burst": 1}}}}))
    assert client.get(PROBE, headers=platform).status_code == 404
    assert client.get(PROBE, headers=platform).status_code == 429
    client.put("/v1/pricing/rule-set", headers=admin, json=limits({}))
    assert client.get(PROBE, headers=platform).status_code == 404


def test_the_sustained_rate_holds_over_ten_seconds_after_the_burst() -> None:
    limiter = KeyRateLimiter()
    limit = RateLimit(requests_per_s=1, burst=5)
    # 10 requests per 10 s sustained, at most 5 in any second: the first 5 go, the 6th waits for the next second.
    assert [limiter.check("k", "k", limit) is None for _ in range(6)] == [True] * 5 + [False]
    refusal = limiter.check("k", "k", limit)
    assert refusal is not None and refusal.retry_after_s == 1 and refusal.scope == "k"
