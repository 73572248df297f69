"""Scaling out on one PostgreSQL: two campaign processes share a dispatch without sending a message twice, and two
recommend processes serve one model version (trained through one, followed by the other) with calls spread over both.

Real processes (services/stack.py), a private PostgreSQL cluster with a database per service, the sample partner
receiver over HTTP, the gateway in front. Each process's own /metrics shows what it did.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.partner_sample.process import Receiver, running
from services.stack import Stack
from tests.integration.test_campaign_stack import client, state, wait_for
from tests.support import postgres

pytestmark = pytest.mark.integration
SECRET = "scaling-partner-secret"
CONSENT = [{"channel": "email", "granted": True, "changed_at": "2011-01-01T00:00:00Z"}]
RECIPIENTS = 3000
SHOPPERS = 40


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("scaling-stack")
    databases = {f"MARKSMAN_{name.upper()}_DATABASE_URL": postgres.create_database(pg_admin_url, name)
                 for name in ("profile", "segment", "recommend", "campaign")}
    running_stack = Stack(folder, ephemeral_ports=True, replicas={"campaign": 2, "recommend": 2}, env={
        **databases,
        "MARKSMAN_AS_OF": "2011-12-10T00:00:00Z",
        # Small claims and quick polls: four workers in two processes take turns on a few thousand rows.
        "MARKSMAN_CAMPAIGN_CLAIM_SIZE": "100", "MARKSMAN_CAMPAIGN_POLL_S": "0.1",
        "MARKSMAN_RECOMMEND_FOLLOW_INTERVAL_S": "0.5", "MARKSMAN_RECOMMEND_TRAIN_THREADS": "1",
        "MARKSMAN_GATEWAY_UPSTREAM_TIMEOUT_S": "30",
    })
    running_stack.start(timeout=180)
    yield running_stack
    running_stack.stop()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with running(SECRET, log_path=tmp_path_factory.mktemp("receiver") / "receiver.log") as started:
        yield started


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with client(stack, "admin") as c:
        yield c


@pytest.fixture(scope="module")
def platform(stack: Stack) -> Iterator[httpx.Client]:
    with client(stack, "platform") as c:
        yield c


def metric(stack: Stack, process: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of a metric's samples in one process's /metrics whose labels include `labels`."""
    text = httpx.get(stack.metrics_url(process), timeout=30).text
    wanted = dict(labels or {})
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and wanted.items() <= sample.labels.items())


def test_two_campaign_processes_share_a_dispatch_without_duplicates(
    stack: Stack, admin: httpx.Client, platform: httpx.Client, receiver: Receiver
) -> None:
    ids = [f"sc-{i:05d}" for i in range(RECIPIENTS)]
    for start in range(0, len(ids), 1000):
        body = {"customers": [{"customer_id": cid, "name": f"Customer {cid}", "email": f"{cid}@example.com",
                               "region": "France", "consents": CONSENT} for cid in ids[start:start + 1000]]}
        assert platform.post("/v1/customers", json=body).status_code == 200
    # Profile's updater writes the new customers' portraits first: a recompute racing it on PostgreSQL fails
    # with a duplicate portrait key (profile's save_portraits deletes then inserts; reported, not fixed here).
    wait_for(lambda: metric(stack, "profile", "marksman_profile_portraits_updated_total") >= RECIPIENTS
             and metric(stack, "profile", "marksman_profile_portraits_pending") == 0)
    for path in ("/v1/admin/portraits/recompute", "/v1/admin/segments/sync"):
        answer = admin.post(path)
        assert answer.status_code == 200, answer.text
    assert admin.post("/v1/segments", json={"name": "sc-all", "rule": 'region == "France"'}).status_code == 201
    refreshed = admin.post("/v1/segments/sc-all/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["size"] == RECIPIENTS, refreshed.text
    # Batches of 50 at 1,000 messages/s: the dispatch lasts a few seconds, so every worker is polling in it.
    answer = admin.post("/v1/partners", json={"name": "sc-mailer", "channel": "email", "mode": "push",
                                              "endpoint": receiver.endpoint, "secret": SECRET, "batch_size": 50,
                                              "rate_limit_per_s": 1000})
    assert answer.status_code == 201, answer.text
    created = admin.post("/v1/campaigns", json={
        "name": "scaling", "goal": "retention", "segment": "sc-all", "currency": "GBP",
        "channels": [{"channel": "email", "partner": "sc-mailer", "cost_per_contact_minor": 5}],
        "template": "Hello {name}", "holdout_percent": 0})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    sent_before = {p: metric(stack, p, "marksman_campaign_deliveries_total", {"state": "sent"})
                   for p in stack.replica_names("campaign")}
    assert admin.post(f"/v1/campaigns/{cid}/launch").status_code == 200
    wait_for(lambda: state(admin, cid).get("state") == "completed", timeout_s=240)

    counts = state(admin, cid)["counts"]
    assert counts["sent"] == counts["targeted"] == RECIPIENTS
    assert counts["pending"] == counts["failed"] == counts["dead"] == 0
    sent = {p: metric(stack, p, "marksman_campaign_deliveries_total", {"state": "sent"}) - sent_before[p]
            for p in stack.replica_names("campaign")}
    # Both processes claimed and sent a share, and the shares add up to the campaign: nothing sent twice.
    assert all(n > 0 for n in sent.values()), sent
    assert sum(sent.values()) == RECIPIENTS, sent
    messages = receiver.messages(str(cid))
    keys = [m["idempotency_key"] for m in messages]
    # The receiver saw each idempotency key once, as new.
    assert len(keys) == len(set(keys)) == RECIPIENTS
    assert all(m["deliveries"] == 1 for m in messages)
    assert sorted(m["customer_id"] for m in messages) == ids


def test_two_recommend_processes_serve_one_version_and_share_the_calls(
    stack: Stack, admin: httpx.Client, platform: httpx.Client
) -> None:
    events = [{"event_id": f"sr-{c}-{n}", "type": "order", "customer_id": f"sr-{c}",
               "occurred_at": f"2011-{1 + (n * 3 + c) % 11:02d}-1{n}T10:00:00Z", "currency": "GBP",
               "lines": [{"sku": f"sr-g{c % 2}-{(c + n) % 6}", "quantity": 1, "unit_price_minor": 100 + 10 * n,
                          "category": "Garden" if c % 2 == 0 else "Kitchen"}]}
              for c in range(SHOPPERS) for n in range(5)]
    assert platform.post("/v1/events", json={"events": events}).json()["accepted"] == len(events)
    processes = stack.replica_names("recommend")
    # The gateway sends the training call to one process; the other loads the version it promotes.
    trained = admin.post("/v1/models/train", json={"wait": True, "params": {"epochs": 5, "components": 8}})
    assert trained.status_code == 200 and trained.json()["state"] == "serving", trained.text
    version = trained.json()["version"]
    wait_for(lambda: all(metric(stack, p, "marksman_recommend_serving_model_version") == version
                         for p in processes), timeout_s=60)
    assert all(metric(stack, p, "marksman_recommend_serving_model_trained_timestamp_seconds") > 0 for p in processes)

    def answered(process: str) -> float:
        # The model's own answers (the gateway also refreshes its popular list now and then: a fallback).
        return metric(stack, process, "marksman_recommend_recommendations_total", {"rpc": "Recommend",
                                                                                   "fallback": "none"})

    before = {p: answered(p) for p in processes}
    for n in range(40):
        got = platform.get(f"/v1/customers/sr-{n % SHOPPERS}/recommendations?k=3")
        assert got.status_code == 200, got.text
        assert got.json()["model_version"] == version and got.json()["fallback"] is None, got.text
    calls = {p: answered(p) - before[p] for p in processes}
    assert all(n > 0 for n in calls.values()) and sum(calls.values()) == 40, calls

    # Erasure reaches one process through the gateway; the other drops the customer at its next poll.
    assert admin.delete("/v1/customers/sr-3").status_code == 200

    def forgotten_everywhere() -> bool:
        answers = [platform.get("/v1/customers/sr-3/recommendations?k=3").json() for _ in range(4)]
        return all(a["fallback"] is not None for a in answers)

    wait_for(forgotten_everywhere, timeout_s=30)
