"""Campaigns across the real processes: gateway routes, launch to the sample partner over HTTP, the partner API,
unsubscribe reaching profile, erasure, and a campaign process SIGKILLed mid-dispatch and started again."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.partner_sample.process import Receiver, running
from services.stack import Stack
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration
SECRET = "integration-partner-secret"
CONSENT = [{"channel": "email", "granted": True, "changed_at": "2011-01-01T00:00:00Z"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("campaign-stack")
    running_stack = Stack(folder, ephemeral_ports=True, env={
        "MARKSMAN_AS_OF": "2011-12-10T00:00:00Z",
        # Short leases and polls: a killed worker's messages come back within seconds.
        "MARKSMAN_CAMPAIGN_LEASE_S": "3", "MARKSMAN_CAMPAIGN_POLL_S": "0.1",
        "MARKSMAN_CAMPAIGN_BACKOFF_BASE_S": "0.2", "MARKSMAN_CAMPAIGN_BACKOFF_MAX_S": "1",
        "MARKSMAN_GATEWAY_UPSTREAM_TIMEOUT_S": "10",
    })
    running_stack.start(timeout=120)
    yield running_stack
    running_stack.stop()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    with running(SECRET, log_path=tmp_path_factory.mktemp("receiver") / "receiver.log") as started:
        yield started


def client(stack: Stack, scope: str) -> httpx.Client:
    key = stack.api_keys()[scope]
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with client(stack, "admin") as c:
        yield c


@pytest.fixture(scope="module")
def platform(stack: Stack) -> Iterator[httpx.Client]:
    with client(stack, "platform") as c:
        yield c


def audience(admin: httpx.Client, platform: httpx.Client, name: str, ids: list[str], region: str) -> None:
    """Customers of one region (each test its own), and a segment of exactly them."""
    body = {"customers": [{"customer_id": cid, "name": f"Customer {cid}", "email": f"{cid}@example.com",
                           "region": region, "consents": CONSENT} for cid in ids]}
    assert platform.post("/v1/customers", json=body).status_code == 200
    for path in ("/v1/admin/portraits/recompute", "/v1/admin/segments/sync"):
        assert admin.post(path).status_code == 200
    created = admin.post("/v1/segments", json={"name": name, "rule": f'region == "{region}"'})
    assert created.status_code == 201, created.text
    refreshed = admin.post(f"/v1/segments/{name}/refresh")
    assert refreshed.status_code == 200 and refreshed.json()["size"] == len(ids), refreshed.text


def partner(admin: httpx.Client, receiver: Receiver, name: str, **fields: Any) -> dict[str, Any]:
    answer = admin.post("/v1/partners", json={"name": name, "channel": "email", "mode": "push",
                                              "endpoint": receiver.endpoint, "secret": SECRET, **fields})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def campaign(admin: httpx.Client, segment: str, partner_name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": f"{segment} offer", "goal": "retention", "segment": segment, "currency": "GBP",
            "channels": [{"channel": "email", "partner": partner_name, "cost_per_contact_minor": 25}],
            "template": "Hello {name}, use {offer_code}", "offer": {"code": "XMAS10"}, **fields}
    answer = admin.post("/v1/campaigns", json=body)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def state(admin: httpx.Client, campaign_id: int) -> dict[str, Any]:
    """The campaign as the gateway shows it; {} while the campaign process is (re)starting (503)."""
    answer = admin.get(f"/v1/campaigns/{campaign_id}")
    if answer.status_code == 503:
        return {}
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_campaign_through_the_gateway(stack: Stack, admin: httpx.Client, platform: httpx.Client,
                                     receiver: Receiver) -> None:
    ids = [f"gw-{i:03d}" for i in range(60)]
    audience(admin, platform, "gw-all", ids, "France")
    partner(admin, receiver, "gw-mailer", batch_size=25)
    created = campaign(admin, "gw-all", "gw-mailer", holdout_percent=20)
    assert created["state"] == "draft" and created["definition"]["offer"]["code"] == "XMAS10"
    bad = admin.post("/v1/campaigns", json={**created["definition"], "template": "Hi {nmae}"})
    assert bad.status_code == 422 and "template field {nmae} is unknown" in bad.json()["error"]
    cid = created["id"]
    launched = admin.post(f"/v1/campaigns/{cid}/launch")
    assert launched.status_code == 200 and launched.json()["state"] in ("running", "completed")
    again = admin.post(f"/v1/campaigns/{cid}/launch")
    assert again.status_code == 409 and "it must be draft" in again.json()["error"]
    wait_for(lambda: state(admin, cid).get("state") == "completed")
    counts = state(admin, cid)["counts"]
    assert counts["targeted"] + counts["holdout"] == len(ids)
    assert counts["sent"] == counts["targeted"] and counts["holdout"] > 0
    messages = receiver.messages(str(cid))
    assert len(messages) == counts["targeted"] and all(m["deliveries"] == 1 for m in messages)
    assert messages[0]["body"].startswith("Hello Customer ") and messages[0]["body"].endswith("use XMAS10")
    report = admin.get(f"/v1/campaigns/{cid}/report")
    assert report.status_code == 200, report.text
    figures = report.json()
    assert figures["sent"] == counts["targeted"] and figures["cost"]["amount_minor"] == 25 * counts["targeted"]
    assert figures["uplift"] is not None
    page = admin.get(f"/v1/campaigns/{cid}/deliveries", params={"state": "holdout", "limit": 5}).json()
    assert len(page["deliveries"]) == min(5, counts["holdout"])
    assert admin.post(f"/v1/campaigns/{cid}/pause").status_code == 409
    assert platform.get(f"/v1/campaigns/{cid}").status_code == 403


def test_unsubscribe_receipt_revokes_consent_and_erasure(stack: Stack, admin: httpx.Client, platform: httpx.Client,
                                                         receiver: Receiver) -> None:
    ids = [f"un-{i}" for i in range(3)]
    audience(admin, platform, "un-all", ids, "Germany")
    key = partner(admin, receiver, "un-mailer")["api_key"]
    cid = campaign(admin, "un-all", "un-mailer")["id"]
    admin.post(f"/v1/campaigns/{cid}/launch")
    wait_for(lambda: state(admin, cid).get("state") == "completed")
    messages = {m["customer_id"]: m["idempotency_key"] for m in receiver.messages(str(cid))}
    assert set(ids) <= set(messages)
    headers = {"Authorization": f"Bearer {key}"}
    receipts = {"receipts": [{"idempotency_key": messages["un-0"], "event": "unsubscribed"},
                             {"idempotency_key": messages["un-1"], "event": "delivered"}]}
    answer = httpx.post(stack.partner_api_url + "/receipts", json=receipts, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    consents = platform.get("/v1/customers/un-0/profile").json()["consents"]
    assert [c["granted"] for c in consents if c["channel"] == "email"] == [False]
    assert state(admin, cid)["counts"]["unsubscribed"] == 1
    erased = admin.delete("/v1/customers/un-2")
    assert erased.status_code == 200 and erased.json()["services"]["campaign"] == 1
    customers = {d["customer_id"] for d in admin.get(f"/v1/campaigns/{cid}/deliveries").json()["deliveries"]}
    assert "un-2" not in customers and {"un-0", "un-1"} <= customers


def test_sigkilled_campaign_process_loses_and_repeats_nothing(stack: Stack, admin: httpx.Client,
                                                              platform: httpx.Client, receiver: Receiver) -> None:
    ids = [f"kill-{i:04d}" for i in range(1500)]
    audience(admin, platform, "kill-all", ids, "United Kingdom")
    # 300 messages/s in batches of 50: the dispatch takes about five seconds, long enough to be cut short.
    partner(admin, receiver, "kill-mailer", rate_limit_per_s=300, batch_size=50)
    cid = campaign(admin, "kill-all", "kill-mailer")["id"]
    receiver.faults(delay_ms=50)  # each answer is slow, so the kill also lands while a batch is in flight
    try:
        admin.post(f"/v1/campaigns/{cid}/launch")
        wait_for(lambda: len(receiver.messages(str(cid))) >= 300, timeout_s=60)
        [process] = [p for p in stack.processes if p.name == "campaign"]
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(10)
        seen_at_kill = len(receiver.messages(str(cid)))
        assert seen_at_kill < len(ids), "the kill came too late to cut the dispatch short"
        stack.respawn("campaign")
    finally:
        receiver.faults(delay_ms=0)
    wait_for(lambda: state(admin, cid).get("state") == "completed", timeout_s=180)
    counts = state(admin, cid)["counts"]
    messages = receiver.messages(str(cid))
    keys = [m["idempotency_key"] for m in messages]
    # Every targeted customer got exactly one message as new; retries of the batch in flight were duplicates.
    assert len(keys) == len(set(keys)) == counts["targeted"] == counts["sent"]
    assert sorted(m["customer_id"] for m in messages) == sorted(ids)
    assert counts["pending"] == counts["dead"] == counts["failed"] == 0
