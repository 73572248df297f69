"""The real processes of `marksman up`, driven through the gateway over HTTP (httpx)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from services.segment import synthetic
from services.stack import Stack

pytestmark = pytest.mark.integration
EMAIL = "zoe.integration@example.com"
PHONE = "+44 7700 900123"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("stack")
    running = Stack(folder, ephemeral_ports=True, env={
        "MARKSMAN_AS_OF": "2011-12-10T00:00:00Z",
        "MARKSMAN_GATEWAY_UPSTREAM_TIMEOUT_S": "2",
    })
    running.start()
    yield running
    codes = running.stop()
    # uvicorn re-raises the SIGTERM it handled once it has shut down, so the gateway's code is -15;
    # its log shows the shutdown was graceful.
    assert codes == {"gateway": -15, "campaign": 0, "recommend": 0, "segment": 0, "profile": 0, "profile-2": 0}, codes
    assert "Finished server process" in (folder / "logs" / "gateway.log").read_text()


@pytest.fixture(scope="module")
def platform(stack: Stack) -> Iterator[httpx.Client]:
    key = stack.api_keys()["platform"]
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    key = stack.api_keys()["admin"]
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client


def order(event_id: str, customer: str, when: str, quantity: int = 2, price: int = 250) -> dict:  # type: ignore[type-arg]
    return {"event_id": event_id, "type": "order", "customer_id": customer, "occurred_at": when,
            "currency": "GBP", "payment_channel": "alipay", "sales_channel": "app",
            "lines": [{"sku": "85123A", "quantity": quantity, "unit_price_minor": price, "list_price_minor": 300,
                       "category": "Home"}]}


def test_customer_events_and_portrait_round_trip(platform: httpx.Client) -> None:
    created = platform.post("/v1/customers", json={"customers": [{
        "customer_id": "it-1", "name": "Zoë 王小明", "email": EMAIL, "phone": PHONE, "region": "United Kingdom",
        "consents": [{"channel": "email", "granted": True, "changed_at": "2011-01-01T00:00:00Z"}]}]})
    assert created.status_code == 200, created.text
    body = {"events": [
        order("it-o1", "it-1", "2011-11-01T10:00:00Z"),
        {"event_id": "it-bad", "type": "teleport", "customer_id": "it-1", "occurred_at": "2011-11-01T10:00:00Z"},
        order("it-o2", "it-1", "2011-12-01T10:00:00Z", quantity=1, price=300),
        {**order("it-neg", "it-1", "2011-12-01T10:00:00Z"), "lines": [{"sku": "X", "quantity": -1}]},
        {**order("it-future", "it-1", "3000-01-01T00:00:00Z")},
        {"event_id": "it-r1", "type": "refund", "customer_id": "it-1", "occurred_at": "2011-12-02T10:00:00Z",
         "order_id": "it-o2"},
    ]}
    response = platform.post("/v1/events", json=body)
    assert response.status_code == 207, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (3, 3)
    by_index = {r["index"]: r for r in result["results"]}
    assert by_index[1]["status"] == "rejected" and by_index[3]["status"] == "rejected"
    assert by_index[4]["status"] == "rejected" and "24 hours" in by_index[4]["reason"]
    again = platform.post("/v1/events", json={"events": [order("it-o1", "it-1", "2011-11-01T10:00:00Z")]}).json()
    assert again["duplicates"] == 1

    portrait = platform.get("/v1/customers/it-1/profile")
    assert portrait.status_code == 200, portrait.text
    p = portrait.json()
    assert p["frequency"] == 2
    assert p["monetary"] == {"amount_minor": 500, "currency": "GBP"}  # 500 + 300 - 300 refunded
    assert p["recency_days"] == 8 and p["preferred_payment_channel"] == "alipay"
    # o1 (500) was bought below list price, o2 (300) at list: 500 / 800.
    assert p["top_categories"] == ["Home"] and p["price_sensitivity"] == 0.625
    assert p["consents"][0]["channel"] == "email"


def test_merge_then_erase_everywhere(platform: httpx.Client, admin: httpx.Client, stack: Stack) -> None:
    platform.post("/v1/events", json={"events": [{
        "event_id": "it-v1", "type": "view", "anonymous_id": "device-77", "occurred_at": "2011-12-05T10:00:00Z",
        "lines": [{"sku": "22423", "category": "Kitchen"}]}]})
    platform.post("/v1/customers", json={"customers": [{"customer_id": "it-2", "email": EMAIL}]})
    merged = platform.post("/v1/identities/merge", json={"customer_id": "it-2", "anonymous_id": "device-77"})
    assert merged.status_code == 200, merged.text
    assert platform.get("/v1/customers/it-2/profile").json()["views"] == 1
    assert platform.delete("/v1/customers/it-2").status_code == 403
    erased = admin.delete("/v1/customers/it-2")
    assert erased.status_code == 200, erased.text
    assert erased.json()["services"]["profile"] >= 2 and "segment" in erased.json()["services"]
    assert platform.get("/v1/customers/it-2/profile").status_code == 404
    late = platform.post("/v1/events", json={"events": [order("it-late", "it-2", "2011-12-06T10:00:00Z")]}).json()
    assert late["rejected"] == 1


def test_segments_over_real_portraits(platform: httpx.Client, admin: httpx.Client) -> None:
    # Portraits trail their events by design; a recompute makes them current before segment pulls them.
    assert admin.post("/v1/admin/portraits/recompute").status_code == 200
    synced = admin.post("/v1/admin/segments/sync")
    assert synced.status_code == 200, synced.text
    bad = admin.post("/v1/segments/preview", json={"rule": "monetry > 1"})
    assert bad.status_code == 422 and "column" in bad.text and "monetary" in bad.text
    preview = admin.post("/v1/segments/preview", json={"rule": 'frequency >= 2 and preferred_payment == "alipay"'})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] >= 1 and "it-1" in preview.json()["sample"]
    created = admin.post("/v1/segments", json={"name": "it-repeat", "rule": "frequency >= 2"})
    assert created.status_code == 201, created.text
    refreshed = admin.post("/v1/segments/it-repeat/refresh")
    assert refreshed.status_code == 200, refreshed.text
    version = refreshed.json()["version"]
    members = admin.get(f"/v1/segments/it-repeat/versions/{version}/members")
    assert "it-1" in members.json()["customer_ids"]
    mine = platform.get("/v1/customers/it-1/segments")
    assert mine.status_code == 200 and "it-repeat" in [s["name"] for s in mine.json()["segments"]]
    assert platform.post("/v1/segments/preview", json={"rule": "frequency > 1"}).status_code == 403


def test_recommendations_trained_through_the_gateway(platform: httpx.Client, admin: httpx.Client) -> None:
    items = platform.post("/v1/items", json={"items": [
        {"sku": "it-g0-0", "category": "Garden", "price": {"amount_minor": 450, "currency": "GBP"}, "tags": ["green"]},
        {"sku": "", "category": "Garden"}]})
    assert items.status_code == 207 and items.json()["accepted"] == 1, items.text
    # Two groups of shoppers with their own items, January to November.
    events = [{"event_id": f"it-rec-{c}-{n}", "type": "order", "customer_id": f"it-r{c}",
               "occurred_at": f"2011-{1 + (n * 3 + c) % 11:02d}-1{n}T10:00:00Z", "currency": "GBP",
               "lines": [{"sku": f"it-g{c % 2}-{(c + n) % 6}", "quantity": 1, "unit_price_minor": 100 + 10 * n,
                          "category": "Garden" if c % 2 == 0 else "Kitchen"}]}
              for c in range(12) for n in range(5)]
    assert platform.post("/v1/events", json={"events": events}).json()["accepted"] == len(events)
    trained = admin.post("/v1/models/train", json={"wait": True, "params": {"epochs": 5, "components": 8}})
    assert trained.status_code == 200 and trained.json()["state"] == "serving", trained.text
    version = trained.json()["version"]
    assert trained.json()["interactions"] >= len(events) and trained.json()["evaluation"]["k"] == 10
    known = platform.get("/v1/customers/it-r2/recommendations?k=3")
    assert known.status_code == 200, known.text
    assert known.json()["fallback"] is None and known.json()["model_version"] == version and len(known.json()["items"]) == 3
    unknown = platform.get("/v1/customers/it-nobody/recommendations?k=3").json()
    assert unknown["fallback"] == "popular_overall" and unknown["items"]
    assert platform.get("/v1/customers/it-r2/recommendations?k=0").status_code == 422
    assert platform.get("/v1/customers/it-r2/recommendations?k=10000").status_code == 422
    assert platform.post("/v1/models/train", json={}).status_code == 403
    assert admin.get("/v1/models").json()["serving_version"] == version
    seen = platform.get("/v1/items/it-g1-3").json()
    assert seen["source"] == "events" and seen["category"] == "Kitchen" and seen["price_band"]
    erased = admin.delete("/v1/customers/it-r2")
    assert erased.status_code == 200 and erased.json()["services"]["recommend"] >= 1, erased.text
    assert platform.get("/v1/customers/it-r2/recommendations?k=3").json()["fallback"] == "popular_overall"


def predictive_events(customers: int) -> list[dict]:  # type: ignore[type-arg]
    """A year of synthetic orders and refunds (services/segment/synthetic.py) as gateway events."""
    lines = synthetic.order_lines(customers, pd.Timestamp("2011-12-09", tz="UTC"), seed=4)
    events = []
    for order_id, group in lines.groupby("order_id", sort=False):
        first = group.iloc[0]
        events.append({
            "event_id": f"it-p-{order_id}", "type": "refund" if first["is_refund"] else "order",
            "customer_id": f"it-p-{first['customer_id']}", "currency": "GBP",
            "occurred_at": first["occurred_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lines": [{"sku": f"it-p-{row.category}", "quantity": 1, "unit_price_minor": abs(int(row.amount_minor)),
                       "category": row.category} for row in group.itertuples()]})
    return events


def test_predictive_model_and_model_audience_through_the_gateway(platform: httpx.Client, admin: httpx.Client) -> None:
    events = predictive_events(150)
    assert platform.post("/v1/events", json={"events": events}).json()["accepted"] == len(events)
    assert admin.post("/v1/admin/portraits/recompute").status_code == 200
    assert admin.post("/v1/admin/segments/sync").status_code == 200
    assert admin.post("/v1/predictive-models/churn/train").status_code == 422
    assert platform.post("/v1/predictive-models/retention/train").status_code == 403
    created = admin.post("/v1/segments", json={"name": "it-lapsing", "model": {"goal": "retention", "top_k": 10}})
    assert created.status_code == 201 and created.json()["kind"] == "model", created.text
    early = admin.post("/v1/segments/it-lapsing/refresh")
    assert early.status_code == 409 and "no retention model" in early.json()["error"]

    trained = admin.post("/v1/predictive-models/retention/train", json={"horizon_days": 30}, timeout=120)
    assert trained.status_code == 201, trained.text
    model = trained.json()
    assert (model["goal"], model["version"], model["horizon_days"]) == ("retention", 1, 30)
    q = model["quality"]
    assert q["held_out"] > 0 and 0 < q["base_rate"] < 1 and isinstance(q["better_than_chance"], bool)
    assert q["auc"] is not None and 0 <= q["auc"] <= 1 and q["top_decile_lift"] is not None
    assert model["lines"] >= sum(len(e["lines"]) for e in events) and model["seconds"] > 0
    listed = admin.get("/v1/predictive-models").json()
    assert [m["goal"] for m in listed["models"]] == ["retention"] and "growth" in listed["untrained_goals"]

    refreshed = admin.post("/v1/segments/it-lapsing/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["size"] == 10 and refreshed.json()["model_version"] == 1
    members = admin.get(f"/v1/segments/it-lapsing/versions/{refreshed.json()['version']}/members").json()
    assert len(members["customer_ids"]) == len(members["scores"]) == 10
    assert all(c.startswith("it-p-") for c in members["customer_ids"]) and all(0 <= x <= 1 for x in members["scores"])


def test_auth_errors_and_health(stack: Stack) -> None:
    assert httpx.get(stack.gateway_url + "/v1/customers/it-1/profile").status_code == 401
    wrong = {"Authorization": "Bearer mk_wrong"}
    assert httpx.get(stack.gateway_url + "/v1/customers/it-1/profile", headers=wrong).status_code == 401
    assert httpx.get(stack.gateway_url + "/healthz").status_code == 200
    assert httpx.get(stack.gateway_url + "/readyz").status_code == 200


def test_no_personal_data_in_metrics_or_logs(platform: httpx.Client, stack: Stack) -> None:
    platform.get("/v1/customers/it-1/profile")
    for name in ("profile", "gateway"):
        text = httpx.get(stack.metrics_url(name)).text
        assert "marksman_" in text
        assert "it-1" not in text and EMAIL not in text
    logs = "".join(p.read_text(errors="replace") for p in (stack.data_dir / "logs").glob("*.log"))
    assert EMAIL not in logs and PHONE not in logs


def test_a_stopped_recommend_gives_labelled_popular_items(stack: Stack, platform: httpx.Client) -> None:
    # The recommendations answered above filled the gateway's popular list in the background.
    assert platform.get("/v1/customers/it-r3/recommendations?k=3").json()["degraded"] is False
    recommend = next(p for p in stack.processes if p.name == "recommend")
    recommend.popen.send_signal(signal.SIGTERM)
    recommend.popen.wait(15)
    answer = platform.get("/v1/customers/it-r3/recommendations?k=3")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["degraded"] is True and body["fallback"] == "gateway_popular_cache" and len(body["items"]) == 3
    assert body["degraded_reason"].startswith("recommend service unavailable")
    ready = httpx.get(stack.gateway_url + "/readyz")
    assert ready.status_code == 200 and ready.json()["degraded"] == ["recommend"]
    assert ready.json()["upstreams"]["recommend"]["state"] in ("unreachable", "circuit_open")


def test_a_stopped_upstream_gives_503_quickly(stack: Stack, platform: httpx.Client) -> None:
    for profile in (p for p in stack.processes if p.name.startswith("profile")):
        profile.popen.send_signal(signal.SIGTERM)
        profile.popen.wait(15)
    started = time.monotonic()
    response = platform.get("/v1/customers/it-1/profile")
    assert response.status_code == 503 and "profile" in response.json()["error"]
    assert time.monotonic() - started < 5
    ready = httpx.get(stack.gateway_url + "/readyz")
    assert ready.status_code == 503 and ready.json()["upstreams"]["profile"]["required"] is True
    assert ready.json()["upstreams"]["profile"]["state"] in ("unreachable", "circuit_open")
    # Five failures in a row open profile's breaker: then calls are refused at once, with the wait.
    for _ in range(5):
        platform.get("/v1/customers/it-1/profile")
    started = time.monotonic()
    refused = platform.get("/v1/customers/it-1/profile")
    assert refused.status_code == 503 and "circuit open" in refused.json()["error"], refused.text
    assert int(refused.headers["Retry-After"]) >= 1 and time.monotonic() - started < 1.5
