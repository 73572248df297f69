"""The profile store on SQLite and PostgreSQL: idempotent ingest, merges, consent, erasure, export cursors."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.common.db import make_engine
from services.profile.domain import (
    Consent,
    ContactChannel,
    Customer,
    Event,
    EventType,
    Line,
    PaymentChannel,
    SalesChannel,
)
from services.profile.portraits import PortraitKeeper
from services.profile.store import ProfileStore, Status, events_t

NOW = datetime(2011, 12, 10, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> ProfileStore:
    store = ProfileStore(make_engine(database_url))
    store.migrate()
    store.migrate()  # applying migrations twice is a no-op
    return store


def order(event_id: str, customer: str = "c1", days_ago: int = 10, amount: int = 500, **kw: object) -> Event:
    return Event(
        event_id=event_id,
        type=EventType.ORDER,
        occurred_at=NOW - timedelta(days=days_ago),
        customer_id=customer,
        currency="GBP",
        payment_channel=PaymentChannel.ALIPAY,
        lines=(Line("SKU1", 1, amount, amount, 0, "Home", ""),),
        **kw,  # type: ignore[arg-type]
    )


def statuses(outcomes: list) -> list[str]:  # type: ignore[type-arg]
    return [o.status for o in outcomes]


def event_count(store: ProfileStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events_t)).scalar_one())


def test_a_resent_event_id_is_a_duplicate_not_a_second_order(store: ProfileStore) -> None:
    first = store.ingest([(0, order("e1")), (1, order("e1"))], NOW)
    assert statuses(first) == [Status.ACCEPTED, Status.DUPLICATE]
    again = store.ingest([(0, order("e1")), (1, order("e2"))], NOW)
    assert statuses(again) == [Status.DUPLICATE, Status.ACCEPTED]
    assert event_count(store) == 2


def test_events_of_an_unknown_customer_create_a_bare_customer(store: ProfileStore) -> None:
    store.ingest([(0, order("e1", customer="new-1"))], NOW)
    customer = store.get_customer("new-1")
    assert customer is not None and customer.email == ""


def test_merge_moves_anonymous_events_and_later_ones_follow(store: ProfileStore) -> None:
    store.upsert_customers([Customer("c1")], NOW)
    anon = Event("v1", EventType.VIEW, NOW - timedelta(days=3), anonymous_id="dev-9", lines=(Line("SKU1"),))
    store.ingest([(0, anon)], NOW)
    assert store.merge_identity("c1", "dev-9", NOW) == 1
    later = Event("v2", EventType.VIEW, NOW - timedelta(days=1), anonymous_id="dev-9", lines=(Line("SKU2"),))
    store.ingest([(0, later)], NOW)
    key_events = next(iter(store.events_by_customer([store.find_portrait("c1")[0]]).values()))[1]  # type: ignore[index]
    assert sorted(e.event_id for e in key_events) == ["v1", "v2"]
    assert store.merge_identity("nobody", "dev-9", NOW) is None


def test_an_older_consent_change_never_overrides_a_newer_one(store: ProfileStore) -> None:
    newer = Consent(ContactChannel.EMAIL, False, NOW)
    older = Consent(ContactChannel.EMAIL, True, NOW - timedelta(days=5))
    store.upsert_customers([Customer("c1", consents=[newer])], NOW)
    current = store.update_consent("c1", [older])
    assert current == [newer]
    assert store.update_consent("unknown", [older]) is None


def test_erasure_removes_everything_and_late_events_are_dropped(store: ProfileStore) -> None:
    store.upsert_customers(
        [Customer("c1", email="a@example.com", consents=[Consent(ContactChannel.SMS, True, NOW)])], NOW
    )
    store.ingest(
        [(0, order("e1")), (1, Event("v1", EventType.VIEW, NOW, anonymous_id="dev", lines=(Line("S"),)))], NOW
    )
    store.merge_identity("c1", "dev", NOW)
    PortraitKeeper(store, lambda: NOW).refresh_dirty(100)
    erased, deleted = store.erase("c1", NOW)
    assert erased and deleted >= 5
    assert store.get_customer("c1") is None and event_count(store) == 0
    late = store.ingest([(0, order("e9"))], NOW)
    assert statuses(late) == [Status.REJECTED] and "erased" in late[0].reason
    assert store.get_customer("c1") is None
    assert store.erase("c1", NOW) == (False, 0)
    # Re-used explicitly, the id is a new customer with nothing of the old one.
    assert store.upsert_customers([Customer("c1")], NOW)[0].created
    assert statuses(store.ingest([(0, order("e10"))], NOW)) == [Status.ACCEPTED]
    assert event_count(store) == 1


def test_a_failed_ingest_leaves_nothing_half_written(
    store: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_args: object) -> None:
        raise RuntimeError("crash after the events were inserted")

    monkeypatch.setattr(store, "_mark_dirty", boom)
    with pytest.raises(RuntimeError):
        store.ingest([(0, order("e1", customer="fresh"))], NOW)
    assert event_count(store) == 0 and store.get_customer("fresh") is None


def test_incremental_updates_and_the_export_cursor(store: ProfileStore) -> None:
    keeper = PortraitKeeper(store, lambda: NOW)
    store.ingest([(i, order(f"e{i}", customer=f"c{i}")) for i in range(5)], NOW)
    assert store.pending_count() == 5
    assert keeper.refresh_dirty(3) == 3 and keeper.refresh_dirty(10) == 2 and store.pending_count() == 0
    rows = store.export_portraits(0, 0, 2)
    assert len(rows) == 2
    rest = store.export_portraits(rows[-1][0], rows[-1][1], 10)
    assert len(rest) == 3
    assert {r[2].portrait.customer_id for r in rows + rest} == {f"c{i}" for i in range(5)}
    # Only the changed customer comes after the cursor.
    cursor = rest[-1][:2]
    store.ingest([(0, order("e99", customer="c2", days_ago=1))], NOW)
    keeper.refresh_dirty(10)
    changed = store.export_portraits(cursor[0], cursor[1], 10)
    assert [r[2].portrait.customer_id for r in changed] == ["c2"]
    assert changed[0][2].portrait.frequency == 2


def test_a_fresh_read_sees_events_the_updater_has_not_reached(store: ProfileStore) -> None:
    keeper = PortraitKeeper(store, lambda: NOW)
    store.ingest([(0, order("e1"))], NOW)
    keeper.refresh_dirty(10)
    store.ingest([(0, order("e2", days_ago=2))], NOW)
    current = keeper.current("c1")
    assert current is not None and current.portrait.frequency == 2 and current.portrait.recency_days == 2
    assert keeper.current("nobody") is None


def test_batch_recompute_scores_the_base_and_clears_stale_marks(store: ProfileStore) -> None:
    keeper = PortraitKeeper(store, lambda: NOW)
    store.ingest(
        [(i, order(f"e{i}", customer=f"c{i}", days_ago=i * 20, amount=100 * (i + 1))) for i in range(10)], NOW
    )
    result = keeper.recompute_all()
    assert result.customers == 10 and store.pending_count() == 0
    summary = store.summary()
    assert summary.customers_with_orders == 10 and summary.orders == 10
    assert summary.revenue_minor == sum(100 * (i + 1) for i in range(10))
    assert sum(summary.rfm_segments.values()) == 10
    base = store.load_base_stats()
    assert len(base.rfm.frequency) == 4 and "Home" in base.category_price_percentiles


def test_interactions_export_lines_after_the_cursor(store: ProfileStore) -> None:
    store.ingest(
        [(0, order("e1")), (1, Event("s1", EventType.SEARCH, NOW, customer_id="c1", query="mug"))], NOW
    )
    rows = store.export_interactions(0, 10)
    assert [r.event.event_id for r in rows] == ["e1"]
    assert store.export_interactions(rows[-1].seq, 10) == []


def test_an_erasure_by_another_replica_is_not_hidden_by_the_id_cache(database_url: str) -> None:
    here, there = ProfileStore(make_engine(database_url)), ProfileStore(make_engine(database_url))
    here.migrate()
    assert statuses(here.ingest([(0, order("e1"))], NOW)) == [Status.ACCEPTED]  # warms this replica's cache
    assert there.erase("c1", NOW)[0]
    late = here.ingest([(0, order("e2"))], NOW)
    assert statuses(late) == [Status.REJECTED] and "erased" in late[0].reason
    assert event_count(here) == 0


def test_a_batch_read_returns_known_customers_with_their_consents_and_leaves_out_the_rest(store: ProfileStore) -> None:
    email = Consent(ContactChannel.EMAIL, True, NOW - timedelta(days=2))
    sms = Consent(ContactChannel.SMS, False, NOW - timedelta(days=1))
    store.upsert_customers([Customer("c1", name="Ann", email="ann@example.com", time_zone="Europe/London",
                                     consents=[sms, email]),
                            Customer("c2", name="Bo"), Customer("gone", email="gone@example.com")], NOW)
    store.erase("gone", NOW)
    found = store.get_customers(["c2", "nobody", "c1", "gone", "c1"])
    assert set(found) == {"c1", "c2"}
    assert found["c1"] == store.get_customer("c1")
    assert found["c1"].consents == [email, sms] and found["c1"].time_zone == "Europe/London"
    assert found["c2"].consents == [] and found["c2"].name == "Bo"
    assert store.get_customers([]) == {}


def test_a_batch_read_larger_than_one_chunk_finds_every_customer(store: ProfileStore) -> None:
    ids = [f"c{i}" for i in range(2500)]
    store.upsert_customers([Customer(cid, consents=[Consent(ContactChannel.PUSH, True, NOW)]) for cid in ids], NOW)
    found = store.get_customers([*ids, "missing"])
    assert len(found) == 2500 and all(len(c.consents) == 1 for c in found.values())


def test_preferred_sales_channels_come_from_the_stored_portraits(store: ProfileStore) -> None:
    store.ingest([(0, order("m1", "m", sales_channel=SalesChannel.MARKETPLACE)),
                  (1, order("m2", "m", days_ago=5, sales_channel=SalesChannel.MARKETPLACE)),
                  (2, order("w1", "w", sales_channel=SalesChannel.WEB)), (3, order("x1", "x"))], NOW)
    assert store.preferred_sales_channels(["m", "w"]) == {}  # no portrait stored yet
    PortraitKeeper(store, lambda: NOW).refresh_dirty(100)
    assert store.preferred_sales_channels(["m", "w", "x", "nobody", "m"]) == {"m": "marketplace", "w": "web"}


def test_concurrent_saves_of_the_same_portraits_never_collide(database_url: str) -> None:
    # The updater and a requested recompute may save one customer at once; on PostgreSQL a delete
    # followed by an insert made the second fail on the primary key.
    stores = [ProfileStore(make_engine(database_url)) for _ in range(2)]
    stores[0].migrate()
    stores[0].ingest([(i, order(f"e{i}", customer=f"c{i}")) for i in range(50)], NOW)
    keepers = [PortraitKeeper(s, lambda: NOW) for s in stores]
    keepers[0].recompute_all()
    errors: list[BaseException] = []

    def recompute(keeper: PortraitKeeper) -> None:
        try:
            for _ in range(5):
                keeper.recompute_all()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=recompute, args=(k,)) for k in keepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    current = keepers[1].current("c7")
    assert current is not None and current.portrait.frequency == 1
