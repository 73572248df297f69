"""Every query of the campaign service: campaigns, partners, the delivery outbox (claims, leases, outcomes), erasure."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    Engine,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from services.campaign import spec as specs
from services.campaign.attribution import Recipient
from services.campaign.models import (
    AttributionRow,
    CampaignRow,
    DeliveryRow,
    MetaRow,
    PartnerRow,
    TombstoneRow,
)
from services.campaign.states import Action, State, after
from services.common.db import bulk_insert, copy_rows, member_of, transaction
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound
from services.common.migrate import upgrade_to_head
from services.common.tombstones import TombstoneHasher

MIGRATIONS = Path(__file__).parent / "migrations"
# Deliveries are written in slices of this many rows inside the launch's one transaction.
INSERT_CHUNK = 50_000

campaigns_t = CampaignRow.__table__  # type: ignore[attr-defined]
partners_t = PartnerRow.__table__  # type: ignore[attr-defined]
deliveries_t = DeliveryRow.__table__  # type: ignore[attr-defined]
tombstones_t = TombstoneRow.__table__  # type: ignore[attr-defined]
attributions_t = AttributionRow.__table__  # type: ignore[attr-defined]
meta_t = MetaRow.__table__  # type: ignore[attr-defined]

PENDING, QUEUED, SENT, FAILED, DEAD, SKIPPED, HOLDOUT = "pending", "queued", "sent", "failed", "dead", "skipped", "holdout"
DELIVERY_STATES = (PENDING, QUEUED, SENT, FAILED, DEAD, SKIPPED, HOLDOUT)
RECEIPT_COLUMNS = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at",
                   "unsubscribed": "unsubscribed_at"}
# Who holds a queued row that a pull partner leased.
PARTNER_LEASE = "partner"


@dataclass(frozen=True, slots=True)
class Counts:
    targeted: int = 0
    holdout: int = 0
    pending: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    id: int
    spec: specs.Spec
    state: State
    audience_version: int
    spent_minor: int
    created_at: datetime
    launched_at: datetime | None
    finished_at: datetime | None
    counts: Counts | None = None


@dataclass(frozen=True, slots=True)
class PartnerInfo:
    id: int
    name: str
    endpoint: str
    secret: str
    rate_limit_per_s: int
    batch_size: int
    mode: str
    channel: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewPartner:
    name: str
    endpoint: str
    secret: str
    api_key_hash: str
    rate_limit_per_s: int
    batch_size: int
    mode: str
    channel: str


# The dispatch path's records are NamedTuples: a frozen dataclass's __init__ (object.__setattr__ per field) was a
# twentieth of the dispatcher's CPU at hundreds of rows per batch.
class Claimed(NamedTuple):
    """A pending delivery a worker holds until its lease ends."""

    id: int
    campaign_id: int
    customer_id: str
    key: str
    attempts: int
    # Why it was last put back (e.g. "quiet_hours"); empty for a fresh row.
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Leased:
    """A queued delivery a pull partner took: its key and the message to send."""

    id: int
    key: str
    payload: str


@dataclass(frozen=True, slots=True)
class KeyedDelivery:
    """What the partner API needs of a delivery found by its idempotency key."""

    id: int
    partner_id: int | None
    customer_id: str
    channel: str
    state: str
    # receipt event -> when it was stamped (None: not yet)
    receipts: dict[str, datetime | None]


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    id: int
    campaign_id: int
    customer_id: str
    key: str
    state: str
    channel: str
    partner: str
    attempts: int
    reason: str
    next_attempt_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    unsubscribed_at: datetime | None
    cost_minor: int


class Reserved(NamedTuple):
    """A delivery about to be sent: its channel, partner, what it costs, and the message (pull partners)."""

    id: int
    channel: str
    partner_id: int
    cost_minor: int
    payload: str | None = None


class Outcome(NamedTuple):
    """What became of a sent delivery: sent, failed (refused for good), dead, or retry at `retry_at`."""

    id: int
    state: str
    reason: str = ""
    retry_at: datetime | None = None


def _usual(conn: Connection, condition: ColumnElement[bool]) -> ColumnElement[bool]:
    """`likely(condition)` on SQLite. Without table statistics its planner answers a lookup by a list of ids or
    customers through the state index instead, reading every pending (or sent) row for each batch, so dispatch
    slowed down as the queue grew; the hint makes it look the listed rows up by key. PostgreSQL has statistics."""
    return func.likely(condition) if conn.dialect.name == "sqlite" else condition


def _campaign(row: Any, counts: Counts | None = None) -> CampaignInfo:
    return CampaignInfo(row.id, specs.from_json(row.spec), State(row.state), row.audience_version,
                        int(row.spent_minor), row.created_at, row.launched_at, row.finished_at, counts)


def _partner(row: Any) -> PartnerInfo:
    return PartnerInfo(row.id, row.name, row.endpoint, row.secret, row.rate_limit_per_s, row.batch_size,
                       row.mode, row.channel, row.created_at)


class CampaignStore:
    """The campaign database; every method is one transaction, so a crash never leaves half a write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tombstones = TombstoneHasher(meta_t)

    def migrate(self) -> None:
        upgrade_to_head(MIGRATIONS, self.engine)

    @property
    def postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _lock(self, conn: Connection, campaign_id: int) -> Any:
        """The campaign row, locked until the transaction ends (PostgreSQL; SQLite has one writer anyway)."""
        query = select(campaigns_t).where(campaigns_t.c.id == campaign_id)
        row = conn.execute(query.with_for_update() if self.postgres else query).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return row

    # ---- campaigns ----

    def create_campaign(self, spec: specs.Spec, now: datetime) -> CampaignInfo:
        with transaction(self.engine) as conn:
            new_id = conn.execute(insert(campaigns_t).returning(campaigns_t.c.id), [self._spec_values(spec) | {
                "state": State.DRAFT.value, "spent_minor": 0, "audience_version": 0, "created_at": now,
            }]).scalar_one()
            return _campaign(self._lock(conn, new_id))

    @staticmethod
    def _spec_values(spec: specs.Spec) -> dict[str, Any]:
        return {"name": spec.name, "spec": specs.to_json(spec), "currency": spec.currency,
                "budget_minor": -1 if spec.budget_minor is None else spec.budget_minor,
                "segment": spec.segment, "start_at": spec.start_at}

    def update_campaign(self, campaign_id: int, spec: specs.Spec) -> CampaignInfo:
        with transaction(self.engine) as conn:
            row = self._lock(conn, campaign_id)
            if row.state != State.DRAFT:
                raise FailedPrecondition(f"campaign {campaign_id} is {row.state}; only a draft can be changed")
            conn.execute(update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(self._spec_values(spec)))
            return _campaign(self._lock(conn, campaign_id))

    def delete_campaign(self, campaign_id: int) -> None:
        with transaction(self.engine) as conn:
            row = self._lock(conn, campaign_id)
            if row.state != State.DRAFT:
                raise FailedPrecondition(f"campaign {campaign_id} is {row.state}; only a draft can be deleted "
                                         "(cancel it instead)")
            conn.execute(delete(campaigns_t).where(campaigns_t.c.id == campaign_id))

    def get_campaign(self, campaign_id: int, *, counts: bool = True) -> CampaignInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns_t).where(campaigns_t.c.id == campaign_id)).first()
            if row is None:
                raise NotFound(f"campaign {campaign_id} not found")
            return _campaign(row, self._counts(conn, [campaign_id]).get(campaign_id, Counts()) if counts else None)

    def list_campaigns(self, state: State | None = None) -> list[CampaignInfo]:
        with self.engine.connect() as conn:
            query = select(campaigns_t).order_by(campaigns_t.c.id)
            if state is not None:
                query = query.where(campaigns_t.c.state == state.value)
            rows = conn.execute(query).all()
            counts = self._counts(conn, [r.id for r in rows]) if rows else {}
            return [_campaign(r, counts.get(r.id, Counts())) for r in rows]

    def _counts(self, conn: Connection, campaign_ids: Sequence[int]) -> dict[int, Counts]:
        d = deliveries_t.c

        def of_state(name: str) -> Any:
            return func.sum(case((d.state == name, 1), else_=0))

        def stamped(column: Any) -> Any:
            return func.count(column)

        query = (select(d.campaign_id, func.count(), *(of_state(s) for s in DELIVERY_STATES),
                        stamped(d.delivered_at), stamped(d.opened_at), stamped(d.clicked_at),
                        stamped(d.unsubscribed_at))
                 .where(member_of(d.campaign_id, campaign_ids, conn.dialect)).group_by(d.campaign_id))
        result: dict[int, Counts] = {}
        for row in conn.execute(query):
            total, pending, queued, sent, failed, dead, skipped, holdout = (int(v or 0) for v in row[1:9])
            delivered, opened, clicked, unsubscribed = (int(v or 0) for v in row[9:13])
            result[row[0]] = Counts(total - holdout, holdout, pending, queued, sent, failed, dead, skipped,
                                    delivered, opened, clicked, unsubscribed)
        return result

    def launch(self, campaign_id: int, version: int, audience: Sequence[tuple[str, bool]], now: datetime,
               ready_at: datetime, start_ahead: bool, spec: specs.Spec | None = None) -> CampaignInfo:
        """Writes one delivery per (customer, in holdout) and moves the campaign on, in ONE transaction.

        The campaign row is locked and must still be a draft, so a second launch fails instead of adding
        rows, and the unique (campaign, customer) key stops duplicates even in a racing transaction. Erased
        customers are left out. `spec`, when given, replaces the stored one (what launch attaches to it).
        """
        with transaction(self.engine) as conn:
            row = self._lock(conn, campaign_id)
            state = after(Action.LAUNCH, State(row.state), start_ahead=start_ahead)
            erased = self._erased(conn, [customer for customer, _ in audience])
            members = [(customer, holdout) for customer, holdout in dict(audience).items() if customer not in erased]
            noise = secrets.token_hex(6 * len(members))
            # Keys ascend within a launch (campaign, position), so their unique index grows at its end
            # instead of taking random inserts (a third of the launch's time with uuid4 keys); the random
            # tail keeps them unique across databases, and no key carries the customer's id.
            rows = [(campaign_id, customer, f"{campaign_id}-{i:08x}-{noise[12 * i : 12 * i + 12]}",
                     HOLDOUT if holdout else PENDING, "", 0, ready_at, "", "", 0)
                    for i, (customer, holdout) in enumerate(members)]
            columns = ("campaign_id", "customer_id", "idempotency_key", "state", "channel", "attempts",
                       "next_attempt_at", "lease_owner", "reason", "cost_minor")
            for start in range(0, len(rows), INSERT_CHUNK):
                if self.postgres:
                    # COPY: the locked draft row means no delivery of this campaign exists yet, so nothing can
                    # conflict (were one to, the launch would fail whole). 2-4x executemany's rows a second.
                    copy_rows(conn, deliveries_t, rows[start : start + INSERT_CHUNK], columns)
                else:
                    bulk_insert(conn, deliveries_t, rows[start : start + INSERT_CHUNK], columns=columns,
                                skip_existing=True)
            frozen = {} if spec is None else {"spec": specs.to_json(spec)}
            conn.execute(update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(
                state=state.value, audience_version=version, launched_at=now, **frozen))
            return _campaign(self._lock(conn, campaign_id))

    def transition(self, campaign_id: int, action: Action, now: datetime, *, start_ahead: bool = False) -> CampaignInfo:
        """Pause, resume or cancel; a cancel skips every unsent delivery ("cancelled") in the same transaction."""
        with transaction(self.engine) as conn:
            row = self._lock(conn, campaign_id)
            state = after(action, State(row.state), start_ahead=start_ahead)
            values: dict[str, Any] = {"state": state.value}
            if state is State.CANCELLED:
                values["finished_at"] = now
                d = deliveries_t.c
                refund = conn.execute(select(func.coalesce(func.sum(d.cost_minor), 0)).where(
                    d.campaign_id == campaign_id, d.state.in_([PENDING, QUEUED]))).scalar_one()
                conn.execute(update(deliveries_t).where(d.campaign_id == campaign_id, d.state.in_([PENDING, QUEUED]))
                             .values(state=SKIPPED, reason="cancelled", payload=None, cost_minor=0, lease_owner="",
                                     lease_until=None))
                values["spent_minor"] = campaigns_t.c.spent_minor - int(refund)
            conn.execute(update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(values))
            return _campaign(self._lock(conn, campaign_id))

    def start_due(self, now: datetime) -> list[int]:
        """Scheduled campaigns whose start has come become running; returns their ids."""
        c = campaigns_t.c
        with transaction(self.engine) as conn:
            return [r[0] for r in conn.execute(
                update(campaigns_t).where(c.state == State.SCHEDULED.value, c.start_at <= now)
                .values(state=State.RUNNING.value).returning(c.id))]

    def complete_settled(self, now: datetime) -> list[int]:
        """Running campaigns without a delivery left to send become completed; returns their ids."""
        c, d = campaigns_t.c, deliveries_t.c
        open_rows = exists().where(d.campaign_id == c.id, d.state.in_([PENDING, QUEUED]))
        with transaction(self.engine) as conn:
            return [r[0] for r in conn.execute(
                update(campaigns_t).where(c.state == State.RUNNING.value, c.launched_at.is_not(None), ~open_rows)
                .values(state=State.COMPLETED.value, finished_at=now).returning(c.id))]

    def specs_of(self, campaign_ids: Iterable[int]) -> dict[int, tuple[specs.Spec, str]]:
        """The spec and state of each campaign."""
        ids = sorted(set(campaign_ids))
        with self.engine.connect() as conn:
            rows = conn.execute(select(campaigns_t.c.id, campaigns_t.c.spec, campaigns_t.c.state)
                                .where(member_of(campaigns_t.c.id, ids, conn.dialect)))
            return {r.id: (specs.from_json(r.spec), r.state) for r in rows}

    # ---- partners ----

    def add_partner(self, partner: NewPartner, now: datetime) -> PartnerInfo:
        try:
            with transaction(self.engine) as conn:
                conn.execute(insert(partners_t), [_fields(partner) | {"created_at": now}])
                return _partner(conn.execute(select(partners_t).where(partners_t.c.name == partner.name)).one())
        except IntegrityError:
            raise AlreadyExists(f"a partner named {partner.name!r} exists") from None

    def partner(self, name: str) -> PartnerInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(partners_t).where(partners_t.c.name == name)).first()
        if row is None:
            raise NotFound(f"there is no partner named {name!r}")
        return _partner(row)

    def partner_by_key(self, api_key_hash: str) -> PartnerInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(partners_t).where(partners_t.c.api_key_hash == api_key_hash)).first()
        return None if row is None else _partner(row)

    def partners(self) -> list[PartnerInfo]:
        with self.engine.connect() as conn:
            return [_partner(r) for r in conn.execute(select(partners_t).order_by(partners_t.c.name))]

    def set_partner_key(self, name: str, api_key_hash: str) -> None:
        with transaction(self.engine) as conn:
            done = conn.execute(update(partners_t).where(partners_t.c.name == name)
                                .values(api_key_hash=api_key_hash)).rowcount
        if not done:
            raise NotFound(f"there is no partner named {name!r}")

    # ---- dispatch: claim, reserve, record ----

    def claim(self, owner: str, wall_now: datetime, lease_until: datetime, limit: int) -> list[Claimed]:
        """Takes up to `limit` due pending deliveries of running campaigns, oldest first, and leases them to
        `owner` until `lease_until`. On PostgreSQL rows another worker is claiming are skipped (SKIP LOCKED),
        so workers never take the same row; a lease that ran out (a killed worker) makes the row due again."""
        d, c = deliveries_t.c, campaigns_t.c
        due = (select(d.id).join(campaigns_t, c.id == d.campaign_id)
               .where(d.state == PENDING, d.next_attempt_at <= wall_now,
                      or_(d.lease_until.is_(None), d.lease_until < wall_now), c.state == State.RUNNING.value)
               # Due time only, no id tie-break: the (state, next_attempt_at) index gives that order, so PostgreSQL
               # reads the first `limit` rows of it. With the id it read and sorted every pending row on each claim
               # (a launch gives them one due time): 160 ms a claim at 100,000 rows, against 1.6 ms.
               .order_by(d.next_attempt_at).limit(limit))
        if self.postgres:
            due = due.with_for_update(of=deliveries_t, skip_locked=True)
        with transaction(self.engine) as conn:
            # A CTE, evaluated once: as an IN (subquery) PostgreSQL may plan the locking subquery as a
            # subplan run per row, and its LIMIT then no longer bounds the claim.
            taken = due.cte("due")
            rows = conn.execute(update(deliveries_t).where(d.id == taken.c.id)
                                .values(lease_owner=owner, lease_until=lease_until)
                                .returning(d.id, d.campaign_id, d.customer_id, d.idempotency_key, d.attempts,
                                           d.reason)).all()
        return sorted((Claimed(*r) for r in rows), key=lambda r: r.id)

    def sent_since(self, customer_ids: Sequence[str], since: datetime) -> dict[str, int]:
        """Messages sent (or queued for a pull partner) to each customer since `since`, by any campaign."""
        d = deliveries_t.c
        with self.engine.connect() as conn:
            query = (select(d.customer_id, func.count()).where(
                member_of(d.customer_id, customer_ids, conn.dialect),
                or_(and_(_usual(conn, d.state == SENT), d.sent_at >= since), _usual(conn, d.state == QUEUED)))
                .group_by(d.customer_id))
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    def _held(self, conn: Connection, owner: str, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """id -> (campaign id, reserved cost) of the rows among `ids` that `owner` still holds, locked until
        the transaction ends (a row whose lease ran out belongs to whoever claimed it next)."""
        d = deliveries_t.c
        query = select(d.id, d.campaign_id, d.cost_minor).where(
            member_of(d.id, ids, conn.dialect), _usual(conn, d.state == PENDING), d.lease_owner == owner)
        if self.postgres:
            query = query.with_for_update()
        return {r[0]: (r[1], int(r[2])) for r in conn.execute(query)}

    def settle(self, owner: str, *, skipped: Mapping[int, str], deferred: Mapping[int, tuple[datetime, str]],
               reserved: Sequence[Reserved], budgets: Mapping[int, int]) -> tuple[list[Reserved], list[int]]:
        """Records the send-time decisions of one claimed batch in one transaction: skipped rows (reason),
        deferred rows (due again at a time, reason), and rows about to be sent. A row to be sent reserves its
        cost from its campaign's budget (`budgets`: campaign -> limit, -1 none; rows that no longer fit are
        skipped as budget_spent), counts an attempt and keeps its lease; a pull partner's row becomes
        queued with its message. Returns the reserved rows and the ids skipped for the budget."""
        d, c = deliveries_t.c, campaigns_t.c
        ids = [*skipped, *deferred, *(r.id for r in reserved)]
        kept: list[Reserved] = []
        over_budget: list[int] = []
        with transaction(self.engine) as conn:
            held = self._held(conn, owner, ids)
            by_campaign: dict[int, list[Reserved]] = {}
            # Net change of each campaign's spend, written last: another worker's settle waits on that row lock only
            # for this transaction's commit, not for its row updates (on PostgreSQL, 2 workers of one campaign).
            spend: dict[int, int] = {}
            for item in reserved:
                if item.id in held:
                    by_campaign.setdefault(held[item.id][0], []).append(item)
            for campaign_id, items in sorted(by_campaign.items()):
                budget = budgets.get(campaign_id, -1)
                # Without a budget nothing is compared, and the UPDATE at the end adds atomically: no locking read.
                spent = int(self._lock(conn, campaign_id).spent_minor) if budget >= 0 else 0
                added = 0
                for item in items:
                    # A row reserved before (its worker died before recording) already counts its cost.
                    extra = item.cost_minor - held[item.id][1]
                    if budget >= 0 and spent + added + extra > budget:
                        over_budget.append(item.id)
                    else:
                        added += extra
                        kept.append(item)
                spend[campaign_id] = added
            for delivery_id in over_budget:
                campaign_id, cost = held[delivery_id]
                spend[campaign_id] = spend.get(campaign_id, 0) - cost
            final = [{"b_id": i, "b_state": SKIPPED, "b_reason": r} for i, r in skipped.items() if i in held]
            final += [{"b_id": i, "b_state": SKIPPED, "b_reason": "budget_spent"} for i in over_budget]
            if final:
                conn.execute(update(deliveries_t).where(d.id == bindparam("b_id")).values(
                    state=bindparam("b_state"), reason=bindparam("b_reason"), cost_minor=0, lease_owner="",
                    lease_until=None), final)
            later = [{"b_id": i, "b_when": w, "b_reason": r} for i, (w, r) in deferred.items() if i in held]
            if later:
                conn.execute(update(deliveries_t).where(d.id == bindparam("b_id")).values(
                    next_attempt_at=bindparam("b_when"), reason=bindparam("b_reason"), cost_minor=0,
                    lease_owner="", lease_until=None), later)
            # One UPDATE per (channel, partner, cost), usually one per campaign route: a row-by-row executemany
            # was the largest part of a batch's time on PostgreSQL.
            pushed: dict[tuple[str, int, int], list[int]] = {}
            for r in kept:
                if r.payload is None:
                    pushed.setdefault((r.channel, r.partner_id, r.cost_minor), []).append(r.id)
            for (channel, partner_id, cost), pushed_ids in pushed.items():
                conn.execute(update(deliveries_t).where(member_of(d.id, pushed_ids, conn.dialect)).values(
                    channel=channel, partner_id=partner_id, cost_minor=cost, attempts=d.attempts + 1, reason=""))
            queued = [{"b_id": r.id, "b_channel": r.channel, "b_partner": r.partner_id, "b_cost": r.cost_minor,
                       "b_payload": r.payload} for r in kept if r.payload is not None]
            if queued:
                conn.execute(update(deliveries_t).where(d.id == bindparam("b_id")).values(
                    state=QUEUED, channel=bindparam("b_channel"), partner_id=bindparam("b_partner"),
                    cost_minor=bindparam("b_cost"), payload=bindparam("b_payload"), attempts=d.attempts + 1,
                    reason="", lease_owner="", lease_until=None), queued)
            for campaign_id, amount in sorted(spend.items()):
                if amount:
                    conn.execute(update(campaigns_t).where(c.id == campaign_id).values(spent_minor=c.spent_minor + amount))
        return kept, over_budget

    def record(self, owner: str, outcomes: Sequence[Outcome], now: datetime) -> int:
        """Records what the partner answered, in one transaction: sent rows get sent_at; failed, dead and
        retried rows give their cost back to the budget (they were no contact). Only rows `owner` still
        holds change. Returns the number of rows changed."""
        d, c = deliveries_t.c, campaigns_t.c
        with transaction(self.engine) as conn:
            # Sent rows (nearly all) are checked and marked in one statement; only the others are read first,
            # for the cost they give back.
            sent = [o.id for o in outcomes if o.state == SENT]
            marked = set(conn.execute(update(deliveries_t).where(
                member_of(d.id, sent, conn.dialect), _usual(conn, d.state == PENDING), d.lease_owner == owner)
                .values(state=SENT, sent_at=now, reason="", lease_owner="", lease_until=None)
                .returning(d.id)).scalars()) if sent else set()
            others = [o.id for o in outcomes if o.state != SENT]
            held = self._held(conn, owner, others) if others else {}
            mine = [o for o in outcomes if o.id in held or o.id in marked]
            retry = [{"b_id": o.id, "b_when": o.retry_at, "b_reason": o.reason} for o in mine if o.state == PENDING]
            if retry:
                conn.execute(update(deliveries_t).where(d.id == bindparam("b_id")).values(
                    next_attempt_at=bindparam("b_when"), reason=bindparam("b_reason"), cost_minor=0,
                    lease_owner="", lease_until=None), retry)
            final = [{"b_id": o.id, "b_state": o.state, "b_reason": o.reason} for o in mine
                     if o.state not in (SENT, PENDING)]
            if final:
                conn.execute(update(deliveries_t).where(d.id == bindparam("b_id")).values(
                    state=bindparam("b_state"), reason=bindparam("b_reason"), cost_minor=0, lease_owner="",
                    lease_until=None), final)
            refunds: dict[int, int] = {}
            for o in mine:
                if o.id in held:
                    campaign_id, cost = held[o.id]
                    refunds[campaign_id] = refunds.get(campaign_id, 0) + cost
            for campaign_id, amount in refunds.items():
                if amount:
                    conn.execute(update(campaigns_t).where(c.id == campaign_id).values(spent_minor=c.spent_minor - amount))
        return len(mine)

    def dispatch_lag_s(self, wall_now: datetime) -> float:
        """Age in seconds of the oldest due, unleased pending delivery of a running campaign (0 when none)."""
        d, c = deliveries_t.c, campaigns_t.c
        with self.engine.connect() as conn:
            oldest = conn.execute(select(func.min(d.next_attempt_at)).join(campaigns_t, c.id == d.campaign_id)
                                  .where(d.state == PENDING, d.next_attempt_at <= wall_now,
                                         or_(d.lease_until.is_(None), d.lease_until < wall_now),
                                         c.state == State.RUNNING.value)).scalar()
        if oldest is None:
            return 0.0
        return max(0.0, (wall_now - oldest).total_seconds())

    # ---- pull partners ----

    def lease(self, partner_id: int, limit: int, wall_now: datetime, lease_until: datetime) -> list[Leased]:
        """Up to `limit` of the partner's queued messages not leased now (or whose lease ran out), oldest
        first, leased until `lease_until`; PostgreSQL skips rows a concurrent lease is taking."""
        d = deliveries_t.c
        free = (select(d.id).where(d.partner_id == partner_id, d.state == QUEUED,
                                   or_(d.lease_until.is_(None), d.lease_until < wall_now))
                .order_by(d.id).limit(limit))
        if self.postgres:
            free = free.with_for_update(skip_locked=True)
        with transaction(self.engine) as conn:
            taken = free.cte("free")  # evaluated once (see claim)
            rows = conn.execute(update(deliveries_t).where(d.id == taken.c.id)
                                .values(lease_owner=PARTNER_LEASE, lease_until=lease_until)
                                .returning(d.id, d.idempotency_key, d.payload)).all()
        return sorted((Leased(r[0], r[1], r[2] or "{}") for r in rows), key=lambda r: r.id)

    def by_keys(self, keys: Sequence[str]) -> dict[str, KeyedDelivery]:
        d = deliveries_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.idempotency_key, d.id, d.partner_id, d.customer_id, d.channel, d.state,
                                       d.delivered_at, d.opened_at, d.clicked_at, d.unsubscribed_at)
                                .where(member_of(d.idempotency_key, keys, conn.dialect)))
            return {r[0]: KeyedDelivery(r[1], r[2], r[3], r[4], r[5], {
                "delivered": r[6], "opened": r[7], "clicked": r[8], "unsubscribed": r[9]}) for r in rows}

    def ack(self, partner_id: int, accepted: Sequence[int], rejected: Mapping[int, str], now: datetime) -> set[int]:
        """A pull partner's answers for queued rows it holds: accepted -> sent, rejected -> failed (cost given
        back). Returns the ids that changed (a row already answered is left as it is)."""
        d, c = deliveries_t.c, campaigns_t.c
        ids = [*accepted, *rejected]
        with transaction(self.engine) as conn:
            query = select(d.id, d.campaign_id, d.cost_minor).where(
                member_of(d.id, ids, conn.dialect), _usual(conn, d.state == QUEUED), _usual(conn, d.partner_id == partner_id))
            held = {r[0]: (r[1], int(r[2])) for r in conn.execute(query.with_for_update() if self.postgres else query)}
            sent = [i for i in accepted if i in held]
            if sent:
                conn.execute(update(deliveries_t).where(member_of(d.id, sent, conn.dialect)).values(
                    state=SENT, sent_at=now, payload=None, lease_owner="", lease_until=None))
            failed = [{"b_id": i, "b_reason": r} for i, r in rejected.items() if i in held]
            if failed:
                conn.execute(update(deliveries_t).where(d.id == bindparam("b_id")).values(
                    state=FAILED, reason=bindparam("b_reason"), payload=None, cost_minor=0, lease_owner="",
                    lease_until=None), failed)
            refunds: dict[int, int] = {}
            for i in rejected:
                if i in held:
                    refunds[held[i][0]] = refunds.get(held[i][0], 0) + held[i][1]
            for campaign_id, amount in refunds.items():
                if amount:
                    conn.execute(update(campaigns_t).where(c.id == campaign_id).values(spent_minor=c.spent_minor - amount))
        return set(held)

    def set_receipt(self, delivery_id: int, event: str, at: datetime) -> bool:
        """Stamps a receipt (delivered, opened, clicked, unsubscribed) once; False when it was stamped before."""
        column = deliveries_t.c[RECEIPT_COLUMNS[event]]
        with transaction(self.engine) as conn:
            return bool(conn.execute(update(deliveries_t).where(deliveries_t.c.id == delivery_id, column.is_(None))
                                     .values({column.name: at})).rowcount)

    # ---- reading deliveries ----

    def deliveries(self, campaign_id: int, state: str | None, after_id: int, limit: int) -> list[DeliveryInfo]:
        """A page of a campaign's deliveries by id, optionally of one state (dead letters: "dead")."""
        d, p = deliveries_t.c, partners_t.c
        with self.engine.connect() as conn:
            if conn.execute(select(campaigns_t.c.id).where(campaigns_t.c.id == campaign_id)).first() is None:
                raise NotFound(f"campaign {campaign_id} not found")
            query = (select(d.id, d.campaign_id, d.customer_id, d.idempotency_key, d.state, d.channel,
                            func.coalesce(p.name, ""), d.attempts, d.reason, d.next_attempt_at, d.sent_at,
                            d.delivered_at, d.opened_at, d.clicked_at, d.unsubscribed_at, d.cost_minor)
                     .select_from(deliveries_t.outerjoin(partners_t, p.id == d.partner_id))
                     .where(d.campaign_id == campaign_id, d.id > after_id).order_by(d.id).limit(limit))
            if state:
                query = query.where(d.state == state)
            return [DeliveryInfo(*row) for row in conn.execute(query)]  # type: ignore[call-arg]

    def recipients(self, campaign_id: int) -> list[Recipient]:
        """Every customer of a launched campaign with their group, send and delivery times and cost (reports)."""
        d = deliveries_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(d.customer_id, d.state, d.sent_at, d.delivered_at, d.cost_minor)
                                .where(d.campaign_id == campaign_id).order_by(d.id))
            return [Recipient(r[0], r[1] == HOLDOUT, r[2] if r[1] == SENT else None, r[3], int(r[4])) for r in rows]

    def record_attributions(self, campaign_id: int, responses: Sequence[tuple[str, int]], currency: str,
                            now: datetime) -> list[tuple[str, int]]:
        """Records targeted customers' responses (customer, revenue) not recorded before, and returns only those:
        each response is counted once whichever report, process or replica attributes it first."""
        a = attributions_t.c
        with transaction(self.engine) as conn:
            known = set(conn.execute(select(a.customer_id).where(a.campaign_id == campaign_id)).scalars())
            fresh = [{"campaign_id": campaign_id, "customer_id": customer, "revenue_minor": revenue,
                      "currency": currency, "attributed_at": now}
                     for customer, revenue in responses if customer not in known]
            if not fresh:
                return []
            stmt = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(attributions_t)
            added = conn.execute(stmt.on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
                                 .returning(a.customer_id, a.revenue_minor), fresh)
            return [(row[0], int(row[1])) for row in added]

    # ---- erasure ----

    def erase_customer(self, customer_id: str, now: datetime) -> int:
        """Anonymises the customer's deliveries (the counts of past campaigns stay right), drops any message
        waiting for a pull partner, and tombstones the id so no later launch targets it. Returns rows changed."""
        d = deliveries_t.c
        with transaction(self.engine) as conn:
            id_hash = self._tombstones.hash(conn, customer_id)
            existing = conn.execute(select(tombstones_t.c.id_hash).where(tombstones_t.c.id_hash == id_hash)).first()
            if existing is None:
                conn.execute(insert(tombstones_t), [{"id_hash": id_hash, "erased_at": now}])
            attributed = conn.execute(delete(attributions_t).where(attributions_t.c.customer_id == customer_id))
            # A pseudonym per row (its id) breaks the link between rows of the same person as well.
            return int(conn.execute(update(deliveries_t).where(d.customer_id == customer_id).values(
                customer_id=literal("erased-") + cast(d.id, String), payload=None)).rowcount) + int(attributed.rowcount)


    def _erased(self, conn: Connection, customer_ids: Sequence[str]) -> set[str]:
        if conn.execute(select(func.count()).select_from(tombstones_t)).scalar_one() == 0:
            return set()
        by_hash = {self._tombstones.hash(conn, customer): customer for customer in customer_ids}
        found = conn.execute(select(tombstones_t.c.id_hash).where(
            member_of(tombstones_t.c.id_hash, list(by_hash), conn.dialect))).scalars()
        return {by_hash[h] for h in found}


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}
