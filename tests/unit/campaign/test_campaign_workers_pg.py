"""Two dispatchers (two replicas: own engines, own owners) on one PostgreSQL database never send a delivery twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from marksman.profile.v1 import profile_pb2_grpc

from services.campaign.campaigns import Campaigns, PartnerInput
from services.campaign.clients import NoRecommendations, ProfileContacts
from services.campaign.dispatch import Dispatcher, DispatchSettings
from services.campaign.pusher import Pusher
from services.campaign.spec import Route
from services.campaign.states import State
from services.campaign.store import CampaignStore
from services.common.db import make_engine
from services.partner_sample.process import Receiver, running
from tests.support import postgres
from tests.unit.campaign.campaign_data import spec
from tests.unit.campaign.campaign_fakes import FakeProfile, FakeSegment, customer, serve_fakes

pytestmark = pytest.mark.postgres
SECRET = "a-secret-of-twenty-chars"
NOON = datetime(2011, 12, 9, 12, 0, tzinfo=UTC)
N = 3000


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with running(SECRET, log_path=tmp_path / "receiver.log") as started:
        yield started


def test_two_workers_on_postgresql_send_each_delivery_once(pg_admin_url: str, receiver: Receiver) -> None:
    url = postgres.create_database(pg_admin_url)
    profile, segment = FakeProfile(), FakeSegment()
    ids = [f"c{i:05d}" for i in range(N)]
    for cid in ids:
        profile.customers[cid] = customer(cid)
    segment.members["vips"] = ids
    fakes = serve_fakes(profile, segment)
    channel = grpc.insecure_channel(f"127.0.0.1:{fakes.port}")
    stores = [CampaignStore(make_engine(url)) for _ in range(2)]
    stores[0].migrate()
    campaigns = Campaigns(stores[0], None, lambda: NOON, lambda: datetime.now(UTC))
    campaigns.register_partner(PartnerInput("mailer", receiver.endpoint, 1_000_000, 50, "push", "email", SECRET))
    created = stores[0].create_campaign(spec(routes=(Route("email", "mailer", 1),)), NOON)
    stores[0].launch(created.id, 1, [(cid, False) for cid in ids], NOON, datetime.now(UTC), start_ahead=False)
    settings = DispatchSettings(claim_size=100, lease_s=60, poll_s=0.05)
    contacts = ProfileContacts(profile_pb2_grpc.ProfileServiceStub(channel), 10.0)
    dispatchers = [Dispatcher(store, contacts, NoRecommendations(), Pusher(10.0), lambda: NOON, settings)
                   for store in stores]
    claimed: dict[str, int] = {}

    def work(number: int) -> None:
        dispatcher = dispatchers[number // 2]
        owner = f"replica{number // 2}-worker{number % 2}"
        total = 0
        while (got := dispatcher.run_once(owner)) > 0:
            total += got
        claimed[owner] = total

    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        messages = receiver.messages(str(created.id))
    finally:
        channel.close()
        fakes.stop(0)
    assert sum(claimed.values()) == N and all(claimed.values()), claimed  # everyone worked, nothing claimed twice
    assert len(messages) == N and all(m["deliveries"] == 1 for m in messages)
    assert receiver.stats()["duplicates"] == 0
    assert stores[1].complete_settled(NOON) == [created.id]
    info = stores[1].get_campaign(created.id)
    assert info.state is State.COMPLETED and info.spent_minor == N
    assert info.counts is not None and info.counts.sent == N
