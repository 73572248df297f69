"""Every query of the recommend service: the catalogue, model versions and the serving pointer, tombstones."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.common.db import bulk_insert, member_of, transaction, upsert_statement
from services.common.errors import FailedPrecondition, NotFound
from services.common.locks import advisory_lock, nobody_holds
from services.common.migrate import upgrade_to_head
from services.common.tombstones import TombstoneHasher
from services.recommend.catalogue import SOURCE_CATALOGUE, SOURCE_EVENTS, Item
from services.recommend.models import CustomerFeaturesRow, ItemRow, MetaRow, ModelVersionRow, TombstoneRow

MIGRATIONS = Path(__file__).parent / "migrations"
SERVING_KEY = "serving_version"
# A new random value each time the platform changes items: replicas compare it to apply stock and hidden flags.
CATALOGUE_KEY = "catalogue_marker"
TRAINING_LOCK = "recommend:training"
# Rows per statement: member_of binds one parameter whatever the size; this bounds memory per batch.
CHUNK = 5000

TRAINING = "training"
SERVING = "serving"
REJECTED = "rejected"
FAILED = "failed"
SUPERSEDED = "superseded"
STATES = (TRAINING, SERVING, REJECTED, FAILED, SUPERSEDED)

features_t = CustomerFeaturesRow.__table__  # type: ignore[attr-defined]
items_t = ItemRow.__table__  # type: ignore[attr-defined]
versions_t = ModelVersionRow.__table__  # type: ignore[attr-defined]
tombstones_t = TombstoneRow.__table__  # type: ignore[attr-defined]
meta_t = MetaRow.__table__  # type: ignore[attr-defined]

FEATURE_COLUMNS = ("customer_id", "rfm_segment", "region", "price_band", "updated_at")
ITEM_COLUMNS = ("sku", "category", "brand", "price_minor", "currency", "price_band", "in_stock", "tags", "source",
                "updated_at", "hidden")


@dataclass(frozen=True, slots=True)
class CustomerFeatures:
    customer_id: str
    rfm_segment: str = ""
    region: str = ""
    price_band: str = ""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: int
    state: str
    reason: str
    forced: bool
    params: dict[str, Any]
    cutoff: datetime | None
    train_until_cutoff: bool
    interactions: int
    customers: int
    items: int
    started_at: datetime
    finished_at: datetime | None
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Changes:
    """What other processes changed, as replicas poll it: compared whole with the previous poll."""

    serving_version: int | None
    erasures: int
    newest_erasure: datetime | None
    catalogue: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a training run ended, written in one transaction with the serving switch when `serve`."""

    state: str
    reason: str
    interactions: int = 0
    customers: int = 0
    items: int = 0
    seconds: float = 0.0
    metrics: Mapping[str, Any] = field(default_factory=dict)


def _item(row: Any) -> Item:
    return Item(row.sku, row.category, row.brand, int(row.price_minor), row.currency, bool(row.in_stock),
                tuple(orjson.loads(row.tags)), row.price_band, row.source, row.updated_at, bool(row.hidden))


def _version(row: Any) -> ModelVersion:
    return ModelVersion(
        int(row.version), row.state, row.reason, bool(row.forced), orjson.loads(row.params), row.cutoff,
        bool(row.train_until_cutoff), int(row.interactions), int(row.customers), int(row.items), row.started_at,
        row.finished_at, float(row.seconds), orjson.loads(row.metrics),
    )


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RecommendStore:
    """The recommend database; every write is one transaction, so a crash never leaves half of it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tombstones = TombstoneHasher(meta_t)

    def migrate(self) -> None:
        upgrade_to_head(MIGRATIONS, self.engine)

    # ---- the catalogue ----

    def _rows(self, items: Sequence[Item], source: str, now: datetime) -> list[tuple[Any, ...]]:
        return [(i.sku, i.category, i.brand, i.price_minor, i.currency, i.price_band, i.in_stock,
                 orjson.dumps(list(i.tags)).decode(), source, now, i.hidden) for i in items]

    def _existing(self, conn: Connection, skus: Sequence[str]) -> dict[str, str]:
        """SKU -> price band of those already stored."""
        found: dict[str, str] = {}
        for part in _chunks(skus):
            rows = conn.execute(select(items_t.c.sku, items_t.c.price_band)
                                .where(member_of(items_t.c.sku, part, conn.dialect)))
            found.update((str(sku), str(band)) for sku, band in rows)
        return found

    def upsert_items(self, items: Sequence[Item], now: datetime) -> set[str]:
        """Stores the platform's items (the last of a SKU given twice wins), replacing what was stored,
        an item first seen in events included; returns the SKUs that were new. A stored price band stays
        until the next training recomputes the bands."""
        latest = list({i.sku: i for i in items}.values())
        skus = [i.sku for i in latest]
        with transaction(self.engine) as conn:
            bands = self._existing(conn, skus)
            kept = [Item(i.sku, i.category, i.brand, i.price_minor, i.currency, i.in_stock, i.tags,
                         bands.get(i.sku, ""), SOURCE_CATALOGUE, hidden=i.hidden) for i in latest]
            for part in _chunks(list(bands)):
                conn.execute(delete(items_t).where(member_of(items_t.c.sku, part, conn.dialect)))
            for part in _chunks(kept):
                bulk_insert(conn, items_t, self._rows(part, SOURCE_CATALOGUE, now), columns=ITEM_COLUMNS)
            conn.execute(self._upsert_meta(conn), [{"key": CATALOGUE_KEY, "value": secrets.token_hex(8)}])
        return set(skus) - set(bands)

    def item_flags(self) -> tuple[dict[str, bool], dict[str, bool]]:
        """Every item's in-stock and hidden flags (a replica applies them when another changed the catalogue)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(items_t.c.sku, items_t.c.in_stock, items_t.c.hidden)).all()
        return {r[0]: bool(r[1]) for r in rows}, {r[0]: bool(r[2]) for r in rows}

    def add_event_items(self, items: Sequence[Item], now: datetime) -> int:
        """Creates the items seen only in events and refreshes those created that way before; an item the
        platform sent is never touched. Returns how many rows were written."""
        latest = list({i.sku: i for i in items}.values())
        written = 0
        with transaction(self.engine) as conn:
            for part in _chunks(latest):
                skus = [i.sku for i in part]
                conn.execute(delete(items_t).where(items_t.c.source == SOURCE_EVENTS,
                                                   member_of(items_t.c.sku, skus, conn.dialect)))
                written += bulk_insert(conn, items_t, self._rows(part, SOURCE_EVENTS, now), columns=ITEM_COLUMNS,
                                       skip_existing=True)
        return written

    def get_item(self, sku: str) -> Item | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(items_t).where(items_t.c.sku == sku)).first()
        return _item(row) if row else None

    def items(self) -> list[Item]:
        """The whole catalogue, by SKU."""
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(select(items_t).order_by(items_t.c.sku))]

    def count_items(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(items_t)).scalar_one())

    def set_price_bands(self, bands: Mapping[str, str]) -> None:
        """Writes recomputed bands (SKU -> "p1".."p5"); SKUs missing from `bands` get none ("")."""
        by_band: dict[str, list[str]] = {}
        for sku, band in bands.items():
            by_band.setdefault(band, []).append(sku)
        with transaction(self.engine) as conn:
            conn.execute(update(items_t).where(items_t.c.price_band != "").values(price_band=""))
            for band, skus in by_band.items():
                for part in _chunks(skus):
                    conn.execute(update(items_t).where(member_of(items_t.c.sku, part, conn.dialect))
                                 .values(price_band=band))

    # ---- customer features ----

    def replace_customer_features(self, features: Sequence[CustomerFeatures], now: datetime) -> None:
        """The features of every customer as of this training, in place of the previous ones."""
        rows = [(f.customer_id, f.rfm_segment, f.region, f.price_band, now)
                for f in {f.customer_id: f for f in features}.values()]
        with transaction(self.engine) as conn:
            conn.execute(delete(features_t))
            for part in _chunks(rows):
                bulk_insert(conn, features_t, part, columns=FEATURE_COLUMNS)

    def customer_features(self) -> dict[str, CustomerFeatures]:
        with self.engine.connect() as conn:
            return {r.customer_id: CustomerFeatures(r.customer_id, r.rfm_segment, r.region, r.price_band)
                    for r in conn.execute(select(features_t))}

    # ---- model versions ----

    def start_version(self, params: Mapping[str, Any], cutoff: datetime | None, train_until_cutoff: bool,
                      forced: bool, now: datetime) -> int:
        """Records a run in state "training"; FailedPrecondition while another run is in that state."""
        with transaction(self.engine) as conn:
            running = conn.execute(select(versions_t.c.version).where(versions_t.c.state == TRAINING)).scalar()
            if running is not None:
                raise FailedPrecondition(f"model version {running} is training now; wait for it to finish")
            return int(conn.execute(insert(versions_t).values(
                state=TRAINING, reason="", forced=forced, params=orjson.dumps(dict(params)).decode(),
                cutoff=cutoff, train_until_cutoff=train_until_cutoff, interactions=0, customers=0, items=0,
                started_at=now, seconds=0.0, metrics="{}",
            ).returning(versions_t.c.version)).scalar_one())

    def finish_version(self, version: int, outcome: Outcome, now: datetime, *, serve: bool) -> None:
        """Records how the run ended; with `serve`, in the same transaction the version becomes the serving
        one and the previous serving version is superseded (callers never see two, or none by mistake)."""
        values = {"state": SERVING if serve else outcome.state, "reason": outcome.reason,
                  "interactions": outcome.interactions, "customers": outcome.customers, "items": outcome.items,
                  "seconds": outcome.seconds, "metrics": orjson.dumps(dict(outcome.metrics)).decode(),
                  "finished_at": now}
        with transaction(self.engine) as conn:
            changed = conn.execute(update(versions_t).where(versions_t.c.version == version,
                                                            versions_t.c.state == TRAINING).values(**values))
            if changed.rowcount != 1:
                raise FailedPrecondition(f"model version {version} is not training")
            if serve:
                previous = self._serving(conn)
                if previous is not None:
                    conn.execute(update(versions_t).where(versions_t.c.version == previous)
                                 .values(state=SUPERSEDED))
                conn.execute(self._upsert_meta(conn), [{"key": SERVING_KEY, "value": str(version)}])

    def training_lock(self) -> AbstractContextManager[None]:
        """Held by the process that trains, for the whole run (PostgreSQL): a replica starting meanwhile sees
        that the run it finds "training" is alive."""
        return advisory_lock(self.engine, TRAINING_LOCK)

    def fail_interrupted(self, now: datetime) -> list[int]:
        """Marks runs left "training" by a stopped process as failed; returns their versions. A run whose
        process still holds the training lock (another replica, alive) is left alone."""
        with transaction(self.engine) as conn:
            if not nobody_holds(conn, TRAINING_LOCK):
                return []
            stale = list(conn.execute(select(versions_t.c.version).where(versions_t.c.state == TRAINING)).scalars())
            if stale:
                conn.execute(update(versions_t).where(versions_t.c.state == TRAINING).values(
                    state=FAILED, reason="interrupted: the service stopped while it was training", finished_at=now))
        return [int(v) for v in stale]

    def _serving(self, conn: Connection) -> int | None:
        value = conn.execute(select(meta_t.c.value).where(meta_t.c.key == SERVING_KEY)).scalar()
        return None if value is None else int(value)

    def serving_version(self) -> int | None:
        with self.engine.connect() as conn:
            return self._serving(conn)

    def changes(self) -> Changes:
        """What replicas poll (two small reads): the serving version, the number and newest time of the
        erasures, and the catalogue's marker, so a replica sees another process's promotion, erasure or items."""
        with self.engine.connect() as conn:
            erasures, newest = conn.execute(select(func.count(), func.max(tombstones_t.c.erased_at))).one()
            meta = {str(row[0]): str(row[1]) for row in conn.execute(select(meta_t.c.key, meta_t.c.value).where(
                meta_t.c.key.in_([SERVING_KEY, CATALOGUE_KEY])))}
        serving = meta.get(SERVING_KEY)
        return Changes(None if serving is None else int(serving), int(erasures), newest, meta.get(CATALOGUE_KEY, ""))

    def get_version(self, version: int) -> ModelVersion:
        with self.engine.connect() as conn:
            row = conn.execute(select(versions_t).where(versions_t.c.version == version)).first()
        if row is None:
            raise NotFound(f"there is no model version {version}")
        return _version(row)

    def list_versions(self, limit: int = 100) -> list[ModelVersion]:
        """The newest `limit` versions, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions_t).order_by(versions_t.c.version.desc()).limit(limit))
            return [_version(r) for r in rows]

    def versions_in(self, states: Sequence[str]) -> list[int]:
        with self.engine.connect() as conn:
            query = select(versions_t.c.version).where(versions_t.c.state.in_(states)).order_by(versions_t.c.version)
            return [int(v) for v in conn.execute(query).scalars()]

    # ---- erasure ----

    def _upsert_meta(self, conn: Connection) -> Any:
        return upsert_statement(conn.dialect, meta_t, ["key"])

    def erase_customer(self, customer_id: str, now: datetime) -> int:
        """Deletes the customer's features and leaves a tombstone, so a training run that read their data
        before now drops them; returns the rows deleted."""
        with transaction(self.engine) as conn:
            deleted = conn.execute(delete(features_t).where(features_t.c.customer_id == customer_id)).rowcount
            stmt = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(tombstones_t)
            conn.execute(stmt.on_conflict_do_update(index_elements=["id_hash"], set_={"erased_at": now}),
                         [{"id_hash": self._tombstones.hash(conn, customer_id), "erased_at": now}])
        return int(deleted)

    def erased_among(self, customer_ids: Iterable[str]) -> set[str]:
        """The ids among these that were erased here."""
        with self.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(tombstones_t)).scalar_one() == 0:
                return set()
            by_hash = {self._tombstones.hash(conn, c): c for c in customer_ids}
            found: set[str] = set()
            for part in _chunks(list(by_hash)):
                found.update(by_hash[h] for h in conn.execute(
                    select(tombstones_t.c.id_hash).where(member_of(tombstones_t.c.id_hash, part, conn.dialect))
                ).scalars())
        return found
