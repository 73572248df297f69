"""The campaign store on SQLite and PostgreSQL: campaigns, launch as an outbox, claims, budget, outcomes, pull, erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.campaign.states import Action, State
from services.campaign.store import (
    DEAD,
    FAILED,
    HOLDOUT,
    PENDING,
    QUEUED,
    SENT,
    SKIPPED,
    CampaignStore,
    Outcome,
    Reserved,
    deliveries_t,
)
from services.common.db import make_engine
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound
from tests.unit.campaign.campaign_data import NOW, WALL, add_partner, spec

LEASE = timedelta(seconds=60)


@pytest.fixture
def store(database_url: str) -> CampaignStore:
    store = CampaignStore(make_engine(database_url))
    store.migrate()
    store.migrate()  # applying migrations twice is a no-op
    return store


def launched(store: CampaignStore, n: int = 10, holdout_every: int = 0, **changes: object) -> int:
    add_partner(store, "mailer", "email") if not store.partners() else None
    campaign = store.create_campaign(spec(routes=spec().routes[:1], **changes), NOW)
    audience = [(f"c{i}", bool(holdout_every and i % holdout_every == 0)) for i in range(n)]
    store.launch(campaign.id, 3, audience, NOW, WALL, start_ahead=False)
    return campaign.id


def test_campaign_round_trip_and_draft_only_changes(store: CampaignStore) -> None:
    created = store.create_campaign(spec(budget_minor=1000), NOW)
    assert created.state is State.DRAFT and created.spec == spec(budget_minor=1000)
    assert store.get_campaign(created.id).counts is not None
    updated = store.update_campaign(created.id, spec(name="spring"))
    assert updated.spec.name == "spring"
    assert [c.id for c in store.list_campaigns(State.DRAFT)] == [created.id]
    store.launch(created.id, 1, [("a", False)], NOW, WALL, start_ahead=False)
    with pytest.raises(FailedPrecondition, match="only a draft"):
        store.update_campaign(created.id, spec())
    with pytest.raises(FailedPrecondition, match="only a draft can be deleted"):
        store.delete_campaign(created.id)
    with pytest.raises(NotFound):
        store.get_campaign(999)


def test_launch_writes_one_delivery_per_member_once(store: CampaignStore) -> None:
    campaign_id = launched(store, n=100, holdout_every=10)
    info = store.get_campaign(campaign_id)
    assert info.state is State.RUNNING and info.audience_version == 3
    assert info.counts is not None and (info.counts.targeted, info.counts.holdout, info.counts.pending) == (90, 10, 90)
    with pytest.raises(FailedPrecondition, match="cannot launch a campaign that is running; it must be draft"):
        store.launch(campaign_id, 4, [("c1", False), ("new", False)], NOW, WALL, start_ahead=False)
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(deliveries_t)).scalar_one()
        keys = conn.execute(select(func.count(func.distinct(deliveries_t.c.idempotency_key)))).scalar_one()
    assert total == keys == 100


def test_launch_dedups_the_audience_and_schedules(store: CampaignStore) -> None:
    add_partner(store, "mailer", "email")
    campaign = store.create_campaign(spec(start_at=NOW + timedelta(days=1)), NOW)
    store.launch(campaign.id, 1, [("a", False), ("a", False), ("b", False)], NOW, WALL, start_ahead=True)
    assert store.get_campaign(campaign.id).state is State.SCHEDULED
    assert store.claim("w", WALL, WALL + LEASE, 10) == []  # a scheduled campaign sends nothing
    assert store.start_due(NOW) == []
    assert store.start_due(NOW + timedelta(days=1)) == [campaign.id]
    assert len(store.claim("w", WALL, WALL + LEASE, 10)) == 2


def test_claim_leases_and_a_lapsed_lease_returns(store: CampaignStore) -> None:
    launched(store, n=5)
    first = store.claim("w1", WALL, WALL + LEASE, 3)
    assert len(first) == 3
    second = store.claim("w2", WALL, WALL + LEASE, 10)
    assert {r.id for r in first}.isdisjoint(r.id for r in second) and len(second) == 2
    assert store.claim("w3", WALL + timedelta(seconds=30), WALL + LEASE, 10) == []
    # w1 died: after its lease ran out its rows are due again.
    again = store.claim("w3", WALL + timedelta(seconds=61), WALL + 2 * LEASE, 10)
    assert {r.id for r in again} == {r.id for r in first} | {r.id for r in second}


def test_paused_campaign_is_not_claimed_and_cancel_skips(store: CampaignStore) -> None:
    campaign_id = launched(store, n=4)
    store.transition(campaign_id, Action.PAUSE, NOW)
    assert store.claim("w", WALL, WALL + LEASE, 10) == []
    with pytest.raises(FailedPrecondition, match="cannot pause a campaign that is paused; it must be running, scheduled"):
        store.transition(campaign_id, Action.PAUSE, NOW)
    store.transition(campaign_id, Action.RESUME, NOW)
    assert len(store.claim("w", WALL, WALL + LEASE, 1)) == 1
    cancelled = store.transition(campaign_id, Action.CANCEL, NOW)
    assert cancelled.state is State.CANCELLED and cancelled.finished_at == NOW
    counts = store.get_campaign(campaign_id).counts
    assert counts is not None and counts.skipped == 4 and counts.pending == 0


def test_settle_reserves_budget_and_record_refunds(store: CampaignStore) -> None:
    campaign_id = launched(store, n=5, budget_minor=12)
    mailer = store.partner("mailer")
    rows = store.claim("w", WALL, WALL + LEASE, 10)
    kept, over = store.settle("w", skipped={rows[0].id: "no_consent"},
                              deferred={rows[1].id: (WALL + timedelta(hours=2), "quiet_hours")},
                              reserved=[Reserved(r.id, "email", mailer.id, 5) for r in rows[2:]],
                              budgets={campaign_id: 12})
    assert [r.id for r in kept] == [rows[2].id, rows[3].id] and over == [rows[4].id]
    assert store.get_campaign(campaign_id).spent_minor == 10
    # The partner took one and refused the other: its cost goes back.
    store.record("w", [Outcome(rows[2].id, SENT), Outcome(rows[3].id, FAILED, "bad address")], NOW)
    info = store.get_campaign(campaign_id)
    assert info.spent_minor == 5
    assert info.counts is not None and (info.counts.sent, info.counts.failed, info.counts.skipped) == (1, 1, 2)
    states = {d.id: (d.state, d.reason) for d in store.deliveries(campaign_id, None, 0, 10)}
    assert states[rows[0].id] == (SKIPPED, "no_consent") and states[rows[4].id] == (SKIPPED, "budget_spent")
    assert states[rows[1].id] == (PENDING, "quiet_hours") and states[rows[3].id] == (FAILED, "bad address")
    # The deferred row is due at its time, not before.
    assert store.claim("w", WALL + timedelta(hours=1), WALL + timedelta(hours=1) + LEASE, 10) == []
    assert [r.id for r in store.claim("w", WALL + timedelta(hours=2), WALL + timedelta(hours=3), 10)] == [rows[1].id]


def test_only_the_holder_records_and_a_retry_costs_once(store: CampaignStore) -> None:
    campaign_id = launched(store, n=1, budget_minor=100)
    mailer = store.partner("mailer")
    [row] = store.claim("w1", WALL, WALL + LEASE, 1)
    store.settle("w1", skipped={}, deferred={}, reserved=[Reserved(row.id, "email", mailer.id, 7)],
                 budgets={campaign_id: 100})
    # w1 dies; w2 claims after the lease and reserves again: the cost is counted once.
    later = WALL + timedelta(seconds=61)
    [again] = store.claim("w2", later, later + LEASE, 1)
    assert again.attempts == 1
    store.settle("w2", skipped={}, deferred={}, reserved=[Reserved(row.id, "email", mailer.id, 7)],
                 budgets={campaign_id: 100})
    assert store.get_campaign(campaign_id).spent_minor == 7
    assert store.record("w1", [Outcome(row.id, SENT)], NOW) == 0  # no longer its row
    assert store.record("w2", [Outcome(row.id, PENDING, "partner answered 503", later + LEASE)], NOW) == 1
    assert store.get_campaign(campaign_id).spent_minor == 0
    [third] = store.claim("w2", later + LEASE, later + 2 * LEASE, 1)
    assert third.attempts == 2
    store.record("w2", [Outcome(row.id, DEAD, "gave up")], NOW)
    [dead] = store.deliveries(campaign_id, DEAD, 0, 10)
    assert dead.reason == "gave up"


def test_frequency_window_counts_every_campaign(store: CampaignStore) -> None:
    first = launched(store, n=2)
    mailer = store.partner("mailer")
    rows = store.claim("w", WALL, WALL + LEASE, 10)
    store.settle("w", skipped={}, deferred={}, reserved=[Reserved(r.id, "email", mailer.id, 0) for r in rows],
                 budgets={first: -1})
    store.record("w", [Outcome(r.id, SENT) for r in rows], NOW)
    assert store.sent_since(["c0", "c1", "zz"], NOW - timedelta(days=7)) == {"c0": 1, "c1": 1}
    assert store.sent_since(["c0"], NOW + timedelta(seconds=1)) == {}


def test_completion_when_settled(store: CampaignStore) -> None:
    campaign_id = launched(store, n=2, holdout_every=2)
    assert store.complete_settled(NOW) == []
    [row] = store.claim("w", WALL, WALL + LEASE, 10)
    store.settle("w", skipped={row.id: "no_consent"}, deferred={}, reserved=[], budgets={})
    assert store.complete_settled(NOW) == [campaign_id]
    assert store.get_campaign(campaign_id).state is State.COMPLETED


def test_pull_queue_lease_ack_and_receipts(store: CampaignStore) -> None:
    add_partner(store, "mailer", "email")
    puller = add_partner(store, "puller", "email", mode="pull", endpoint="")
    other = add_partner(store, "other", "sms", mode="pull", endpoint="")
    campaign_id = launched(store, n=3, budget_minor=100)
    rows = store.claim("w", WALL, WALL + LEASE, 10)
    store.settle("w", skipped={}, deferred={}, reserved=[Reserved(r.id, "email", puller.id, 4, f'{{"k": {r.id}}}')
                                                         for r in rows], budgets={campaign_id: 100})
    assert store.get_campaign(campaign_id).counts.queued == 3  # type: ignore[union-attr]
    assert store.lease(other.id, 10, WALL, WALL + LEASE) == []
    leased = store.lease(puller.id, 2, WALL, WALL + LEASE)
    assert [r.payload for r in leased] == [f'{{"k": {rows[0].id}}}', f'{{"k": {rows[1].id}}}']
    assert [r.id for r in store.lease(puller.id, 10, WALL, WALL + LEASE)] == [rows[2].id]
    # Unacknowledged leases return after their time.
    assert len(store.lease(puller.id, 10, WALL + timedelta(seconds=61), WALL + 2 * LEASE)) == 3
    changed = store.ack(puller.id, [rows[0].id], {rows[1].id: "unknown address"}, NOW)
    assert changed == {rows[0].id, rows[1].id}
    assert store.ack(puller.id, [rows[0].id], {}, NOW) == set()
    assert store.ack(other.id, [rows[2].id], {}, NOW) == set()
    info = store.get_campaign(campaign_id)
    assert info.spent_minor == 8 and info.counts is not None and (info.counts.sent, info.counts.failed) == (1, 1)
    key = leased[0].key
    found = store.by_keys([key, "nope"])
    assert list(found) == [key] and found[key].partner_id == puller.id and found[key].customer_id == "c0"
    assert store.set_receipt(found[key].id, "delivered", NOW) is True
    assert store.set_receipt(found[key].id, "delivered", NOW) is False
    assert store.by_keys([key])[key].receipts["delivered"] == NOW


def test_erasure_anonymises_and_blocks_later_launches(store: CampaignStore) -> None:
    campaign_id = launched(store, n=3)
    assert store.erase_customer("c1", NOW) == 1
    assert store.erase_customer("c1", NOW) == 0
    customers = {d.customer_id for d in store.deliveries(campaign_id, None, 0, 10)}
    assert "c1" not in customers and len(customers) == 3
    again = store.create_campaign(spec(routes=spec().routes[:1]), NOW)
    store.launch(again.id, 1, [("c1", False), ("c2", False)], NOW, WALL, start_ahead=False)
    assert [d.customer_id for d in store.deliveries(again.id, None, 0, 10)] == ["c2"]


def test_partners_unique_and_by_key(store: CampaignStore) -> None:
    mailer = add_partner(store, "mailer", "email", key="secret-key")
    with pytest.raises(AlreadyExists):
        add_partner(store, "mailer", "email", key="another")
    from services.campaign.signing import key_hash

    assert store.partner_by_key(key_hash("secret-key")) == mailer
    store.set_partner_key("mailer", key_hash("new"))
    assert store.partner_by_key(key_hash("secret-key")) is None
    with pytest.raises(NotFound):
        store.set_partner_key("ghost", key_hash("x"))


def test_dispatch_lag_is_the_oldest_due_row(store: CampaignStore) -> None:
    launched(store, n=2)
    assert store.dispatch_lag_s(WALL + timedelta(seconds=30)) == pytest.approx(30)
    store.claim("w", WALL, WALL + LEASE, 10)
    assert store.dispatch_lag_s(WALL + timedelta(seconds=30)) == 0.0


def test_holdout_rows_are_never_claimed(store: CampaignStore) -> None:
    launched(store, n=4, holdout_every=1)
    assert store.claim("w", WALL, WALL + LEASE, 10) == []
    assert {d.state for d in store.deliveries(1, None, 0, 10)} == {HOLDOUT}
    assert QUEUED not in {d.state for d in store.deliveries(1, None, 0, 10)}
