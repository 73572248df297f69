"""Customer routes: upsert (unicode intact), portrait, consent, identity merge, erasure everywhere, admin."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from marksman.common.v1 import common_pb2

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import FakeServer, order

NAME = "Zoë 王小明"


def test_unicode_names_reach_profile_intact(client: TestClient, platform: dict[str, str],
                                            upstream: FakeServer) -> None:
    customer = {"customer_id": "c-1", "name": NAME, "email": "zoe@example.com", "region": "United Kingdom",
                "signup_at": "2010-12-01T08:26:00+01:00",
                "consents": [{"channel": "email", "granted": True, "changed_at": "2011-01-05T10:00:00Z"},
                             {"channel": "sms", "granted": False}]}
    response = client.post("/v1/customers", json={"customers": [customer]}, headers=platform)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [{"customer_id": "c-1", "ok": True, "created": True, "error": None}]}
    stored = upstream.profile.customers["c-1"]
    assert stored.name == NAME and stored.email == "zoe@example.com"
    assert stored.signup_at.ToDatetime(tzinfo=UTC) == datetime(2010, 12, 1, 7, 26, tzinfo=UTC)
    assert [c.channel for c in stored.consents] == [common_pb2.CONTACT_CHANNEL_EMAIL, common_pb2.CONTACT_CHANNEL_SMS]
    assert stored.consents[1].HasField("changed_at")  # defaults to the time of the request
    # And back: the raw JSON response bytes are UTF-8 with the characters themselves.
    again = client.post("/v1/customers", json={"customers": [{**customer, "customer_id": "c-2"}]}, headers=platform)
    assert again.status_code == 200 and upstream.profile.customers["c-2"].name == NAME


def test_some_customers_failing_is_207(client: TestClient, platform: dict[str, str]) -> None:
    body = {"customers": [{"customer_id": "c-1"}, {"customer_id": "c-2", "region": "Atlantis"}]}
    response = client.post("/v1/customers", json=body, headers=platform)
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[0]["ok"] and not results[1]["ok"] and "Atlantis" in results[1]["error"]


def test_invalid_customers_are_422_with_field_paths(client: TestClient, platform: dict[str, str]) -> None:
    body = {"customers": [{"customer_id": "c-1", "email": "not-an-email"}]}
    response = client.post("/v1/customers", json=body, headers=platform)
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "invalid request"
    assert error["detail"][0]["loc"] == ["body", "customers", 0, "email"]
    assert "not-an-email" not in response.text  # the input is not echoed
    json_type = {**platform, "Content-Type": "application/json"}
    malformed = client.post("/v1/customers", content=b"{nope", headers=json_type)
    assert malformed.status_code == 400 and malformed.json()["error"] == "malformed JSON"
    untyped = client.post("/v1/customers", content=b'{"customers": []}', headers=platform)
    assert untyped.status_code == 415 and "Content-Type" in untyped.json()["detail"]


def test_portrait_conversion(client: TestClient, platform: dict[str, str]) -> None:
    client.post("/v1/customers", json={"customers": [{"customer_id": "c-1", "region": "United Kingdom"}]},
                headers=platform)
    empty = client.get("/v1/customers/c-1/profile", headers=platform)
    assert empty.status_code == 200, empty.text
    p = empty.json()
    assert p["recency_days"] is None and p["lifecycle_stage"] is None and p["rfm_segment"] is None
    assert p["preferred_payment_channel"] is None and p["first_order_at"] is None
    assert p["computed_at"] == "2011-12-10T00:00:00Z" and p["region"] == "United Kingdom"
    client.post("/v1/events", json={"events": [order("o-1"), order("o-2")]}, headers=platform)
    p = client.get("/v1/customers/c-1/profile", headers=platform).json()
    assert (p["recency_days"], p["frequency"], p["lifecycle_stage"]) == (3, 2, "active")
    assert p["monetary"] == {"amount_minor": 1020, "currency": "GBP"}
    assert p["preferred_payment_channel"] == "alipay" and p["purchasing_power_by_category"] == {"Home": 0.5}


def test_unknown_customer_is_404_and_malformed_id_422(client: TestClient, platform: dict[str, str]) -> None:
    missing = client.get("/v1/customers/nobody/profile", headers=platform)
    assert missing.status_code == 404
    assert "nobody" in missing.json()["error"]
    malformed = client.get("/v1/customers/bad%20id!/profile", headers=platform)
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "customer_id"]


def test_consent_and_identity_merge(client: TestClient, platform: dict[str, str]) -> None:
    client.post("/v1/events", json={"events": [
        {"event_id": "v-1", "type": "view", "anonymous_id": "device-7", "occurred_at": "2011-12-05T10:00:00Z",
         "lines": [{"sku": "22423"}]}]}, headers=platform)
    client.post("/v1/customers", json={"customers": [{"customer_id": "c-1"}]}, headers=platform)
    consent = client.put("/v1/customers/c-1/consent", headers=platform, json={"consents": [
        {"channel": "push", "granted": True, "changed_at": "2011-12-01T00:00:00Z"}]})
    assert consent.status_code == 200, consent.text
    assert consent.json() == {"customer_id": "c-1", "consents": [
        {"channel": "push", "granted": True, "changed_at": "2011-12-01T00:00:00Z"}]}
    merged = client.post("/v1/identities/merge", json={"customer_id": "c-1", "anonymous_id": "device-7"},
                         headers=platform)
    assert merged.status_code == 200 and merged.json() == {"events_moved": 1}
    unknown = client.post("/v1/identities/merge", json={"customer_id": "c-9", "anonymous_id": "device-7"},
                          headers=platform)
    assert unknown.status_code == 404


def test_erasure_reaches_every_configured_service(settings: GatewaySettings, keys: KeyStore,
                                                  admin: dict[str, str], upstream: FakeServer) -> None:
    wired = settings.model_copy(update={"segment_addr": upstream.address})
    with TestClient(create_app(wired, keys=keys)) as client:
        client.post("/v1/customers", json={"customers": [{"customer_id": "c-1"}]}, headers=admin)
        response = client.delete("/v1/customers/c-1", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"customer_id": "c-1", "services": {"gateway": 0, "profile": 3, "segment": 1},
                               "skipped": ["recommend", "campaign"]}
    assert upstream.profile.erased == ["c-1"]


def test_erasure_with_a_service_down_is_503_naming_it(settings: GatewaySettings, keys: KeyStore,
                                                      admin: dict[str, str]) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    wired = settings.model_copy(update={"campaign_addr": dead})
    with TestClient(create_app(wired, keys=keys)) as client:
        response = client.delete("/v1/customers/c-1", headers=admin)
    assert response.status_code == 503
    body = response.json()
    assert "campaign service unavailable" in body["error"] and "retry" in body["error"]
    assert body["detail"]["erased"] == {"gateway": 0, "profile": 0} and "campaign" in body["detail"]["failed"]


def test_admin_summary_and_recompute(client: TestClient, admin: dict[str, str]) -> None:
    client.post("/v1/customers", json={"customers": [{"customer_id": "c-1"}]}, headers=admin)
    summary = client.get("/v1/admin/summary", headers=admin)
    assert summary.status_code == 200
    assert summary.json() == {
        "customers": 1, "customers_with_orders": 1, "orders": 2, "events": 0,
        "revenue": {"amount_minor": 12345, "currency": "GBP"},
        "rfm_segments": {"champions": 1}, "lifecycle_stages": {"active": 1},
        "base_computed_at": None, "pending_portraits": 0,
    }
    recompute = client.post("/v1/admin/portraits/recompute", headers=admin)
    assert recompute.json() == {"customers": 1, "seconds": 0.25, "computed_at": "2011-12-10T00:00:00Z"}
