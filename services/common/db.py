"""Database engine and transactions: a SQLite file per service by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Engine,
    String,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine


def _normalize(url: str) -> str:
    # psycopg 3 is the PostgreSQL driver (DESIGN.md section 8); accept the plain scheme too.
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; NORMAL sync is still crash-safe in WAL mode.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = _normalize(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class _SqliteWriter:
    """One writer at a time on a SQLite file: threads queue on a lock, processes on a file lock.

    SQLite has a single writer, and a second writer that finds the database locked sleeps in its
    busy handler (1 ms, 2 ms, 5 ms ... up to 100 ms a try); blocking on a lock instead wakes the
    next writer the moment the first commits. Replicas of a service on one machine share the file.
    """

    def __init__(self, database: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._path = f"{database}.writer-lock" if database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._path is not None:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


_sqlite_writers: WeakKeyDictionary[Engine, _SqliteWriter] = WeakKeyDictionary()
_writers_guard = threading.Lock()


def _writer_lock(engine: Engine) -> _SqliteWriter | None:
    if not is_sqlite(engine):
        return None
    with _writers_guard:
        lock = _sqlite_writers.get(engine)
        if lock is None:
            lock = _sqlite_writers[engine] = _SqliteWriter(engine.url.database)
        return lock


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: committed when the block ends, rolled back on any error (nothing half-written).

    On SQLite, writers queue first (see _SqliteWriter).
    """
    lock = _writer_lock(engine)
    with lock if lock is not None else nullcontext(), engine.begin() as connection:
        yield connection


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    skip_existing: bool = False,
) -> int:
    """Inserts many rows with one driver-level executemany (the bulk path for events and deliveries).

    Rows are mappings, or tuples in the order of `columns`. The statement is compiled once and
    each value goes through the column type's own bind processor, so stored values are exactly
    what a Core insert() would store, without Core's per-row parameter compilation (about half
    of an executemany's time for wide rows). `skip_existing` ignores rows whose unique key
    exists (ON CONFLICT DO NOTHING). Returns the number of rows inserted.
    """
    if not rows:
        return 0
    dialect = conn.dialect
    if columns is None:
        names = list(rows[0])
        tuples: Sequence[Sequence[Any]] = [tuple(row[name] for name in names) for row in rows]
    else:
        names, tuples = list(columns), rows  # type: ignore[assignment]
    if skip_existing:
        module = postgresql if dialect.name == "postgresql" else sqlite
        statement: Any = module.insert(table).on_conflict_do_nothing()
    else:
        statement = insert(table)
    compiled = statement.compile(dialect=dialect, column_keys=names)
    order = list(compiled.positiontup or []) if compiled.positional else names
    source = [names.index(name) for name in order]
    converters = [(position, _repeat_aware(convert)) for position, name in enumerate(order)
                  if (convert := _bind_processor(table.c[name].type, dialect)) is not None]
    params: list[Any] = []
    in_order = source == list(range(len(source)))  # the usual case: no per-row reordering
    for row in tuples:
        values = list(row) if in_order else [row[i] for i in source]
        for position, convert in converters:
            values[position] = convert(values[position])
        params.append(tuple(values) if compiled.positional else dict(zip(order, values, strict=True)))
    return int(conn.exec_driver_sql(compiled.string, params).rowcount)


def copy_rows(conn: Connection, table: Table, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> int:
    """Inserts many rows (tuples in the order of `columns`) with PostgreSQL's COPY through psycopg, elsewhere
    with bulk_insert. COPY sends the rows as one stream instead of a statement per row: 2-4 times the rows a
    second of executemany into the indexed deliveries table, at a sixth of the client CPU. It has no ON
    CONFLICT: a duplicate key fails it, and with it the transaction. Returns the number of rows inserted."""
    if conn.dialect.name != "postgresql":
        return bulk_insert(conn, table, rows, columns=columns)
    if not rows:
        return 0
    converters = [(position, _repeat_aware(convert)) for position, name in enumerate(columns)
                  if (convert := _bind_processor(table.c[name].type, conn.dialect)) is not None]
    preparer = conn.dialect.identifier_preparer
    statement = (f"COPY {preparer.format_table(table)} ({', '.join(preparer.quote(name) for name in columns)}) "
                 "FROM STDIN")
    driver = conn.connection.driver_connection  # the psycopg connection, inside this transaction
    driver_error = conn.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                if converters:
                    values = list(row)
                    for position, convert in converters:
                        values[position] = convert(values[position])
                    row = values
                copy.write_row(row)
    except driver_error as error:
        # The driver's error as SQLAlchemy's (IntegrityError for a duplicate), as any other statement raises it.
        raise DBAPIError.instance(statement, None, error, driver_error) from error
    return len(rows)


def upsert_statement(dialect: Dialect, table: Table, key: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE of every other column (DO NOTHING when there is none).

    One statement, so two writers of the same key never collide on the unique key the way a
    delete followed by an insert does on PostgreSQL; the last writer wins.
    """
    module: Any = postgresql if dialect.name == "postgresql" else sqlite
    statement = module.insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in key and not c.primary_key}
    if not updates:
        return statement.on_conflict_do_nothing()
    return statement.on_conflict_do_update(index_elements=list(key), set_=updates)


def _repeat_aware(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The converter, remembering its last answer: a batch repeats values (every row's stored_at)."""
    last: list[Any] = [object(), None]

    def converted(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]

    return converted


def _sqlite_datetime(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite DATETIME text ("2011-12-09 12:50:00.000000", UTC) at C speed."""
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _bind_processor(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    # Core's SQLite datetime processor formats through a dict per value: a third of an
    # event insert. Timezone-aware DateTime columns (sqlmodel's UTCDateTime) store the same
    # text through isoformat; a test compares both on random instants.
    if dialect.name == "sqlite" and isinstance(column_type, TypeDecorator) and isinstance(column_type.impl, DateTime):
        return _sqlite_datetime
    processor: Callable[[Any], Any] | None = column_type._cached_bind_processor(dialect)
    return processor


def member_of(column: ColumnElement[Any], values: Sequence[Any], dialect: Dialect) -> ColumnElement[bool]:
    """`column IN values` bound as ONE parameter (a JSON array on SQLite, an array on PostgreSQL).

    An expanded IN of a thousand ids costs more to compile than to run; this costs neither.
    """
    if dialect.name == "postgresql":
        element_type = column.type if not isinstance(column.type, TypeDecorator) else column.type.impl
        return column == any_(bindparam(None, list(values), type_=ARRAY(element_type)))
    if dialect.name == "sqlite":
        items = func.json_each(bindparam(None, orjson.dumps(list(values)).decode(), type_=String)).table_valued("value")
        return column.in_(select(items.c.value))
    return column.in_(list(values))
