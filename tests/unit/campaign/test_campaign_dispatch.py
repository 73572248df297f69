"""Dispatch end to end in one process: launch from a fake segment, consent from a fake profile (both over gRPC),
batches over real HTTP to the sample partner receiver, outcomes recorded; partner failures, timeouts, consent."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from marksman.profile.v1 import profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2, recommend_pb2_grpc
from marksman.segment.v1 import segment_pb2_grpc
from sqlalchemy import update

from services.campaign.campaigns import Campaigns, PartnerInput
from services.campaign.clients import NoRecommendations, ProfileContacts, RecommendItems, SegmentAudiences
from services.campaign.dispatch import Dispatcher, DispatchSettings
from services.campaign.pusher import Pusher
from services.campaign.spec import Cap, QuietHours, Route
from services.campaign.states import State
from services.campaign.store import CampaignStore, deliveries_t
from services.common.db import make_engine
from services.common.errors import Unavailable
from services.common.grpc_server import Registration, RunningServer, start
from services.partner_sample.process import Receiver, running
from tests.support.waiting import wait_for
from tests.unit.campaign.campaign_data import spec
from tests.unit.campaign.campaign_fakes import FakeProfile, FakeSegment, customer, serve_fakes

SECRET = "a-secret-of-twenty-chars"
NOON = datetime(2011, 12, 9, 12, 0, tzinfo=UTC)


@dataclass
class World:
    store: CampaignStore
    profile: FakeProfile
    segment: FakeSegment
    campaigns: Campaigns
    dispatcher: Dispatcher
    receiver: Receiver
    clock: list[datetime]

    def drain(self, timeout_s: float = 60.0, until: Callable[[], bool] | None = None) -> None:
        """Runs the worker until nothing is due (or `until` holds)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.dispatcher.housekeeping()
            if until is not None and until():
                return
            if self.dispatcher.run_once("worker-1") == 0 and until is None:
                return
        raise AssertionError("dispatch did not finish in time")


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeProfile, FakeSegment, RunningServer]]:
    profile, segment = FakeProfile(), FakeSegment()
    server = serve_fakes(profile, segment)
    yield profile, segment, server
    server.stop(0)


def make_world(tmp_path: Path, upstreams: tuple[FakeProfile, FakeSegment, RunningServer], receiver: Receiver,
               **settings: float) -> World:
    profile, segment, server = upstreams
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    store = CampaignStore(make_engine(f"sqlite:///{tmp_path / 'campaign.db'}"))
    store.migrate()
    clock = [NOON]
    contacts = ProfileContacts(profile_pb2_grpc.ProfileServiceStub(channel), 5.0)
    audiences = SegmentAudiences(segment_pb2_grpc.SegmentServiceStub(channel), 30.0)
    campaigns = Campaigns(store, audiences, lambda: clock[0], lambda: datetime.now(UTC))
    defaults = {"claim_size": 200, "lease_s": 30.0, "poll_s": 0.05, "max_attempts": 4, "backoff_base_s": 0.05,
                "backoff_max_s": 0.2}
    dispatcher = Dispatcher(store, contacts, NoRecommendations(), Pusher(settings.pop("timeout_s", 5.0)),
                            lambda: clock[0], DispatchSettings(**(defaults | settings)))  # type: ignore[arg-type]
    campaigns.register_partner(PartnerInput("mailer", receiver.endpoint, 100_000, 100, "push", "email", SECRET))
    campaigns.register_partner(PartnerInput("texter", receiver.endpoint, 100_000, 100, "push", "sms", SECRET))
    return World(store, profile, segment, campaigns, dispatcher, receiver, clock)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with running(SECRET, log_path=tmp_path / "receiver.log") as started:
        yield started


@pytest.fixture
def world(tmp_path: Path, upstreams: tuple[FakeProfile, FakeSegment, RunningServer], receiver: Receiver) -> World:
    return make_world(tmp_path, upstreams, receiver)


def audience(world: World, n: int, **options: bool) -> list[str]:
    ids = [f"cust-{i:04d}" for i in range(n)]
    for cid in ids:
        world.profile.customers[cid] = customer(cid, **options)
    world.segment.members["vips"] = ids
    return ids


def keys_at_receiver(receiver: Receiver, campaign_id: int) -> list[str]:
    return [m["idempotency_key"] for m in receiver.messages(str(campaign_id))]


def test_launch_dispatch_and_record(world: World) -> None:
    ids = audience(world, 250)
    created = world.campaigns.create(spec(segment="vips", holdout_percent=10.0, budget_minor=100_000,
                                          routes=(Route("email", "mailer", 3),)))
    launched = world.campaigns.launch(created.id)
    assert launched.state is State.RUNNING and launched.audience_version == 7
    world.drain()
    info = world.store.get_campaign(created.id)
    counts = info.counts
    assert counts is not None and counts.targeted + counts.holdout == 250
    assert 10 <= counts.holdout <= 45  # 10% of 250, by hash
    assert counts.sent == counts.targeted and info.spent_minor == 3 * counts.targeted
    messages = world.receiver.messages(str(created.id))
    assert len(messages) == counts.targeted and all(m["deliveries"] == 1 for m in messages)
    assert {m["to"] for m in messages} <= {f"{cid}@example.com" for cid in ids}
    first = messages[0]
    assert first["body"] == "Hello Ann, use " and first["channel"] == "email"
    assert world.store.complete_settled(NOON) == [] and world.store.get_campaign(created.id).state is State.COMPLETED


def test_fallback_channel_consent_and_skips(world: World) -> None:
    world.profile.customers.update({
        "both": customer("both", email=True, sms=True),
        "sms-only": customer("sms-only", email=False, sms=True),
        "none": customer("none", email=False, sms=False),
    })
    world.segment.members["vips"] = ["both", "sms-only", "none", "ghost"]
    created = world.campaigns.create(spec(segment="vips"))
    world.campaigns.launch(created.id)
    world.drain()
    by_customer = {m["customer_id"]: m["channel"] for m in world.receiver.messages(str(created.id))}
    assert by_customer == {"both": "email", "sms-only": "sms"}
    reasons = {d.customer_id: (d.state, d.reason) for d in world.store.deliveries(created.id, None, 0, 10)}
    assert reasons["none"] == ("skipped", "no_consent") and reasons["ghost"] == ("skipped", "customer_not_found")


def test_consent_revoked_after_launch_means_no_message(world: World) -> None:
    audience(world, 5)
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 0),)))
    world.campaigns.launch(created.id)
    world.profile.set_consent("cust-0002", "email", False)
    world.drain()
    sent_to = {m["customer_id"] for m in world.receiver.messages(str(created.id))}
    assert sent_to == {"cust-0000", "cust-0001", "cust-0003", "cust-0004"}


def test_quiet_hours_defer_in_the_customers_zone(world: World) -> None:
    world.profile.customers.update({"london": customer("london", time_zone="Europe/London"),
                                    "tokyo": customer("tokyo", time_zone="Asia/Tokyo")})
    world.segment.members["vips"] = ["london", "tokyo"]
    # Noon UTC is 21:00 in Tokyo: inside 20:00-08:00 there, not in London.
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 0),),
                                          quiet=QuietHours(*map(lambda t: datetime.strptime(t, "%H:%M").time(),
                                                                ("20:00", "08:00")))))
    world.campaigns.launch(created.id)
    world.drain()
    assert [m["customer_id"] for m in world.receiver.messages(str(created.id))] == ["london"]
    [tokyo] = [d for d in world.store.deliveries(created.id, None, 0, 10) if d.customer_id == "tokyo"]
    assert tokyo.state == "pending" and tokyo.reason == "quiet_hours"
    assert timedelta(hours=10, minutes=59) < tokyo.next_attempt_at - datetime.now(UTC) <= timedelta(hours=11)
    # Eleven hours on (the row made due by hand), with the business clock still pinned at 21:00 Tokyo time
    # as MARKSMAN_AS_OF keeps it: the deferral is not judged again, so the message goes.
    with world.store.engine.begin() as conn:
        conn.execute(update(deliveries_t).where(deliveries_t.c.id == tokyo.id).values(
            next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
    world.drain()
    assert sorted(m["customer_id"] for m in world.receiver.messages(str(created.id))) == ["london", "tokyo"]


def test_frequency_cap_across_campaigns(world: World) -> None:
    audience(world, 3)
    capped = spec(segment="vips", routes=(Route("email", "mailer", 0),), cap=Cap(1, 7))
    first = world.campaigns.create(capped)
    world.campaigns.launch(first.id)
    world.drain()
    second = world.campaigns.create(capped)
    world.campaigns.launch(second.id)
    world.drain()
    assert len(keys_at_receiver(world.receiver, first.id)) == 3
    assert keys_at_receiver(world.receiver, second.id) == []
    assert {d.reason for d in world.store.deliveries(second.id, None, 0, 10)} == {"frequency_cap"}


def test_budget_stops_sending(world: World) -> None:
    audience(world, 10)
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 30),), budget_minor=100))
    world.campaigns.launch(created.id)
    world.drain()
    info = world.store.get_campaign(created.id)
    assert info.spent_minor == 90 and info.counts is not None and info.counts.sent == 3
    assert info.counts.skipped == 7 and len(keys_at_receiver(world.receiver, created.id)) == 3


def test_partner_500s_for_a_while_then_recovers(world: World) -> None:
    audience(world, 120)
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 1),)))
    world.campaigns.launch(created.id)
    world.receiver.faults(fail_next=2, fail_status=500)
    world.drain(until=lambda: world.store.get_campaign(created.id).state is State.COMPLETED)
    keys = keys_at_receiver(world.receiver, created.id)
    assert len(keys) == len(set(keys)) == 120
    info = world.store.get_campaign(created.id)
    assert info.counts is not None and info.counts.sent == 120 and info.spent_minor == 120
    # Both requests of the first claim (100 + 20 messages) failed once, then went through.
    assert {d.attempts for d in world.store.deliveries(created.id, None, 0, 200)} == {2}


def test_partner_timeout_then_duplicates_are_recognised(tmp_path: Path,
                                                        upstreams: tuple[FakeProfile, FakeSegment, RunningServer],
                                                        receiver: Receiver) -> None:
    world = make_world(tmp_path, upstreams, receiver, timeout_s=0.3)
    audience(world, 50)
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 0),)))
    world.campaigns.launch(created.id)
    # The receiver records the batch, then answers too late: the worker retries it with the same keys.
    world.receiver.faults(delay_ms=1000, delay_next=1)
    world.drain(until=lambda: world.store.get_campaign(created.id).state is State.COMPLETED)
    stats = world.receiver.stats()
    assert stats["new"] == 50 and stats["duplicates"] == 50
    assert all(m["deliveries"] == 2 for m in world.receiver.messages(str(created.id)))
    info = world.store.get_campaign(created.id)
    assert info.counts is not None and info.counts.sent == 50


def test_dead_letter_after_the_last_attempt(world: World) -> None:
    audience(world, 3)
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 0),)))
    world.campaigns.launch(created.id)
    world.receiver.faults(fail_next=100, fail_status=503)
    world.drain(until=lambda: world.store.get_campaign(created.id).state is State.COMPLETED)
    dead = world.store.deliveries(created.id, "dead", 0, 10)
    assert len(dead) == 3 and all(d.attempts == 4 and "gave up after 4 attempts" in d.reason for d in dead)


class FakeRecommend(recommend_pb2_grpc.RecommendServiceServicer):
    def Recommend(self, request: recommend_pb2.RecommendRequest, context: grpc.ServicerContext) -> recommend_pb2.RecommendResponse:
        if request.customer_id == "cust-0001":
            context.abort(grpc.StatusCode.UNAVAILABLE, "model loading")
        return recommend_pb2.RecommendResponse(items=[recommend_pb2.ScoredItem(sku=f"SKU{i}", score=1.0)
                                                      for i in range(request.k)])


def test_recommended_items_fill_the_template_and_degrade(world: World) -> None:
    server = start("recommend", [Registration(recommend_pb2_grpc.add_RecommendServiceServicer_to_server, FakeRecommend(),
                                              "marksman.recommend.v1.RecommendService")], metrics_port=None, workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        world.dispatcher.recommendations = RecommendItems(recommend_pb2_grpc.RecommendServiceStub(channel), 5.0)
        audience(world, 3)
        created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 0),),
                                              template="Hi {name}, picked for you: {recommended_items}.",
                                              recommended_items=2))
        world.campaigns.launch(created.id)
        world.drain()
    finally:
        channel.close()
        server.stop(0)
    bodies = {m["customer_id"]: m["body"] for m in world.receiver.messages(str(created.id))}
    assert bodies == {"cust-0000": "Hi Ann, picked for you: SKU0, SKU1.", "cust-0001": "Hi Ann, picked for you: .",
                      "cust-0002": "Hi Ann, picked for you: SKU0, SKU1."}


def test_partner_rejects_one_message(world: World) -> None:
    world.profile.customers.update({"ok": customer("ok"), "bad": customer("bad")})
    world.profile.customers["bad"].email = ""
    world.profile.customers["bad"].consents.add(channel=3, granted=True)  # push consent, no token: no contact
    world.segment.members["vips"] = ["ok", "bad"]
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 0),)))
    world.campaigns.launch(created.id)
    world.drain()
    states = {d.customer_id: (d.state, d.reason) for d in world.store.deliveries(created.id, None, 0, 10)}
    assert states == {"ok": ("sent", ""), "bad": ("skipped", "no_contact")}


def test_send_time_lookups_read_profile_in_batches_of_at_most_a_thousand(
        upstreams: tuple[FakeProfile, FakeSegment, RunningServer]) -> None:
    profile, _segment, server = upstreams
    for i in range(2300):
        profile.customers[f"c{i}"] = customer(f"c{i}", sms=i % 2 == 0)
    wanted = [f"c{i}" for i in range(2300)] + ["unknown-1", "not an id", "c5"]
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        found = ProfileContacts(profile_pb2_grpc.ProfileServiceStub(channel), 5.0).lookup(wanted)
        assert sorted(profile.batch_sizes) == [301, 1000, 1000]  # the malformed id never reaches profile
        assert len(found) == 2302 and found["unknown-1"] is None and found["not an id"] is None
        c4, c5 = found["c4"], found["c5"]
        assert c4 is not None and c4.consents == {"email": True, "sms": True} and c4.time_zone == "Europe/London"
        assert c5 is not None and c5.consents == {"email": True, "sms": False} and c5.email == "c5@example.com"
        profile.unavailable = True
        with pytest.raises(Unavailable):
            ProfileContacts(profile_pb2_grpc.ProfileServiceStub(channel), 5.0).lookup(["c1"])


def test_pipelined_workers_send_every_message_once_and_stop_cleanly(
        tmp_path: Path, upstreams: tuple[FakeProfile, FakeSegment, RunningServer], receiver: Receiver) -> None:
    world = make_world(tmp_path, upstreams, receiver, claim_size=100, in_flight=3)
    audience(world, 1000)
    created = world.campaigns.create(spec(segment="vips", routes=(Route("email", "mailer", 2),)))
    world.campaigns.launch(created.id)
    world.receiver.faults(delay_ms=20)  # answers take a while, so several requests are out at once
    world.dispatcher.start(1)
    try:
        wait_for(lambda: world.receiver.stats()["new"] >= 1000)
    finally:
        world.dispatcher.stop()
    keys = keys_at_receiver(world.receiver, created.id)
    assert len(keys) == len(set(keys)) == 1000 and world.receiver.stats()["duplicates"] == 0
    info = world.store.get_campaign(created.id)
    # stop() waited for the requests out: every one is recorded and nothing is left leased.
    assert info.counts is not None and info.counts.sent == 1000 and info.spent_minor == 2000
    assert all(d.state == "sent" for d in world.store.deliveries(created.id, None, 0, 1000))


def test_frequency_cap_counts_messages_still_out_at_the_partner(
        tmp_path: Path, upstreams: tuple[FakeProfile, FakeSegment, RunningServer], receiver: Receiver) -> None:
    # Two capped campaigns over the same customers, running together: the second campaign's rows are planned
    # while the first campaign's requests are still out (slow answers), before any of them is recorded as sent.
    world = make_world(tmp_path, upstreams, receiver, claim_size=50, in_flight=4)
    audience(world, 100)
    capped = spec(segment="vips", routes=(Route("email", "mailer", 0),), cap=Cap(1, 7))
    first, second = world.campaigns.create(capped), world.campaigns.create(capped)
    world.campaigns.launch(first.id)
    world.campaigns.launch(second.id)
    world.receiver.faults(delay_ms=300)
    world.dispatcher.start(1)
    try:
        wait_for(lambda: all(world.store.get_campaign(c.id).state is State.COMPLETED for c in (first, second)))
    finally:
        world.dispatcher.stop()
        world.receiver.faults(delay_ms=0)
    per_customer: dict[str, int] = {}
    for message in world.receiver.messages():
        per_customer[message["customer_id"]] = per_customer.get(message["customer_id"], 0) + 1
    assert per_customer == {f"cust-{i:04d}": 1 for i in range(100)}
