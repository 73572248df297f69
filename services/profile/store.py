"""Every query of the profile service: customers, raw events, identity links, consent, portraits, tombstones."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Engine, Integer, Text, bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.common.db import bulk_insert, member_of, transaction, upsert_statement
from services.common.migrate import upgrade_to_head
from services.common.tombstones import TombstoneHasher
from services.profile.domain import (
    BaseStats,
    Consent,
    ContactChannel,
    Customer,
    Event,
    EventType,
    LifecycleStage,
    Line,
    PaymentChannel,
    Portrait,
    RfmEdges,
    SalesChannel,
)
from services.profile.models import (
    BaseStatsRow,
    ConsentRow,
    CustomerRow,
    DirtyCustomerRow,
    EventRow,
    IdentityLinkRow,
    MetaRow,
    PortraitRow,
    TombstoneRow,
)

MIGRATIONS = Path(__file__).parent / "migrations"
# SQLite allows 32,766 bound parameters; IN lists stay well below that.
IN_CHUNK = 900
# member_of binds a whole chunk as one parameter, so a batch read's chunk may be larger than IN_CHUNK.
BATCH_READ_CHUNK = 1000
KEY_CACHE_SIZE = 500_000
EVENT_COLUMNS = ("event_id", "customer_key", "anonymous_id", "type", "occurred_at", "sales_channel",
                 "payment_channel", "currency", "order_id", "quote_id", "query", "lines", "paid_minor", "stored_at")

DIRTY_COLUMNS = ("customer_key", "marked")
# Enum member -> stored text by dict lookup: the enum's .value descriptor costs more, thousands of times a call.
_VALUES: dict[Any, str] = {None: "", **{m: m.value for e in (EventType, SalesChannel, PaymentChannel) for m in e}}

customers_t = CustomerRow.__table__  # type: ignore[attr-defined]
consents_t = ConsentRow.__table__  # type: ignore[attr-defined]
links_t = IdentityLinkRow.__table__  # type: ignore[attr-defined]
events_t = EventRow.__table__  # type: ignore[attr-defined]
portraits_t = PortraitRow.__table__  # type: ignore[attr-defined]
dirty_t = DirtyCustomerRow.__table__  # type: ignore[attr-defined]
base_t = BaseStatsRow.__table__  # type: ignore[attr-defined]
tombstones_t = TombstoneRow.__table__  # type: ignore[attr-defined]
meta_t = MetaRow.__table__  # type: ignore[attr-defined]


class Status:
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class IngestOutcome(NamedTuple):
    """One event's result (a tuple: ingest makes a thousand of these per batch)."""

    position: int  # in the batch (a NamedTuple cannot name a field "index")
    event_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    customer_id: str
    created: bool


@dataclass(frozen=True, slots=True)
class StoredPortrait:
    """A portrait with what the store adds from the customer record."""

    portrait: Portrait
    region: str
    time_zone: str
    consents: list[Consent]


@dataclass(frozen=True, slots=True)
class InteractionRow:
    seq: int
    customer_id: str
    event: Event


@dataclass(frozen=True, slots=True)
class BaseSummary:
    customers: int
    customers_with_orders: int
    orders: int
    events: int
    revenue_minor: int
    currency: str
    rfm_segments: dict[str, int]
    lifecycle_stages: dict[str, int]
    base_computed_at: datetime | None
    pending_portraits: int


def _contact_fields(customer: Customer) -> dict[str, Any]:
    """The fields the upsert carries (empty ones leave the stored value alone)."""
    values = (("name", customer.name), ("email", customer.email), ("phone", customer.phone),
              ("push_token", customer.push_token), ("region", customer.region), ("time_zone", customer.time_zone),
              ("signup_at", customer.signup_at))
    return {name: value for name, value in values if value}


def _customer(row: Any, consents: list[Consent]) -> Customer:
    return Customer(customer_id=row.customer_id, name=row.name, email=row.email, phone=row.phone,
                    push_token=row.push_token, region=row.region, time_zone=row.time_zone, signup_at=row.signup_at,
                    consents=consents)


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_marker_lock = threading.Lock()
_last_marker = 0


def _marker() -> int:
    """A strictly growing number (nanoseconds) for dirty marks and portrait revisions."""
    global _last_marker
    with _marker_lock:
        _last_marker = max(time.time_ns(), _last_marker + 1)
        return _last_marker


# ---- codecs between domain values and stored text (the store is their only reader) ----

def lines_to_json(lines: Iterable[Line]) -> str:
    """Each line as an array in Line's field order (orjson hands each NamedTuple to `tuple`)."""
    return orjson.dumps(lines if isinstance(lines, tuple) else tuple(lines), default=tuple).decode()


def lines_from_json(text: str) -> tuple[Line, ...]:
    return tuple(Line(sku, qty, unit, list_, disc, cat, brand) for sku, qty, unit, list_, disc, cat, brand in orjson.loads(text))


def _event_from_row(row: Any, customer_id: str) -> Event:
    return Event(
        event_id=row.event_id,
        type=EventType(row.type),
        occurred_at=row.occurred_at,
        customer_id=customer_id,
        anonymous_id=row.anonymous_id or "",
        sales_channel=SalesChannel(row.sales_channel) if row.sales_channel else None,
        payment_channel=PaymentChannel(row.payment_channel) if row.payment_channel else None,
        currency=row.currency,
        order_id=row.order_id,
        quote_id=row.quote_id,
        query=row.query,
        lines=lines_from_json(row.lines),
    )


_DATETIME_FIELDS = ("computed_at", "first_order_at", "last_order_at", "last_event_at", "base_computed_at")


def portrait_to_json(portrait: Portrait) -> str:
    # orjson writes dataclasses natively; dataclasses.asdict deep-copies and took a quarter of the updater.
    return orjson.dumps(portrait).decode()


def portrait_from_json(text: str) -> Portrait:
    data = orjson.loads(text)
    for name in _DATETIME_FIELDS:
        if data.get(name):
            data[name] = datetime.fromisoformat(data[name])
    data["lifecycle_stage"] = LifecycleStage(data["lifecycle_stage"])
    if data.get("preferred_payment_channel"):
        data["preferred_payment_channel"] = PaymentChannel(data["preferred_payment_channel"])
    if data.get("preferred_sales_channel"):
        data["preferred_sales_channel"] = SalesChannel(data["preferred_sales_channel"])
    return Portrait(**data)


def base_to_json(base: BaseStats) -> str:
    return orjson.dumps(base).decode()


def base_from_json(text: str) -> BaseStats:
    data = orjson.loads(text)
    rfm = data.get("rfm") or {}
    return BaseStats(
        computed_at=datetime.fromisoformat(data["computed_at"]) if data.get("computed_at") else None,
        rfm=RfmEdges(
            recency_days=tuple(rfm.get("recency_days", ())),
            frequency=tuple(rfm.get("frequency", ())),
            monetary_minor=tuple(rfm.get("monetary_minor", ())),
        ),
        category_price_percentiles={k: tuple(v) for k, v in data.get("category_price_percentiles", {}).items()},
        median_purchase_interval_days=float(data.get("median_purchase_interval_days", 0.0)),
    )


# The gateway asks for these on every quote: text() statements are built once, where Core's
# select() built them anew per call (about 80% of the call's CPU).
_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
_PRICING_CUSTOMER = text(
    "SELECT c.key, p.body FROM customers c LEFT JOIN portraits p ON p.customer_key = c.key "
    "WHERE c.customer_id = :customer_id"
).columns(key=Integer, body=Text)
_PRICING_EVENTS = text(
    "SELECT event_id, type, occurred_at, anonymous_id, sales_channel, payment_channel, currency, order_id, "
    "quote_id, query, lines FROM events WHERE customer_key = :key AND type IN ('order', 'refund') "
    "AND occurred_at >= :since AND occurred_at < :until"
).bindparams(
    bindparam("since", type_=events_t.c.occurred_at.type), bindparam("until", type_=events_t.c.occurred_at.type)
).columns(occurred_at=events_t.c.occurred_at.type)


class ProfileStore:
    """The profile database; every method is one transaction, so a crash never leaves half a write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tombstones = TombstoneHasher(meta_t)
        # customer id -> key: ids never change keys except through erasure, which drops the entry
        # here; another replica's erasure is caught by the events' foreign key (the insert fails
        # and is retried without the cache).
        self._key_cache: dict[str, int] = {}

    def migrate(self) -> None:
        upgrade_to_head(MIGRATIONS, self.engine)

    # ---- dialect helpers ----

    def _mark_dirty(self, conn: Connection, keys: Iterable[int]) -> None:
        marked = _marker()
        bulk_insert(conn, dirty_t, [(key, marked) for key in set(keys)], columns=DIRTY_COLUMNS)

    # ---- tombstones ----

    def _id_hash(self, conn: Connection, customer_id: str) -> str:
        return self._tombstones.hash(conn, customer_id)

    def _tombstoned(self, conn: Connection, customer_ids: Sequence[str]) -> set[str]:
        if not customer_ids or conn.execute(select(func.count()).select_from(tombstones_t)).scalar_one() == 0:
            return set()
        hashes = {self._id_hash(conn, cid): cid for cid in customer_ids}
        found: set[str] = set()
        for part in _chunks(list(hashes)):
            found.update(conn.execute(select(tombstones_t.c.id_hash).where(tombstones_t.c.id_hash.in_(part))).scalars())
        return {hashes[h] for h in found}

    # ---- customers ----

    def _keys_for(self, conn: Connection, customer_ids: Sequence[str], *, cached: bool = False) -> dict[str, int]:
        """Keys of the customers that exist; `cached` serves known ids from memory (the ingest path)."""
        if not customer_ids:
            return {}
        cache = self._key_cache
        keys = {cid: cache[cid] for cid in customer_ids if cid in cache} if cached else {}
        wanted = [cid for cid in customer_ids if cid not in keys]
        if wanted:
            found = {cid: key for cid, key in conn.execute(
                select(customers_t.c.customer_id, customers_t.c.key)
                .where(member_of(customers_t.c.customer_id, wanted, conn.dialect)))}
            keys.update(found)
            if len(cache) + len(found) > KEY_CACHE_SIZE:
                cache.clear()
            cache.update(found)
        return keys

    def _create_bare(self, conn: Connection, customer_ids: Sequence[str], now: datetime, tolerant: bool) -> None:
        bulk_insert(conn, customers_t, [
            {"customer_id": cid, "name": "", "email": "", "phone": "", "push_token": "", "region": "",
             "time_zone": "", "created_at": now, "updated_at": now} for cid in customer_ids
        ], skip_existing=tolerant)

    def upsert_customers(self, customers: Sequence[Customer], now: datetime) -> list[UpsertOutcome]:
        """Creates or updates; given contact fields replace stored ones; an erased id comes back as new."""
        try:
            return self._upsert_customers(customers, now, tolerant=False)
        except IntegrityError:  # a concurrent upsert created some of them first
            return self._upsert_customers(customers, now, tolerant=True)

    def _upsert_customers(self, customers: Sequence[Customer], now: datetime, tolerant: bool) -> list[UpsertOutcome]:
        with transaction(self.engine) as conn:
            ids = list(dict.fromkeys(c.customer_id for c in customers))
            existing = self._keys_for(conn, ids)
            revived = self._tombstoned(conn, [cid for cid in ids if cid not in existing])
            if revived:
                conn.execute(delete(tombstones_t).where(
                    tombstones_t.c.id_hash.in_([self._id_hash(conn, cid) for cid in revived])))
            new_rows: dict[str, dict[str, Any]] = {}
            for customer in customers:
                fields = _contact_fields(customer)
                if customer.customer_id in existing:
                    if fields:
                        conn.execute(update(customers_t).where(customers_t.c.key == existing[customer.customer_id])
                                     .values(updated_at=now, **fields))
                else:
                    row = new_rows.setdefault(customer.customer_id, {
                        "customer_id": customer.customer_id, "name": "", "email": "", "phone": "", "push_token": "",
                        "region": "", "time_zone": "", "signup_at": None, "created_at": now, "updated_at": now})
                    row.update(fields)
            bulk_insert(conn, customers_t, list(new_rows.values()), skip_existing=tolerant)
            keys = {**existing, **self._keys_for(conn, list(new_rows))}
            self._apply_consents(conn, [(keys[c.customer_id], consent) for c in customers for consent in c.consents])
            self._mark_dirty(conn, keys.values())
            return [UpsertOutcome(c.customer_id, c.customer_id not in existing) for c in customers]

    def _apply_consents(self, conn: Connection, changes: Sequence[tuple[int, Consent]]) -> None:
        """Applies consent changes in bulk; an older change never overrides a newer one."""
        if not changes:
            return
        current: dict[tuple[int, str], datetime] = {
            (key, channel): changed_at for key, channel, changed_at in conn.execute(
                select(consents_t.c.customer_key, consents_t.c.channel, consents_t.c.changed_at)
                .where(member_of(consents_t.c.customer_key, list({k for k, _ in changes}), conn.dialect)))
        }
        latest: dict[tuple[int, str], Consent] = {}
        for key, consent in changes:
            slot = (key, consent.channel.value)
            known = latest.get(slot)
            if (known is None or known.changed_at <= consent.changed_at) and (
                    slot not in current or current[slot] <= consent.changed_at):
                latest[slot] = consent
        inserts = [{"customer_key": k, "channel": ch, "granted": c.granted, "changed_at": c.changed_at}
                   for (k, ch), c in latest.items() if (k, ch) not in current]
        bulk_insert(conn, consents_t, inserts)
        updates = [{"k": k, "ch": ch, "granted": c.granted, "changed_at": c.changed_at}
                   for (k, ch), c in latest.items() if (k, ch) in current]
        if updates:
            conn.execute(
                update(consents_t)
                .where(consents_t.c.customer_key == bindparam("k"), consents_t.c.channel == bindparam("ch"))
                .values(granted=bindparam("granted"), changed_at=bindparam("changed_at")),
                updates,
            )

    def _consents_of(self, conn: Connection, key: int) -> list[Consent]:
        rows = conn.execute(select(consents_t).where(consents_t.c.customer_key == key).order_by(consents_t.c.channel))
        return [Consent(ContactChannel(r.channel), r.granted, r.changed_at) for r in rows]

    def update_consent(self, customer_id: str, consents: Sequence[Consent]) -> list[Consent] | None:
        with transaction(self.engine) as conn:
            key = self._keys_for(conn, [customer_id]).get(customer_id)
            if key is None:
                return None
            self._apply_consents(conn, [(key, consent) for consent in consents])
            self._mark_dirty(conn, [key])
            return self._consents_of(conn, key)

    def get_customer(self, customer_id: str) -> Customer | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(customers_t).where(customers_t.c.customer_id == customer_id)).first()
            if row is None:
                return None
            return _customer(row, self._consents_of(conn, row.key))

    def get_customers(self, customer_ids: Sequence[str]) -> dict[str, Customer]:
        """The customers that exist among `customer_ids`, by id: one query for the customers of each chunk of
        ids and one for their consents, however many ids (dispatch reads a claimed batch this way)."""
        found: dict[str, Customer] = {}
        with self.engine.connect() as conn:
            for part in _chunks(list(dict.fromkeys(customer_ids)), BATCH_READ_CHUNK):
                rows = conn.execute(select(customers_t).where(
                    member_of(customers_t.c.customer_id, part, conn.dialect))).all()
                if not rows:
                    continue
                consents: dict[int, list[Consent]] = defaultdict(list)
                for r in conn.execute(select(consents_t).where(
                        member_of(consents_t.c.customer_key, [row.key for row in rows], conn.dialect))
                        .order_by(consents_t.c.customer_key, consents_t.c.channel)):
                    consents[r.customer_key].append(Consent(ContactChannel(r.channel), r.granted, r.changed_at))
                for row in rows:
                    found[row.customer_id] = _customer(row, consents.get(row.key, []))
        return found

    def preferred_sales_channels(self, customer_ids: Sequence[str]) -> dict[str, str]:
        """customer id -> the stored portrait's preferred sales channel ("web"...), for those that have one."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in _chunks(list(dict.fromkeys(customer_ids)), BATCH_READ_CHUNK):
                rows = conn.execute(select(customers_t.c.customer_id, portraits_t.c.body)
                                    .join(portraits_t, portraits_t.c.customer_key == customers_t.c.key)
                                    .where(member_of(customers_t.c.customer_id, part, conn.dialect)))
                for customer_id, body in rows:
                    channel = orjson.loads(body).get("preferred_sales_channel")
                    if channel:
                        found[customer_id] = channel
        return found

    # ---- events ----

    def ingest(self, events: Sequence[tuple[int, Event]], now: datetime) -> list[IngestOutcome]:
        """Stores validated events in one transaction; returns one outcome per event, in input order.

        A re-sent event id is a duplicate (nothing changes); events of an erased customer id are
        rejected; events of an unknown customer id create a bare customer (their record may follow).
        """
        try:
            # Plain inserts are the bulk fast path; a concurrent writer of the same ids (or a
            # customer erased by another replica) makes them fail as a whole, and the retry
            # reads keys afresh and skips what now exists.
            return self._ingest(events, now, tolerant=False)
        except IntegrityError:
            self._key_cache.clear()
            return self._ingest(events, now, tolerant=True)

    def _ingest(self, events: Sequence[tuple[int, Event]], now: datetime, tolerant: bool) -> list[IngestOutcome]:
        outcomes: dict[int, IngestOutcome] = {}
        with transaction(self.engine) as conn:
            seen: set[str] = set()
            fresh: list[tuple[int, Event]] = []
            for index, event in events:
                if event.event_id in seen:
                    outcomes[index] = IngestOutcome(index, event.event_id, Status.DUPLICATE)
                else:
                    seen.add(event.event_id)
                    fresh.append((index, event))

            customer_ids = list({e.customer_id for _, e in fresh if e.customer_id})
            keys = self._keys_for(conn, customer_ids, cached=not tolerant)
            missing = [cid for cid in customer_ids if cid not in keys]
            erased = self._tombstoned(conn, missing)
            new_ids = [cid for cid in missing if cid not in erased]
            if new_ids:
                self._create_bare(conn, new_ids, now, tolerant)
                keys.update(self._keys_for(conn, new_ids))

            anonymous = list({e.anonymous_id for _, e in fresh if e.anonymous_id and not e.customer_id})
            linked: dict[str, int] = {}
            for part in _chunks(anonymous):
                linked.update(
                    (r.anonymous_id, r.customer_key)
                    for r in conn.execute(select(links_t).where(links_t.c.anonymous_id.in_(part)))
                )

            rows: list[tuple[Any, ...]] = []
            dirty: set[int] = set()
            for index, event in fresh:
                if event.customer_id in erased:
                    outcomes[index] = IngestOutcome(index, event.event_id, Status.REJECTED,
                                                    "customer was erased; upsert the customer again to re-use the id")
                    continue
                key = keys[event.customer_id] if event.customer_id else linked.get(event.anonymous_id)
                if key is not None:
                    dirty.add(key)
                rows.append((
                    event.event_id, key, event.anonymous_id or None, _VALUES[event.type], event.occurred_at,
                    _VALUES[event.sales_channel], _VALUES[event.payment_channel],
                    event.currency, event.order_id, event.quote_id, event.query, lines_to_json(event.lines),
                    sum([q * unit - discount for _, q, unit, _, discount, _, _ in event.lines]), now,
                ))
                outcomes[index] = IngestOutcome(index, event.event_id, Status.ACCEPTED)
            # Ids stored earlier are found by the insert itself (ON CONFLICT DO NOTHING): when it
            # stores fewer rows than it got, the rows numbered after `before` are this batch's.
            before = conn.execute(select(func.coalesce(func.max(events_t.c.seq), 0))).scalar_one() if rows else 0
            stored = bulk_insert(conn, events_t, rows, columns=EVENT_COLUMNS, skip_existing=True)
            if stored < len(rows):
                ours = set(conn.execute(select(events_t.c.event_id).where(
                    events_t.c.seq > before,
                    member_of(events_t.c.event_id, [row[0] for row in rows], conn.dialect))).scalars())
                for index, outcome in list(outcomes.items()):
                    if outcome.status == Status.ACCEPTED and outcome.event_id not in ours:
                        outcomes[index] = IngestOutcome(index, outcome.event_id, Status.DUPLICATE)
            self._mark_dirty(conn, dirty)
        return [outcomes[index] for index, _ in events]

    def merge_identity(self, customer_id: str, anonymous_id: str, now: datetime) -> int | None:
        """Links the anonymous id to the customer and moves its events; None if the customer is unknown."""
        with transaction(self.engine) as conn:
            key = self._keys_for(conn, [customer_id]).get(customer_id)
            if key is None:
                return None
            previous = conn.execute(select(links_t.c.customer_key).where(links_t.c.anonymous_id == anonymous_id)).scalar()
            if previous is None:
                conn.execute(insert(links_t).values(anonymous_id=anonymous_id, customer_key=key, merged_at=now))
            elif previous != key:
                conn.execute(update(links_t).where(links_t.c.anonymous_id == anonymous_id)
                             .values(customer_key=key, merged_at=now))
            moved = conn.execute(
                update(events_t).where(events_t.c.anonymous_id == anonymous_id)
                .where((events_t.c.customer_key.is_(None)) | (events_t.c.customer_key == previous))
                .values(customer_key=key)
            ).rowcount
            self._mark_dirty(conn, [k for k in (key, previous) if k is not None])
            return int(moved or 0)

    def events_by_customer(self, keys: Sequence[int]) -> dict[int, tuple[str, list[Event]]]:
        """The customer id and raw events of each key (keys without a customer are left out)."""
        result: dict[int, tuple[str, list[Event]]] = {}
        with self.engine.connect() as conn:
            for part in _chunks(list(keys)):
                for key, cid in conn.execute(
                    select(customers_t.c.key, customers_t.c.customer_id).where(customers_t.c.key.in_(part))
                ):
                    result[key] = (cid, [])
                for row in conn.execute(select(events_t).where(events_t.c.customer_key.in_(part))):
                    entry = result.get(row.customer_key)
                    if entry is not None:
                        entry[1].append(_event_from_row(row, entry[0]))
        return result

    def money_events(self, customer_id: str, since: datetime, until: datetime | None = None,
                     with_portrait: bool = False) -> tuple[list[Event], Portrait | None] | None:
        """The customer's orders and refunds in [since, until), and their stored portrait when asked for
        (as last saved: not recomputed); None for an unknown customer."""
        with self.engine.connect() as conn:
            found = conn.execute(_PRICING_CUSTOMER, {"customer_id": customer_id}).first()
            if found is None:
                return None
            rows = conn.execute(_PRICING_EVENTS, {"key": found.key, "since": since, "until": until or _END_OF_TIME})
            events = [_event_from_row(row, customer_id) for row in rows]
        body = found.body if with_portrait else None
        return events, portrait_from_json(body) if body is not None else None

    def iter_all_customers(self, page: int = 2000) -> Iterator[dict[int, tuple[str, list[Event]]]]:
        """Every customer with their events, a page of customers at a time (for the batch recompute)."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                keys = list(conn.execute(
                    select(customers_t.c.key).where(customers_t.c.key > last).order_by(customers_t.c.key).limit(page)
                ).scalars())
            if not keys:
                return
            last = keys[-1]
            yield self.events_by_customer(keys)

    # ---- portraits ----

    def dirty_batch(self, limit: int) -> list[tuple[int, int]]:
        """Up to `limit` stale customers, longest waiting first: (key, newest mark)."""
        with self.engine.connect() as conn:
            return [(key, marked) for key, marked in conn.execute(
                select(dirty_t.c.customer_key, func.max(dirty_t.c.marked))
                .group_by(dirty_t.c.customer_key).order_by(func.min(dirty_t.c.marked)).limit(limit))]

    def pending_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count(dirty_t.c.customer_key.distinct()))).scalar_one())

    def newest_pending_ns(self) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(dirty_t.c.marked))).scalar()
            return int(value) if value is not None else None

    def oldest_pending_ns(self) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(dirty_t.c.marked))).scalar()
            return int(value) if value is not None else None

    def save_portraits(self, portraits: Sequence[tuple[int, Portrait]], cleared: Sequence[tuple[int, int]] = ()) -> None:
        """Replaces the portraits of those keys and clears dirty marks not renewed since they were read."""
        revision = _marker()
        rows = [{
            "customer_key": key, "revision": revision, "computed_at": p.computed_at, "body": portrait_to_json(p),
            "rfm_segment": p.rfm_segment, "lifecycle_stage": p.lifecycle_stage.value,
            "monetary_minor": p.monetary_minor, "frequency": p.frequency, "currency": p.currency,
        } for key, p in portraits]
        with transaction(self.engine) as conn:
            if rows:
                # Erasure may have removed a customer since its events were read: skip those keys.
                alive: set[int] = set()
                for part in _chunks([r["customer_key"] for r in rows]):
                    alive.update(conn.execute(select(customers_t.c.key).where(customers_t.c.key.in_(part))).scalars())
                # An upsert, as the updater and a requested recompute may save the same customer at once.
                rows = [r for r in rows if r["customer_key"] in alive]
                if rows:
                    conn.execute(upsert_statement(conn.dialect, portraits_t, ("customer_key",)), rows)
            by_mark: dict[int, list[int]] = defaultdict(list)
            for key, marked in cleared:
                by_mark[marked].append(key)
            for marked, keys in by_mark.items():
                for part in _chunks(keys):
                    conn.execute(delete(dirty_t).where(dirty_t.c.customer_key.in_(part), dirty_t.c.marked <= marked))

    def clear_dirty_before(self, marker: int) -> None:
        """Forgets stale marks set before `marker` (a full recompute has covered them)."""
        with transaction(self.engine) as conn:
            conn.execute(delete(dirty_t).where(dirty_t.c.marked <= marker))

    @staticmethod
    def marker() -> int:
        return _marker()

    def load_base_stats(self) -> BaseStats:
        with self.engine.connect() as conn:
            body = conn.execute(select(base_t.c.body).order_by(base_t.c.id.desc()).limit(1)).scalar()
        return base_from_json(body) if body else BaseStats()

    def save_base_stats(self, base: BaseStats) -> None:
        with transaction(self.engine) as conn:
            conn.execute(insert(base_t).values(computed_at=base.computed_at, body=base_to_json(base)))
            # Keep the newest few for the audit trail; older edges are never read.
            keep = select(base_t.c.id).order_by(base_t.c.id.desc()).limit(5).scalar_subquery()
            conn.execute(delete(base_t).where(base_t.c.id.not_in(keep)))

    def find_portrait(self, customer_id: str) -> tuple[int, StoredPortrait | None, bool] | None:
        """(key, stored portrait or None, whether it is stale); None for an unknown customer."""
        with self.engine.connect() as conn:
            row = conn.execute(select(customers_t).where(customers_t.c.customer_id == customer_id)).first()
            if row is None:
                return None
            body = conn.execute(select(portraits_t.c.body).where(portraits_t.c.customer_key == row.key)).scalar()
            stale = conn.execute(select(dirty_t.c.marked).where(dirty_t.c.customer_key == row.key).limit(1)).scalar() is not None
            stored = None
            if body is not None:
                stored = StoredPortrait(portrait_from_json(body), row.region, row.time_zone, self._consents_of(conn, row.key))
            return row.key, stored, stale

    def customer_extras(self, key: int) -> tuple[str, str, list[Consent]]:
        with self.engine.connect() as conn:
            row = conn.execute(select(customers_t.c.region, customers_t.c.time_zone).where(customers_t.c.key == key)).first()
            region, zone = (row.region, row.time_zone) if row else ("", "")
            return region, zone, self._consents_of(conn, key)

    def export_portraits(self, since_revision: int, since_key: int, limit: int) -> list[tuple[int, int, StoredPortrait]]:
        """Portraits changed after (revision, key), oldest change first: (revision, key, portrait)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(portraits_t.c.revision, portraits_t.c.customer_key, portraits_t.c.body,
                       customers_t.c.region, customers_t.c.time_zone)
                .join(customers_t, customers_t.c.key == portraits_t.c.customer_key)
                .where((portraits_t.c.revision > since_revision)
                       | ((portraits_t.c.revision == since_revision) & (portraits_t.c.customer_key > since_key)))
                .order_by(portraits_t.c.revision, portraits_t.c.customer_key)
                .limit(limit)
            ).all()
            consents: dict[int, list[Consent]] = defaultdict(list)
            for part in _chunks([r.customer_key for r in rows]):
                for c in conn.execute(select(consents_t).where(consents_t.c.customer_key.in_(part))):
                    consents[c.customer_key].append(Consent(ContactChannel(c.channel), c.granted, c.changed_at))
        return [(r.revision, r.customer_key, StoredPortrait(portrait_from_json(r.body), r.region, r.time_zone,
                                                             consents[r.customer_key])) for r in rows]

    def export_interactions(self, since_seq: int, limit: int) -> list[InteractionRow]:
        """Customer events with items (views, carts, orders, refunds) after the sequence number."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(events_t, customers_t.c.customer_id)
                .join(customers_t, customers_t.c.key == events_t.c.customer_key)
                .where(events_t.c.seq > since_seq, events_t.c.type != EventType.SEARCH.value)
                .order_by(events_t.c.seq)
                .limit(limit)
            ).all()
        return [InteractionRow(r.seq, r.customer_id, _event_from_row(r, r.customer_id)) for r in rows]

    def summary(self) -> BaseSummary:
        with self.engine.connect() as conn:
            customers = conn.execute(select(func.count()).select_from(customers_t)).scalar_one()
            events = conn.execute(select(func.count()).select_from(events_t)).scalar_one()
            with_orders, orders = conn.execute(
                select(func.count(), func.coalesce(func.sum(portraits_t.c.frequency), 0))
                .where(portraits_t.c.frequency > 0)
            ).one()
            # Net revenue counts refund-only customers too (orders placed before the data began).
            revenue = conn.execute(select(func.coalesce(func.sum(portraits_t.c.monetary_minor), 0))).scalar_one()
            currency = conn.execute(
                select(portraits_t.c.currency).where(portraits_t.c.currency != "")
                .group_by(portraits_t.c.currency).order_by(func.count().desc()).limit(1)
            ).scalar() or ""
            segments = {name: int(n) for name, n in conn.execute(
                select(portraits_t.c.rfm_segment, func.count()).where(portraits_t.c.rfm_segment != "")
                .group_by(portraits_t.c.rfm_segment))}
            stages = {name: int(n) for name, n in conn.execute(
                select(portraits_t.c.lifecycle_stage, func.count()).group_by(portraits_t.c.lifecycle_stage))}
            base_at = conn.execute(select(base_t.c.computed_at).order_by(base_t.c.id.desc()).limit(1)).scalar()
            pending = conn.execute(select(func.count(dirty_t.c.customer_key.distinct()))).scalar_one()
        return BaseSummary(int(customers), int(with_orders), int(orders), int(events), int(revenue), currency,
                           segments, stages, base_at, int(pending))

    # ---- erasure ----

    def erase(self, customer_id: str, now: datetime) -> tuple[bool, int]:
        """Deletes the customer, their events, links, consent and portrait; leaves a tombstone."""
        with transaction(self.engine) as conn:
            self._key_cache.pop(customer_id, None)
            key = self._keys_for(conn, [customer_id]).get(customer_id)
            if key is None:
                return False, 0
            anonymous = list(conn.execute(select(links_t.c.anonymous_id).where(links_t.c.customer_key == key)).scalars())
            deleted = conn.execute(delete(events_t).where(events_t.c.customer_key == key)).rowcount or 0
            for part in _chunks(anonymous):
                deleted += conn.execute(delete(events_t).where(events_t.c.anonymous_id.in_(part))).rowcount or 0
            for table, column in ((links_t, links_t.c.customer_key), (consents_t, consents_t.c.customer_key),
                                  (portraits_t, portraits_t.c.customer_key), (dirty_t, dirty_t.c.customer_key)):
                deleted += conn.execute(delete(table).where(column == key)).rowcount or 0
            deleted += conn.execute(delete(customers_t).where(customers_t.c.key == key)).rowcount or 0
            bulk_insert(conn, tombstones_t, [{"id_hash": self._id_hash(conn, customer_id), "erased_at": now}],
                        skip_existing=True)
            return True, int(deleted)
