"""API keys at the HTTP edge: 401 without a valid key (with WWW-Authenticate), 403 without the scope."""

from __future__ import annotations

from fastapi.testclient import TestClient

from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import bearer


def test_missing_key_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/customers/c-1/profile")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert "API key" in body["error"] and body["request_id"] == response.headers["X-Request-ID"]


def test_wrong_key_is_401(client: TestClient) -> None:
    for header in ("Bearer mk_wrong", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer "):
        response = client.get("/v1/customers/c-1/profile", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_platform_key_on_admin_routes_is_403(client: TestClient, platform: dict[str, str]) -> None:
    for method, path in (("DELETE", "/v1/customers/c-1"), ("GET", "/v1/admin/summary"),
                         ("POST", "/v1/admin/portraits/recompute")):
        response = client.request(method, path, headers=platform)
        assert response.status_code == 403, path
        assert "admin" in response.json()["error"]


def test_admin_key_may_use_platform_routes(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/v1/customers", json={"customers": [{"customer_id": "c-1"}]}, headers=admin)
    assert response.status_code == 200, response.text


def test_a_revoked_key_stops_working(client: TestClient, keys: KeyStore) -> None:
    key = keys.create_key("temporary", ["platform"])
    body = {"customers": [{"customer_id": "c-1"}]}
    assert client.post("/v1/customers", json=body, headers=bearer(key)).status_code == 200
    assert keys.revoke(key)
    assert client.post("/v1/customers", json=body, headers=bearer(key)).status_code == 401
