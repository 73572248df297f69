"""Every query of the gateway: API keys (verified with a short in-memory cache), pricing rule sets, quotes, redemptions."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from services.common import clock
from services.common.db import bulk_insert, is_sqlite, make_engine, member_of, transaction
from services.common.migrate import upgrade_to_head
from services.gateway.models import (
    ApiKey,
    QuoteRow,
    RedemptionRow,
    RedemptionRuleRow,
    RuleSetRow,
    RuleSpendRow,
)
from services.gateway.pricing import Usage
from services.gateway.pricing_rules import RuleSet, RuleSetIn

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
KEY_PREFIX = "mk_"
SCOPES = frozenset({"platform", "admin"})
# Refused keys are cached for less time than good ones, so a key created a moment ago works soon.
NEGATIVE_TTL_S = 5.0
MAX_CACHE_ENTRIES = 10_000

Scopes = frozenset[str]


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified key: its name (what rate limits and logs know it by, never the key) and its scopes."""

    name: str
    scopes: Scopes


def new_key() -> str:
    """`mk_` plus 32 URL-safe characters (192 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


class KeyStore:
    """API keys in the gateway's database; only sha256 hashes are stored."""

    def __init__(self, engine: Engine, *, cache_ttl_s: float = 30.0) -> None:
        self.engine = engine
        self.cache_ttl_s = cache_ttl_s
        # key hash -> (monotonic expiry, the key or None for a refused key)
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, database_url: str, *, cache_ttl_s: float = 30.0) -> KeyStore:
        """Connects and applies the gateway's migrations."""
        engine = make_engine(database_url)
        upgrade_to_head(MIGRATIONS, engine)
        return cls(engine, cache_ttl_s=cache_ttl_s)

    def close(self) -> None:
        self.engine.dispose()

    def create_key(self, name: str, scopes: list[str] | tuple[str, ...] | frozenset[str]) -> str:
        """Stores a new key and returns its plaintext (the only time it is visible)."""
        wanted = sorted(set(scopes))
        unknown = set(wanted) - SCOPES
        if not wanted or unknown:
            raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}; got {wanted}")
        plaintext = new_key()
        with Session(self.engine) as session:
            session.add(
                ApiKey(name=name, key_hash=hash_key(plaintext), scopes=",".join(wanted), created_at=clock.now())
            )
            session.commit()
        return plaintext

    def cached(self, plaintext: str) -> tuple[bool, Scopes | None]:
        """(hit, scopes) from the cache alone."""
        hit, found = self.cached_principal(plaintext)
        return hit, None if found is None else found.scopes

    def cached_principal(self, plaintext: str) -> tuple[bool, Principal | None]:
        """(hit, key) from the cache alone: lets the async path skip the database entirely."""
        entry = self._cache.get(hash_key(plaintext))
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def verify(self, plaintext: str) -> Scopes | None:
        """The key's scopes, or None for an unknown or revoked key; answers from the cache when fresh."""
        found = self.principal(plaintext)
        return None if found is None else found.scopes

    def principal(self, plaintext: str) -> Principal | None:
        """The key's name and scopes, or None for an unknown or revoked key; from the cache when fresh."""
        digest = hash_key(plaintext)
        entry = self._cache.get(digest)
        now = time.monotonic()
        if entry is not None and entry[0] >= now:
            return entry[1]
        found = self._lookup(digest) if plaintext.startswith(KEY_PREFIX) else None
        ttl = self.cache_ttl_s if found is not None else min(NEGATIVE_TTL_S, self.cache_ttl_s)
        with self._lock:
            if len(self._cache) >= MAX_CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (now + ttl, found)
        return found

    def _lookup(self, digest: str) -> Principal | None:
        query = select(col(ApiKey.name), col(ApiKey.scopes)).where(
            col(ApiKey.key_hash) == digest, col(ApiKey.revoked_at).is_(None))
        with self.engine.connect() as connection:
            found = connection.execute(query).first()
        return None if found is None else Principal(found.name, frozenset(s for s in found.scopes.split(",") if s))

    def revoke(self, plaintext: str) -> bool:
        """Revokes a key; True when it existed and was active. Takes effect at once in this process."""
        digest = hash_key(plaintext)
        query = (
            update(ApiKey)
            .where(col(ApiKey.key_hash) == digest, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=clock.now())
        )
        with self.engine.begin() as connection:
            changed = connection.execute(query).rowcount
        with self._lock:
            self._cache.pop(digest, None)
        return bool(changed)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(ApiKey)).scalar_one())

    def ensure_bootstrap_keys(self, path: Path) -> dict[str, str] | None:
        """On the first start (no keys at all): creates an admin and a platform key, writes them to
        `path` (mode 0600) as `name=key` lines and returns them; on later starts returns None."""
        if self.count() > 0:
            return None
        keys = {"admin": self.create_key("admin", ["admin"]), "platform": self.create_key("platform", ["platform"])}
        lines = [f"# Marksman gateway API keys, created {clock.now().isoformat()}; keep this file secret."]
        lines += [f"{name}={key}" for name, key in keys.items()]
        write_secret_file(path, "\n".join(lines) + "\n")
        return keys


def write_secret_file(path: Path, text: str) -> None:
    """Writes a file readable by its owner only, never briefly wider (the mode is set at creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


# ---- pricing ----

rule_sets_t = RuleSetRow.__table__  # type: ignore[attr-defined]
quotes_t = QuoteRow.__table__  # type: ignore[attr-defined]
redemptions_t = RedemptionRow.__table__  # type: ignore[attr-defined]
redemption_rules_t = RedemptionRuleRow.__table__  # type: ignore[attr-defined]
spend_t = RuleSpendRow.__table__  # type: ignore[attr-defined]
QUOTE_COLUMNS = ("quote_id", "customer_id", "rule_set_version", "created_at", "expires_at", "discounts", "body")


@dataclass(frozen=True, slots=True)
class NewQuote:
    quote_id: str
    customer_id: str | None
    rule_set_version: int
    created_at: datetime
    expires_at: datetime
    discounts: Sequence[tuple[str, int]]  # (rule id, discount minor) over the whole quote
    body: bytes  # the answer as given, JSON

    def row(self) -> tuple[Any, ...]:
        return (self.quote_id, self.customer_id, self.rule_set_version, self.created_at, self.expires_at,
                orjson.dumps(self.discounts).decode(), self.body.decode())


@dataclass(frozen=True, slots=True)
class StoredQuote:
    quote_id: str
    customer_id: str | None
    rule_set_version: int
    created_at: datetime
    expires_at: datetime
    body: str


@dataclass(frozen=True, slots=True)
class Redemption:
    """An accepted order event naming a quote."""

    event_id: str
    quote_id: str
    redeemed_at: datetime


class RedeemStatus:
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # this event was recorded before
    UNKNOWN_QUOTE = "unknown_quote"
    ALREADY_REDEEMED = "already_redeemed"  # another event redeemed the quote first


class PricingStore:
    """Rule-set versions, quotes and redemptions in the gateway's database (one transaction per write)."""

    def __init__(self, engine: Engine, *, current_ttl_s: float = 1.0) -> None:
        self.engine = engine
        self.current_ttl_s = current_ttl_s
        # A SQLite read of a few indexed rows (WAL: never blocked by a writer) takes less CPU than the hop
        # to a worker thread; PostgreSQL's network round trip must not hold the event loop.
        self.inline_reads = is_sqlite(engine)
        # Versions never change, so each is parsed once; the current one is re-checked every
        # current_ttl_s, so a version saved through another gateway process is used within that time.
        self._versions: dict[int, RuleSet] = {}
        self._current: tuple[float, RuleSet | None] = (0.0, None)

    def save_rule_set(self, spec: RuleSetIn, now: datetime) -> RuleSet:
        """Stores `spec` as the next version and makes it current here at once."""
        body = spec.model_dump_json()
        for attempt in range(3):
            try:
                with transaction(self.engine) as conn:
                    latest = conn.execute(select(func.max(rule_sets_t.c.version))).scalar()
                    version = int(latest or 0) + 1
                    conn.execute(insert(rule_sets_t).values(version=version, body=body, created_at=now))
                break
            except IntegrityError:  # another process saved the same version number first
                if attempt == 2:
                    raise
        saved = RuleSet(version, spec, now)
        self._versions[version] = saved
        self._current = (time.monotonic() + self.current_ttl_s, saved)
        return saved

    def current_rule_set(self) -> RuleSet | None:
        expires, cached = self._current
        if expires > time.monotonic():
            return cached
        with self.engine.connect() as conn:
            latest = conn.execute(select(func.max(rule_sets_t.c.version))).scalar()
        found = self.rule_set(int(latest)) if latest is not None else None
        self._current = (time.monotonic() + self.current_ttl_s, found)
        return found

    def rule_set(self, version: int) -> RuleSet | None:
        cached = self._versions.get(version)
        if cached is not None:
            return cached
        with self.engine.connect() as conn:
            row = conn.execute(select(rule_sets_t).where(rule_sets_t.c.version == version)).first()
        if row is None:
            return None
        found = RuleSet(row.version, RuleSetIn.model_validate_json(row.body), clock.as_utc(row.created_at))
        self._versions[version] = found
        return found

    def save_quotes(self, quotes: Sequence[NewQuote]) -> None:
        with transaction(self.engine) as conn:
            bulk_insert(conn, quotes_t, [q.row() for q in quotes], columns=QUOTE_COLUMNS)

    def quote(self, quote_id: str) -> StoredQuote | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(quotes_t).where(quotes_t.c.quote_id == quote_id)).first()
        if row is None:
            return None
        return StoredQuote(row.quote_id, row.customer_id, row.rule_set_version, clock.as_utc(row.created_at),
                           clock.as_utc(row.expires_at), row.body)

    def usage(self, customer_id: str | None, rule_ids: Sequence[str]) -> Usage:
        """The customer's redeemed uses of each rule and each rule's total discount redeemed."""
        if not rule_ids:
            return Usage()
        # Every quote with a limited offer asks this: one round trip of plain SQL (SQLAlchemy Core's
        # statement building took ~10x the query's own time here).
        sql = _usage_sql(self.engine.dialect.paramstyle, len(rule_ids))
        spent: dict[str, int] = {}
        uses: dict[str, int] = {}
        with self.engine.connect() as conn:
            for source, rule_id, value in conn.exec_driver_sql(sql, (*rule_ids, customer_id or "", *rule_ids)):
                (spent if source == "s" else uses)[rule_id] = int(value)
        return Usage(customer_uses=uses, budget_spent=spent)

    def redeem(self, redemptions: Sequence[Redemption]) -> dict[str, str]:
        """Records the redemptions in one transaction; event id -> RedeemStatus. Idempotent by event id."""
        if not redemptions:
            return {}
        try:
            return self._redeem(redemptions)
        except IntegrityError:  # another gateway process recorded some of them at the same moment
            return self._redeem(redemptions)

    def _redeem(self, redemptions: Sequence[Redemption]) -> dict[str, str]:
        outcome: dict[str, str] = {}
        with transaction(self.engine) as conn:
            dialect = conn.dialect
            event_ids = list(dict.fromkeys(r.event_id for r in redemptions))
            recorded = set(conn.execute(select(redemptions_t.c.event_id).where(
                member_of(redemptions_t.c.event_id, event_ids, dialect))).scalars())
            quote_ids = list({r.quote_id for r in redemptions})
            quotes = {row.quote_id: row for row in conn.execute(
                select(quotes_t.c.quote_id, quotes_t.c.customer_id, quotes_t.c.rule_set_version, quotes_t.c.discounts)
                .where(member_of(quotes_t.c.quote_id, quote_ids, dialect)))}
            taken = set(conn.execute(select(redemptions_t.c.quote_id).where(
                member_of(redemptions_t.c.quote_id, quote_ids, dialect))).scalars())
            rows: list[dict[str, Any]] = []
            rule_rows: list[dict[str, Any]] = []
            spend: dict[str, list[int]] = {}
            for item in redemptions:
                if item.event_id in outcome:
                    continue
                if item.event_id in recorded:
                    outcome[item.event_id] = RedeemStatus.DUPLICATE
                    continue
                quote = quotes.get(item.quote_id)
                if quote is None:
                    outcome[item.event_id] = RedeemStatus.UNKNOWN_QUOTE
                    continue
                if item.quote_id in taken:
                    outcome[item.event_id] = RedeemStatus.ALREADY_REDEEMED
                    continue
                taken.add(item.quote_id)
                outcome[item.event_id] = RedeemStatus.RECORDED
                rows.append({"event_id": item.event_id, "quote_id": item.quote_id, "customer_id": quote.customer_id,
                             "rule_set_version": quote.rule_set_version, "redeemed_at": item.redeemed_at})
                for rule_id, amount in orjson.loads(quote.discounts):
                    rule_rows.append({"event_id": item.event_id, "rule_id": rule_id,
                                      "customer_id": quote.customer_id, "discount_minor": amount})
                    totals = spend.setdefault(rule_id, [0, 0])
                    totals[0] += amount
                    totals[1] += 1
            bulk_insert(conn, redemptions_t, rows)
            bulk_insert(conn, redemption_rules_t, rule_rows)
            if spend:
                _add_spend(conn, [{"rule_id": k, "discount_minor": v[0], "redemptions": v[1]} for k, v in spend.items()])
        return outcome

    def erase(self, customer_id: str) -> int:
        """Deletes the customer's quotes; their redemptions stay (budgets count them) without the customer id."""
        with transaction(self.engine) as conn:
            deleted = conn.execute(delete(quotes_t).where(quotes_t.c.customer_id == customer_id)).rowcount or 0
            for table in (redemptions_t, redemption_rules_t):
                deleted += conn.execute(
                    update(table).where(table.c.customer_id == customer_id).values(customer_id=None)).rowcount or 0
        return int(deleted)


@functools.cache
def _usage_sql(paramstyle: str, count: int) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    ids = ", ".join([mark] * count)
    return (f"SELECT 's', rule_id, discount_minor FROM {spend_t.name} WHERE rule_id IN ({ids}) "
            f"UNION ALL SELECT 'u', rule_id, count(*) FROM {redemption_rules_t.name} "
            f"WHERE customer_id = {mark} AND rule_id IN ({ids}) GROUP BY rule_id")


def _add_spend(conn: Connection, rows: list[dict[str, Any]]) -> None:
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = module.insert(spend_t)
    statement = statement.on_conflict_do_update(
        index_elements=[spend_t.c.rule_id],
        set_={"discount_minor": spend_t.c.discount_minor + statement.excluded.discount_minor,
              "redemptions": spend_t.c.redemptions + statement.excluded.redemptions},
    )
    conn.execute(statement, rows)
