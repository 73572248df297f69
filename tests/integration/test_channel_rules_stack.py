"""Channel rules across the real processes: a rule set's campaign channels by origin sales channel frozen at a
launch through the gateway and obeyed by the campaign process (origin from profile's portraits), and a per-key
rate limit answering 429 with Retry-After from the running gateway."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from services.partner_sample.process import Receiver
from services.stack import Stack
from tests.integration.test_campaign_stack import (  # noqa: F401 (module fixtures)
    CONSENT,
    admin,
    campaign,
    partner,
    platform,
    receiver,
    stack,
    state,
    wait_for,
)

pytestmark = pytest.mark.integration


def order(event_id: str, customer_id: str, sales_channel: str) -> dict[str, object]:
    return {"event_id": event_id, "type": "order", "customer_id": customer_id, "occurred_at": "2011-12-01T10:00:00Z",
            "currency": "GBP", "payment_channel": "alipay", "sales_channel": sales_channel,
            "lines": [{"sku": "85123A", "quantity": 1, "unit_price_minor": 295, "list_price_minor": 295}]}


@pytest.fixture
def limits_reset(admin: httpx.Client) -> Iterator[None]:  # noqa: F811
    yield
    admin.put("/v1/pricing/rule-set", json={"currency": "GBP", "rules": []})


def test_marketplace_customers_get_no_email_when_the_rule_set_forbids_it(
        admin: httpx.Client, platform: httpx.Client, receiver: Receiver) -> None:  # noqa: F811
    origins = {f"cr-m{i}": "marketplace" for i in range(3)} | {f"cr-w{i}": "web" for i in range(3)}
    body = {"customers": [{"customer_id": cid, "name": cid, "email": f"{cid}@example.com", "region": "Spain",
                           "consents": CONSENT} for cid in origins]}
    assert platform.post("/v1/customers", json=body).status_code == 200
    events = {"events": [order(f"cr-e-{cid}", cid, channel) for cid, channel in origins.items()]}
    assert platform.post("/v1/events", json=events).status_code == 200
    for path in ("/v1/admin/portraits/recompute", "/v1/admin/segments/sync"):
        assert admin.post(path).status_code == 200
    assert admin.post("/v1/segments", json={"name": "cr-all", "rule": 'region == "Spain"'}).status_code == 201
    assert admin.post("/v1/segments/cr-all/refresh").json()["size"] == len(origins)
    rules = {"currency": "GBP", "rules": [], "channel_rules": {"channels": {
        "marketplace": {"campaign_channels": ["push"]}}}}
    saved = admin.put("/v1/pricing/rule-set", json=rules)
    assert saved.status_code == 201, saved.text
    partner(admin, receiver, "cr-mailer")
    cid = campaign(admin, "cr-all", "cr-mailer")["id"]
    launched = admin.post(f"/v1/campaigns/{cid}/launch")
    assert launched.status_code == 200, launched.text
    assert launched.json()["channel_rules"] == {"rule_set_version": saved.json()["version"],
                                                "origins": {"marketplace": ["push"]}}
    wait_for(lambda: state(admin, cid).get("state") == "completed")
    assert sorted(m["customer_id"] for m in receiver.messages(str(cid))) == ["cr-w0", "cr-w1", "cr-w2"]
    skipped = admin.get(f"/v1/campaigns/{cid}/deliveries", params={"state": "skipped"}).json()["deliveries"]
    assert sorted((d["customer_id"], d["reason"]) for d in skipped) == [
        (f"cr-m{i}", "origin_channel") for i in range(3)]


def test_a_key_over_its_rate_limit_gets_429_then_recovers(
        stack: Stack, admin: httpx.Client, platform: httpx.Client, limits_reset: None) -> None:  # noqa: F811
    rules = {"currency": "GBP", "rules": [], "channel_rules": {
        "api_keys": {"platform": {"rate_limit": {"requests_per_s": 1, "burst": 2}}}}}
    assert admin.put("/v1/pricing/rule-set", json=rules).status_code == 201
    answers = [platform.get("/v1/quotes/q-none"), platform.get("/v1/quotes/q-none")]
    # Two in any second, ten in any ten seconds: a slow (loaded) client still meets the second limit.
    while answers[-1].status_code != 429 and len(answers) < 12:
        answers.append(platform.get("/v1/quotes/q-none"))
    assert [a.status_code for a in answers[:2]] == [404, 404] and answers[-1].status_code == 429
    retry_after = int(answers[-1].headers["Retry-After"])
    assert retry_after >= 1 and answers[-1].json()["detail"]["scope"] == "platform"
    time.sleep(retry_after + 0.1)
    assert platform.get("/v1/quotes/q-none").status_code == 404
    metrics = httpx.get(stack.metrics_url("gateway")).text
    assert 'marksman_gateway_rate_limited_total{scope="platform"} 1.0' in metrics
