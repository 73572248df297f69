"""Every query of the segment service: the portrait cache, segments, membership versions, predictive models, erasure."""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.common.db import transaction, upsert_statement
from services.common.errors import AlreadyExists, FailedPrecondition
from services.common.migrate import upgrade_to_head
from services.common.tombstones import TombstoneHasher
from services.segment.audiences import ModelAudience
from services.segment.frame import COLUMNS
from services.segment.models import (
    MemberRow,
    MetaRow,
    ModelVersionRow,
    PortraitRow,
    SegmentRow,
    TombstoneRow,
    VersionRow,
)
from services.segment.predict_metrics import Quality
from services.segment.traits import ID_COLUMN, KEY_COLUMN

MIGRATIONS = Path(__file__).parent / "migrations"
# SQLite allows 32,766 bound parameters; IN lists stay well below that.
IN_CHUNK = 900
# Members are written in slices of this many rows (a failure in any slice rolls back the version).
MEMBER_CHUNK = 250_000
CURSOR_KEY = "portrait_cursor"
# Segment kinds as stored.
KIND_RULE = "rule"
KIND_MODEL = "model"

portraits_t = PortraitRow.__table__  # type: ignore[attr-defined]
segments_t = SegmentRow.__table__  # type: ignore[attr-defined]
versions_t = VersionRow.__table__  # type: ignore[attr-defined]
members_t = MemberRow.__table__  # type: ignore[attr-defined]
tombstones_t = TombstoneRow.__table__  # type: ignore[attr-defined]
meta_t = MetaRow.__table__  # type: ignore[attr-defined]
models_t = ModelVersionRow.__table__  # type: ignore[attr-defined]
# Every model column but the fitted estimator itself: listings never read the BLOBs.
MODEL_INFO_COLUMNS = [c for c in models_t.columns if c.name != "model"]

# Cached columns besides the key: what a synced portrait row carries.
PORTRAIT_FIELDS: tuple[str, ...] = (*(c for c in COLUMNS if c != KEY_COLUMN), "computed_at", "synced_at")


@dataclass(frozen=True, slots=True)
class VersionInfo:
    id: int
    segment_id: int
    number: int
    size: int
    portraits: int
    seconds: float
    rule: str
    created_at: datetime
    # The model version a model audience was scored with.
    model_version: int | None = None


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    id: int
    name: str
    kind: str
    rule: str
    description: str
    built_in: bool
    created_at: datetime
    current: VersionInfo | None
    model: ModelAudience | None = None


@dataclass(frozen=True, slots=True)
class NewSegment:
    name: str
    kind: str
    rule: str
    description: str = ""
    built_in: bool = False
    model: ModelAudience | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A stored model of a goal without its fitted estimator (see ModelVersionRow for the fields)."""

    goal: str
    version: int
    trained_at: datetime
    horizon_days: int
    seed_segment: str
    seed_version: int
    parameters: str
    lines: int
    customers: int
    train_size: int
    train_base_rate: float
    fit_seconds: float
    seconds: float
    quality: Quality
    evaluation: str
    features: tuple[str, ...]


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@lru_cache(maxsize=4096)
def _sqlite_value(value: datetime | None) -> str | None:
    """A time as SQLAlchemy's UTCDateTime stores it on SQLite (naive UTC text), so reads parse it back."""
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _version(row: Any) -> VersionInfo:
    return VersionInfo(row.id, row.segment_id, row.number, int(row.size), int(row.portraits), float(row.seconds),
                       row.rule, row.created_at, row.model_version)


def _audience(row: Any) -> ModelAudience | None:
    if row.kind != KIND_MODEL:
        return None
    return ModelAudience(row.goal, None if row.top_k is None else int(row.top_k),
                         None if row.threshold is None else float(row.threshold))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _model(row: Any) -> ModelInfo:
    quality = Quality(_nan(row.auc), _nan(row.auc_se), _nan(row.top_decile_lift), _nan(row.base_rate),
                      int(row.positives), int(row.held_out), bool(row.better_than_chance))
    return ModelInfo(row.goal, row.version, row.trained_at, row.horizon_days, row.seed_segment, row.seed_version,
                     row.parameters, int(row.lines), int(row.customers), int(row.train_size),
                     float(row.train_base_rate), float(row.fit_seconds), float(row.seconds), quality, row.evaluation,
                     tuple(orjson.loads(row.features)))


class SegmentStore:
    """The segment database; every method is one transaction, so a crash never leaves half a write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tombstones = TombstoneHasher(meta_t)

    def migrate(self) -> None:
        upgrade_to_head(MIGRATIONS, self.engine)

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def _upsert(self, table: Any, keys: list[str]) -> Any:
        return upsert_statement(self.engine.dialect, table, keys)

    # ---- service state ----

    def _meta(self, conn: Connection, key: str) -> str | None:
        value = conn.execute(select(meta_t.c.value).where(meta_t.c.key == key)).scalar()
        return None if value is None else str(value)

    def _set_meta(self, conn: Connection, key: str, value: str) -> None:
        conn.execute(self._upsert(meta_t, ["key"]), [{"key": key, "value": value}])

    def cursor(self) -> str:
        """Where the last portrait sync stopped ("" before the first)."""
        with self.engine.connect() as conn:
            return self._meta(conn, CURSOR_KEY) or ""

    # ---- tombstones ----

    def _id_hash(self, conn: Connection, customer_id: str) -> str:
        return self._tombstones.hash(conn, customer_id)

    def _erased_before(self, conn: Connection, records: Sequence[Mapping[str, Any]]) -> set[str]:
        """Ids of records computed no later than their customer's erasure (a sync that raced the erasure)."""
        if conn.execute(select(func.count()).select_from(tombstones_t)).scalar_one() == 0:
            return set()
        by_hash = {self._id_hash(conn, r[ID_COLUMN]): r for r in records}
        stale: set[str] = set()
        for part in _chunks(list(by_hash)):
            for id_hash, erased_at in conn.execute(
                select(tombstones_t.c.id_hash, tombstones_t.c.erased_at).where(tombstones_t.c.id_hash.in_(part))
            ):
                record = by_hash[id_hash]
                computed = record.get("computed_at")
                if computed is None or computed <= erased_at:
                    stale.add(record[ID_COLUMN])
        return stale

    # ---- the portrait cache ----

    def upsert_portraits(self, records: Sequence[Mapping[str, Any]],
                         cursor: str | None = None) -> list[tuple[Any, ...]]:
        """Caches the portraits and moves the sync cursor, in one transaction; returns the cached rows
        with their keys, as tuples in the frame's COLUMNS order. Portraits computed before their
        customer was erased here are dropped."""
        with transaction(self.engine) as conn:
            stale = self._erased_before(conn, records)
            # One row per customer (the last wins): PostgreSQL refuses to upsert a row twice in a statement.
            rows = list({r[ID_COLUMN]: r for r in records if r[ID_COLUMN] not in stale}.values())
            keys = self._write_portraits(conn, rows) if rows else {}
            if cursor is not None:
                self._set_meta(conn, CURSOR_KEY, cursor)
        values = operator.itemgetter(*COLUMNS[1:])
        return [(keys[r[ID_COLUMN]], *values(r)) for r in rows]

    def _write_portraits(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Upserts the rows; returns the key of each customer id."""
        # Through the driver: SQLAlchemy's per-value processing took most of the time. The SQL is
        # built from the fixed column names only; every value is a bound parameter or COPY data.
        columns = ", ".join(PORTRAIT_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in PORTRAIT_FIELDS if c != ID_COLUMN)
        upsert = f"ON CONFLICT (customer_id) DO UPDATE SET {updates}"
        values = operator.itemgetter(*PORTRAIT_FIELDS)
        if self._postgres:
            # psycopg sends aware datetimes as they are.
            return self._copy_portraits(conn, columns, upsert, [values(row) for row in rows])
        dates = [PORTRAIT_FIELDS.index(c) for c in ("computed_at", "synced_at")]
        converted = []
        for row in rows:
            value = list(values(row))
            for i in dates:
                value[i] = _sqlite_value(value[i])
            converted.append(tuple(value))
        marks = ", ".join(["?"] * len(PORTRAIT_FIELDS))
        conn.exec_driver_sql(f"INSERT INTO portraits ({columns}) VALUES ({marks}) {upsert}", converted)
        # sqlite3's executemany cannot return rows, so the keys are read back.
        keys: dict[str, int] = {}
        for part in _chunks([row[ID_COLUMN] for row in rows]):
            keys.update((cid, key) for cid, key in conn.execute(
                select(portraits_t.c.customer_id, portraits_t.c.key).where(portraits_t.c.customer_id.in_(part))))
        return keys

    @staticmethod
    def _copy_portraits(conn: Connection, columns: str, upsert: str, values: list[tuple[Any, ...]]) -> dict[str, int]:
        """COPY into a scratch table, then one INSERT ... SELECT ... RETURNING the keys: about twice
        executemany's rate."""
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE portraits_in ON COMMIT DROP AS SELECT {columns} FROM portraits "
                           "WITH NO DATA")
            with cursor.copy(f"COPY portraits_in ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
            cursor.execute(f"INSERT INTO portraits ({columns}) SELECT {columns} FROM portraits_in {upsert} "
                           "RETURNING customer_id, key")
            keys = {str(cid): int(key) for cid, key in cursor.fetchall()}
            cursor.execute("DROP TABLE portraits_in")
        return keys

    def reset_cursor(self) -> None:
        with transaction(self.engine) as conn:
            conn.execute(delete(meta_t).where(meta_t.c.key == CURSOR_KEY))

    def load_portraits(self) -> list[tuple[Any, ...]]:
        """Every cached portrait, as a tuple in the frame's COLUMNS order."""
        # Plain driver rows: pd.read_sql (per-row processing, then per-cell type inference) took
        # three times as long for a million portraits.
        with self.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM portraits")
                return list(cursor.fetchall())
            finally:
                cursor.close()

    def portrait_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(portraits_t)).scalar_one())

    # ---- segments ----

    def create_segment(self, segment: NewSegment, now: datetime) -> SegmentInfo:
        try:
            with transaction(self.engine) as conn:
                model = segment.model
                conn.execute(insert(segments_t).values(
                    name=segment.name, kind=segment.kind, rule=segment.rule, description=segment.description,
                    built_in=segment.built_in, created_at=now, goal=model.goal if model else None,
                    top_k=model.top_k if model else None, threshold=model.threshold if model else None))
        except IntegrityError:
            raise AlreadyExists(f"a segment named '{segment.name}' exists already") from None
        found = self.get_segment(segment.name)
        assert found is not None
        return found

    def ensure_segments(self, segments: Sequence[NewSegment], now: datetime) -> int:
        """Creates those that do not exist yet (by name); returns how many were created."""
        with transaction(self.engine) as conn:
            existing = set(conn.execute(select(segments_t.c.name)).scalars())
            fresh = [s for s in segments if s.name not in existing]
            if fresh:
                conn.execute((postgresql if self._postgres else sqlite).insert(segments_t).on_conflict_do_nothing(), [
                    {"name": s.name, "kind": s.kind, "rule": s.rule, "description": s.description,
                     "built_in": s.built_in, "created_at": now} for s in fresh])
        return len(fresh)

    def _current_versions(self, conn: Connection, segment_ids: Sequence[int] | None = None) -> dict[int, VersionInfo]:
        newest = select(versions_t.c.segment_id, func.max(versions_t.c.number).label("number")).group_by(
            versions_t.c.segment_id)
        if segment_ids is not None:
            newest = newest.where(versions_t.c.segment_id.in_(segment_ids))
        latest = newest.subquery()
        rows = conn.execute(select(versions_t).join(
            latest, (latest.c.segment_id == versions_t.c.segment_id) & (latest.c.number == versions_t.c.number)))
        return {row.segment_id: _version(row) for row in rows}

    def _segments(self, conn: Connection, where: Any = None) -> list[SegmentInfo]:
        query = select(segments_t).order_by(segments_t.c.name)
        if where is not None:
            query = query.where(where)
        rows = conn.execute(query).all()
        current = self._current_versions(conn, [r.id for r in rows]) if rows else {}
        return [SegmentInfo(r.id, r.name, r.kind, r.rule, r.description, r.built_in, r.created_at, current.get(r.id),
                            _audience(r))
                for r in rows]

    def get_segment(self, name: str) -> SegmentInfo | None:
        with self.engine.connect() as conn:
            found = self._segments(conn, segments_t.c.name == name)
        return found[0] if found else None

    def list_segments(self) -> list[SegmentInfo]:
        with self.engine.connect() as conn:
            return self._segments(conn)

    def segment_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(segments_t.c.name).order_by(segments_t.c.name)).scalars())

    def versions(self, segment_id: int) -> list[VersionInfo]:
        """Every retained version, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(versions_t).where(versions_t.c.segment_id == segment_id)
                                .order_by(versions_t.c.number.desc()))
            return [_version(r) for r in rows]

    def version(self, segment_id: int, number: int) -> VersionInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(versions_t).where(versions_t.c.segment_id == segment_id,
                                                        versions_t.c.number == number)).first()
        return _version(row) if row else None

    # ---- versions ----

    def write_version(self, segment_id: int, rule: str, member_keys: np.ndarray, portraits: int,
                      started: float, now: datetime, *, scores: np.ndarray | None = None,
                      model_version: int | None = None) -> VersionInfo:
        """Stores the members (with their scores, for a model audience) as the segment's next version,
        in one transaction: on any failure nothing is written and the previous version stays current.
        `started` (perf_counter) is when the evaluation began; the version records the time from then
        until its members are written."""
        keys, first = np.unique(np.asarray(member_keys, dtype="int64"), return_index=True)
        member_scores = None if scores is None else np.asarray(scores, dtype=float)[first]
        with transaction(self.engine) as conn:
            number = conn.execute(select(func.coalesce(func.max(versions_t.c.number), 0))
                                  .where(versions_t.c.segment_id == segment_id)).scalar_one() + 1
            try:
                version_id = conn.execute(insert(versions_t).values(
                    segment_id=segment_id, number=number, size=len(keys), portraits=portraits, seconds=0.0,
                    rule=rule, created_at=now, model_version=model_version).returning(versions_t.c.id)).scalar_one()
            except IntegrityError:
                # Another replica refreshed the same segment at the same moment and took the number.
                raise FailedPrecondition(f"version {number} of this segment was written by another refresh "
                                         "running at the same time; try again") from None
            self._write_members(conn, version_id, keys, member_scores)
            seconds = time.perf_counter() - started
            conn.execute(update(versions_t).where(versions_t.c.id == version_id).values(seconds=seconds))
        return VersionInfo(version_id, segment_id, number, len(keys), portraits, seconds, rule, now, model_version)

    def _write_members(self, conn: Connection, version_id: int, keys: np.ndarray, scores: np.ndarray | None) -> None:
        for start in range(0, len(keys), MEMBER_CHUNK):
            chunk = keys[start : start + MEMBER_CHUNK]
            part = None if scores is None else scores[start : start + MEMBER_CHUNK]
            if self._postgres:
                self._copy_members(conn, version_id, chunk, part)
            elif part is None:
                conn.exec_driver_sql("INSERT INTO segment_members (version_id, customer_key) VALUES (?, ?)",
                                     [(version_id, key) for key in chunk.tolist()])
            else:
                conn.exec_driver_sql(
                    "INSERT INTO segment_members (version_id, customer_key, score) VALUES (?, ?, ?)",
                    [(version_id, key, score) for key, score in zip(chunk.tolist(), part.tolist(), strict=True)])

    @staticmethod
    def _copy_members(conn: Connection, version_id: int, keys: np.ndarray, scores: np.ndarray | None) -> None:
        # COPY runs about six times faster than executemany on PostgreSQL (DESIGN.md section 7);
        # it goes through the same connection, so it is part of the version's transaction.
        prefix = f"{version_id}\t"
        rows = keys.astype(str).tolist()
        if scores is not None:
            # repr() of a float is exact, so the score read back is the score written.
            rows = [f"{key}\t{score!r}" for key, score in zip(rows, scores.tolist(), strict=True)]
        body = prefix + ("\n" + prefix).join(rows) + "\n"
        columns = "version_id, customer_key" if scores is None else "version_id, customer_key, score"
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(f"COPY segment_members ({columns}) FROM STDIN") as copy:
            copy.write(body)

    def prune_versions(self, segment_id: int, keep: int) -> int:
        """Deletes all but the newest `keep` versions of the segment; returns how many went."""
        with transaction(self.engine) as conn:
            old = list(conn.execute(select(versions_t.c.id).where(versions_t.c.segment_id == segment_id)
                                    .order_by(versions_t.c.number.desc()).offset(keep)).scalars())
            for part in _chunks(old):
                conn.execute(delete(members_t).where(members_t.c.version_id.in_(part)))
                conn.execute(delete(versions_t).where(versions_t.c.id.in_(part)))
        return len(old)

    def member_keys(self, version_id: int) -> np.ndarray:
        """The sorted keys of a version's members."""
        # Driver rows, as in load_portraits: a million members per in_segment() otherwise cost a second.
        # The id is an integer of ours, so it is written into the SQL rather than bound in each
        # driver's own parameter style.
        with self.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute("SELECT customer_key FROM segment_members "
                               f"WHERE version_id = {int(version_id)} ORDER BY customer_key")
                rows = cursor.fetchall()
            finally:
                cursor.close()
        return np.fromiter((row[0] for row in rows), dtype="int64", count=len(rows))

    def member_page(self, version_id: int, after_key: int, limit: int) -> list[tuple[int, str, float | None]]:
        """(key, customer id, score) of the version's members with keys above `after_key`, in key order;
        the score is None for a rule segment's members."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(members_t.c.customer_key, portraits_t.c.customer_id, members_t.c.score)
                .join(portraits_t, portraits_t.c.key == members_t.c.customer_key)
                .where(members_t.c.version_id == version_id, members_t.c.customer_key > after_key)
                .order_by(members_t.c.customer_key).limit(limit)
            ).all()
        return [(int(k), str(c), None if s is None else float(s)) for k, c, s in rows]

    def member_ids(self, version_id: int) -> list[str]:
        """The customer ids of a version's members."""
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(portraits_t.c.customer_id)
                .join(members_t, portraits_t.c.key == members_t.c.customer_key)
                .where(members_t.c.version_id == version_id)
            ).scalars())

    def customer_segments(self, customer_id: str) -> list[tuple[str, int]]:
        """(segment name, version number) of each segment whose current version holds the customer."""
        with self.engine.connect() as conn:
            key = conn.execute(select(portraits_t.c.key).where(portraits_t.c.customer_id == customer_id)).scalar()
            if key is None:
                return []
            current = self._current_versions(conn)
            by_version = {v.id: v for v in current.values()}
            held: set[int] = set()
            for part in _chunks(list(by_version)):
                held.update(conn.execute(select(members_t.c.version_id).where(
                    members_t.c.customer_key == key, members_t.c.version_id.in_(part))).scalars())
            names = {int(i): str(n) for i, n in conn.execute(select(segments_t.c.id, segments_t.c.name))}
        return sorted((names[by_version[v].segment_id], by_version[v].number) for v in held)

    # ---- predictive models ----

    def write_model(self, model: ModelInfo, data: bytes, digest: str) -> ModelInfo:
        """Stores the fitted model (skops bytes and their digest) as the goal's next version, in one
        transaction; returns it with its number (model.version is ignored)."""
        q = model.quality
        values = {
            "goal": model.goal, "trained_at": model.trained_at, "horizon_days": model.horizon_days,
            "seed_segment": model.seed_segment, "seed_version": model.seed_version, "parameters": model.parameters,
            "lines": model.lines, "customers": model.customers, "train_size": model.train_size,
            "train_base_rate": model.train_base_rate, "fit_seconds": model.fit_seconds, "seconds": model.seconds,
            "auc": _finite(q.auc), "auc_se": _finite(q.auc_se), "top_decile_lift": _finite(q.top_decile_lift),
            "base_rate": _finite(q.base_rate), "positives": q.positives, "held_out": q.size,
            "better_than_chance": q.better_than_chance, "evaluation": model.evaluation,
            "features": orjson.dumps(list(model.features)).decode(), "digest": digest, "model": data,
        }
        try:
            with transaction(self.engine) as conn:
                number = conn.execute(select(func.coalesce(func.max(models_t.c.version), 0))
                                      .where(models_t.c.goal == model.goal)).scalar_one() + 1
                conn.execute(insert(models_t).values(version=number, **values))
        except IntegrityError:
            raise FailedPrecondition(f"version {number} of the {model.goal} model was stored by another training "
                                     "running at the same time; try again") from None
        return replace(model, version=number)

    def current_models(self) -> dict[str, ModelInfo]:
        """The newest model of each goal that has one."""
        newest = select(models_t.c.goal, func.max(models_t.c.version).label("version")).group_by(
            models_t.c.goal).subquery()
        with self.engine.connect() as conn:
            rows = conn.execute(select(*MODEL_INFO_COLUMNS).join(
                newest, (newest.c.goal == models_t.c.goal) & (newest.c.version == models_t.c.version)))
            return {row.goal: _model(row) for row in rows}

    def current_model(self, goal: str) -> ModelInfo | None:
        """The goal's newest model, None before its first training."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*MODEL_INFO_COLUMNS).where(models_t.c.goal == goal)
                               .order_by(models_t.c.version.desc()).limit(1)).first()
        return None if row is None else _model(row)

    def model_versions(self, goal: str) -> list[ModelInfo]:
        """Every retained model of the goal, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(*MODEL_INFO_COLUMNS).where(models_t.c.goal == goal)
                                .order_by(models_t.c.version.desc()))
            return [_model(row) for row in rows]

    def model_data(self, goal: str, version: int) -> tuple[bytes, str] | None:
        """The fitted model's skops bytes and their stored digest."""
        with self.engine.connect() as conn:
            row = conn.execute(select(models_t.c.model, models_t.c.digest)
                               .where(models_t.c.goal == goal, models_t.c.version == version)).first()
        return None if row is None else (bytes(row.model), str(row.digest))

    def prune_models(self, goal: str, keep: int) -> int:
        """Deletes all but the newest `keep` models of the goal; returns how many went."""
        with transaction(self.engine) as conn:
            old = list(conn.execute(select(models_t.c.id).where(models_t.c.goal == goal)
                                    .order_by(models_t.c.version.desc()).offset(keep)).scalars())
            for part in _chunks(old):
                conn.execute(delete(models_t).where(models_t.c.id.in_(part)))
        return len(old)

    # ---- erasure ----

    def erase(self, customer_id: str, now: datetime) -> tuple[bool, int]:
        """Removes the customer from every version (the one change a version allows) and the cache,
        and leaves a tombstone so a portrait computed before now is not cached again."""
        with transaction(self.engine) as conn:
            conn.execute(self._upsert(tombstones_t, ["id_hash"]),
                         [{"id_hash": self._id_hash(conn, customer_id), "erased_at": now}])
            key = conn.execute(select(portraits_t.c.key).where(portraits_t.c.customer_id == customer_id)).scalar()
            if key is None:
                return False, 0
            version_ids = list(conn.execute(select(versions_t.c.id)).scalars())
            touched: list[int] = []
            for part in _chunks(version_ids):
                touched.extend(conn.execute(delete(members_t).where(
                    members_t.c.customer_key == key, members_t.c.version_id.in_(part)
                ).returning(members_t.c.version_id)).scalars())
            for part in _chunks(touched):
                conn.execute(update(versions_t).where(versions_t.c.id.in_(part)).values(size=versions_t.c.size - 1))
            conn.execute(delete(portraits_t).where(portraits_t.c.key == key))
        return True, len(touched) + 1

    def key_of(self, customer_id: str) -> int | None:
        with self.engine.connect() as conn:
            key = conn.execute(select(portraits_t.c.key).where(portraits_t.c.customer_id == customer_id)).scalar()
        return None if key is None else int(key)
