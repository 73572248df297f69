"""The partner HTTP API served by uvicorn on a real port: keys, pull leases and acks, receipts, unsubscribe -> consent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
from marksman.profile.v1 import profile_pb2_grpc
from prometheus_client import REGISTRY

from services.campaign.campaigns import Campaigns, PartnerInput
from services.campaign.clients import NoRecommendations, ProfileContacts
from services.campaign.dispatch import Dispatcher, DispatchSettings
from services.campaign.partner_api import PartnerApi, create_partner_app
from services.campaign.pusher import Pusher
from services.campaign.spec import Route
from services.campaign.store import CampaignStore
from services.common.db import make_engine
from tests.unit.campaign.campaign_data import spec
from tests.unit.campaign.campaign_fakes import FakeProfile, FakeSegment, customer, serve_fakes

NOON = datetime(2011, 12, 9, 12, 0, tzinfo=UTC)


@dataclass
class Api:
    url: str
    store: CampaignStore
    profile: FakeProfile
    campaign_id: int
    puller: httpx.Client
    other: httpx.Client
    pusher: httpx.Client

    def lease(self, client: httpx.Client | None = None, **body: float) -> httpx.Response:
        return (client or self.puller).post("/partner/v1/leases", json=body)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    profile, segment = FakeProfile(), FakeSegment()
    server = serve_fakes(profile, segment)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    store = CampaignStore(make_engine(f"sqlite:///{tmp_path / 'campaign.db'}"))
    store.migrate()
    contacts = ProfileContacts(profile_pb2_grpc.ProfileServiceStub(channel), 5.0)
    campaigns = Campaigns(store, None, lambda: NOON, lambda: datetime.now(UTC))
    puller = campaigns.register_partner(PartnerInput("puller", "", 1000, 3, "pull", "email"))
    other = campaigns.register_partner(PartnerInput("other", "", 1000, 3, "pull", "sms"))
    pusher = campaigns.register_partner(PartnerInput("pusher", "http://127.0.0.1:9/x", 1000, 3, "push", "push"))
    ids = [f"c{i}" for i in range(5)]
    for cid in ids:
        profile.customers[cid] = customer(cid)
    created = store.create_campaign(spec(routes=(Route("email", "puller", 2),)), NOON)
    store.launch(created.id, 1, [(cid, False) for cid in ids], NOON, datetime.now(UTC), start_ahead=False)
    dispatcher = Dispatcher(store, contacts, NoRecommendations(), Pusher(1.0), lambda: NOON, DispatchSettings())
    while dispatcher.run_once("w") > 0:
        pass
    app = create_partner_app(store, contacts, lambda: NOON, lambda: datetime.now(UTC), default_lease_s=60)
    runner = PartnerApi(app, "127.0.0.1", 0)
    runner.start()
    url = f"http://127.0.0.1:{runner.port}"

    def client(key: str) -> httpx.Client:
        return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10)

    clients = [client(r.api_key) for r in (puller, other, pusher)]
    try:
        yield Api(url, store, profile, created.id, *clients)
    finally:
        for c in clients:
            c.close()
        runner.stop()
        channel.close()
        server.stop(0)


def results(response: httpx.Response) -> list[tuple[str, str]]:
    return [(r["idempotency_key"], r["status"]) for r in response.json()["results"]]


def test_keys_are_required(api: Api) -> None:
    assert httpx.post(api.url + "/partner/v1/leases", json={}).status_code == 401
    wrong = httpx.post(api.url + "/partner/v1/leases", json={}, headers={"Authorization": "Bearer mkp_nope"})
    assert wrong.status_code == 401 and wrong.json() == {"detail": "unknown API key"}


def test_lease_ack_and_lease_expiry(api: Api) -> None:
    first = api.lease()
    assert first.status_code == 200
    messages = first.json()["messages"]
    assert len(messages) == 3  # the partner's batch size
    assert {m["channel"] for m in messages} == {"email"} and messages[0]["to"].endswith("@example.com")
    rest = api.lease(max_messages=10).json()["messages"]
    assert len(rest) == 2 and api.lease().json()["messages"] == []
    keys = [m["idempotency_key"] for m in messages]
    acked = api.puller.post("/partner/v1/acks", json={"acks": [
        {"idempotency_key": keys[0], "status": "accepted"},
        {"idempotency_key": keys[1], "status": "rejected", "reason": "mailbox full"},
        {"idempotency_key": keys[2]},
    ]})
    assert acked.status_code == 207
    assert results(acked) == [(keys[0], "ok"), (keys[1], "ok"), (keys[2], "invalid")]
    again = api.puller.post("/partner/v1/acks", json={"acks": [{"idempotency_key": keys[0], "status": "accepted"}]})
    assert again.status_code == 200 and results(again) == [(keys[0], "duplicate")]
    info = api.store.get_campaign(api.campaign_id)
    assert info.counts is not None and (info.counts.sent, info.counts.failed, info.counts.queued) == (1, 1, 3)
    assert info.spent_minor == 2 * 4  # the refused message costs nothing
    # keys[2] and the two others were never acknowledged: a short lease runs out and they come back.
    short = api.lease(max_messages=10, lease_seconds=0.5)
    assert short.json()["messages"] == []  # still leased from before (60 s)


def test_unacknowledged_lease_returns(api: Api) -> None:
    leased = api.lease(max_messages=10, lease_seconds=0.3).json()["messages"]
    assert len(leased) == 5
    time.sleep(0.5)
    again = api.lease(max_messages=10).json()["messages"]
    assert sorted(m["idempotency_key"] for m in again) == sorted(m["idempotency_key"] for m in leased)


def test_another_partners_messages_are_forbidden(api: Api) -> None:
    key = api.lease().json()["messages"][0]["idempotency_key"]
    stolen = api.other.post("/partner/v1/acks", json={"acks": [{"idempotency_key": key, "status": "accepted"}]})
    assert stolen.status_code == 403 and results(stolen) == [(key, "forbidden")]
    receipt = api.other.post("/partner/v1/receipts", json={"receipts": [{"idempotency_key": key, "event": "delivered"}]})
    assert receipt.status_code == 403
    assert api.other.get(f"/partner/v1/deliveries/{key}").status_code == 403
    assert api.puller.get(f"/partner/v1/deliveries/{key}").json()["state"] == "queued"
    assert api.puller.get("/partner/v1/deliveries/nope").status_code == 404
    assert api.lease(api.pusher).status_code == 409


def responses(kind: str) -> float:
    return REGISTRY.get_sample_value("marksman_campaign_responses_total", {"kind": kind}) or 0.0


def test_receipts_are_idempotent_and_unsubscribe_revokes_consent(api: Api) -> None:
    messages = api.lease(max_messages=10).json()["messages"]
    api.puller.post("/partner/v1/acks", json={"acks": [{"idempotency_key": m["idempotency_key"], "status": "accepted"}
                                                       for m in messages]})
    first, second = messages[0], messages[1]
    body = {"receipts": [
        {"idempotency_key": first["idempotency_key"], "event": "delivered", "occurred_at": "2011-12-09T12:05:00Z"},
        {"idempotency_key": first["idempotency_key"], "event": "opened"},
        {"idempotency_key": second["idempotency_key"], "event": "unsubscribed"},
        {"idempotency_key": "unknown-key", "event": "clicked"},
        {"idempotency_key": second["idempotency_key"], "event": "bounced"},
        "not an object",
    ]}
    before = {kind: responses(kind) for kind in ("delivered", "opened", "clicked", "unsubscribed")}
    answer = api.puller.post("/partner/v1/receipts", json=body)
    assert answer.status_code == 207
    assert [r["status"] for r in answer.json()["results"]] == ["ok", "ok", "ok", "not_found", "invalid", "invalid"]
    assert not api.profile.granted(second["customer_id"], "email")
    assert api.profile.granted(first["customer_id"], "email")
    repeat = api.puller.post("/partner/v1/receipts", json={"receipts": body["receipts"][:3]})
    assert repeat.status_code == 200 and {r["status"] for r in repeat.json()["results"]} == {"duplicate"}
    # Each message's response counts once, duplicates not again.
    assert {kind: responses(kind) - n for kind, n in before.items()} == {"delivered": 1, "opened": 1, "clicked": 0,
                                                                          "unsubscribed": 1}
    counts = api.store.get_campaign(api.campaign_id).counts
    assert counts is not None and (counts.delivered, counts.opened, counts.unsubscribed) == (1, 1, 1)
    detail = api.puller.get(f"/partner/v1/deliveries/{first['idempotency_key']}").json()
    assert detail["delivered_at"].startswith("2011-12-09T12:05:00")


def test_unsubscribe_waits_for_profile(api: Api) -> None:
    messages = api.lease(max_messages=1).json()["messages"]
    api.puller.post("/partner/v1/acks", json={"acks": [{"idempotency_key": messages[0]["idempotency_key"],
                                                        "status": "accepted"}]})
    api.profile.unavailable = True
    receipt = {"receipts": [{"idempotency_key": messages[0]["idempotency_key"], "event": "unsubscribed"}]}
    answer = api.puller.post("/partner/v1/receipts", json=receipt)
    assert answer.status_code == 207 and answer.json()["results"][0]["status"] == "retry"
    api.profile.unavailable = False
    assert api.puller.post("/partner/v1/receipts", json=receipt).json()["results"][0]["status"] == "ok"
    assert not api.profile.granted(messages[0]["customer_id"], "email")


def test_bad_bodies(api: Api) -> None:
    assert api.puller.post("/partner/v1/acks", content=b"not json").status_code == 400
    assert api.puller.post("/partner/v1/receipts", json={"receipt": []}).status_code == 400
    too_many = {"receipts": [{"idempotency_key": "k", "event": "opened"}] * 5001}
    assert api.puller.post("/partner/v1/receipts", json=too_many).status_code == 413
    assert api.lease(max_messages=-1).status_code == 422
