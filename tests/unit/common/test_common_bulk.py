"""bulk_insert, copy_rows and member_of on SQLite and PostgreSQL: same stored values as Core, ids bound as one parameter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel.sql.sqltypes import UTCDateTime

from services.common.db import _sqlite_datetime, bulk_insert, copy_rows, make_engine, member_of

META = MetaData()
THINGS = Table(
    "things", META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(32), unique=True, nullable=False),
    Column("at", UTCDateTime(), nullable=True),
    Column("amount", BigInteger, nullable=False),
)


def instants(count: int) -> list[datetime]:
    rng = random.Random(3)
    base = datetime(1995, 1, 1, tzinfo=UTC)
    return [base + timedelta(seconds=rng.randrange(10**9), microseconds=rng.randrange(10**6)) for _ in range(count)]


def test_bulk_insert_stores_what_core_stores(database_url: str) -> None:
    engine = make_engine(database_url)
    META.create_all(engine)
    when = instants(50)
    with engine.begin() as conn:
        bulk_insert(conn, THINGS, [{"name": f"b{i}", "at": w, "amount": i} for i, w in enumerate(when)])
        conn.execute(insert(THINGS), [{"name": f"c{i}", "at": w, "amount": i} for i, w in enumerate(when)])
    with engine.connect() as conn:
        rows = {r.name: (r.at, r.amount) for r in conn.execute(select(THINGS))}
        raw = {r[0]: r[1] for r in conn.exec_driver_sql("SELECT name, CAST(at AS TEXT) FROM things")}
    for i, w in enumerate(when):
        assert rows[f"b{i}"] == rows[f"c{i}"] == (w, i)
        assert raw[f"b{i}"] == raw[f"c{i}"]  # byte-identical storage, so ordering and comparisons agree


def test_copy_rows_stores_what_core_stores_and_refuses_a_duplicate(database_url: str) -> None:
    engine = make_engine(database_url)
    META.create_all(engine)
    when = [*instants(40), None]
    with engine.begin() as conn:
        assert copy_rows(conn, THINGS, [(f"p{i}", w, -i) for i, w in enumerate(when)], ("name", "at", "amount")) == 41
        conn.execute(insert(THINGS), [{"name": f"c{i}", "at": w, "amount": -i} for i, w in enumerate(when)])
    with engine.connect() as conn:
        rows = {r.name: (r.at, r.amount) for r in conn.execute(select(THINGS))}
        raw = {r[0]: r[1] for r in conn.exec_driver_sql("SELECT name, CAST(at AS TEXT) FROM things")}
    for i, w in enumerate(when):
        assert rows[f"p{i}"] == rows[f"c{i}"] == (w, -i)
        assert raw[f"p{i}"] == raw[f"c{i}"]
    with pytest.raises(IntegrityError), engine.begin() as conn:
        copy_rows(conn, THINGS, [("fresh", None, 1), ("p0", None, 2)], ("name", "at", "amount"))
    with engine.connect() as conn:  # the failed copy left nothing behind
        assert conn.execute(select(THINGS.c.name).where(THINGS.c.name == "fresh")).first() is None


def test_bulk_insert_can_skip_existing_keys(database_url: str) -> None:
    engine = make_engine(database_url)
    META.create_all(engine)
    with engine.begin() as conn:
        bulk_insert(conn, THINGS, [{"name": "a", "at": None, "amount": 1}])
        bulk_insert(conn, THINGS, [{"name": "a", "at": None, "amount": 2}, {"name": "b", "at": None, "amount": 3}],
                    skip_existing=True)
    with engine.connect() as conn:
        assert {n: a for n, a in conn.execute(select(THINGS.c.name, THINGS.c.amount))} == {"a": 1, "b": 3}


def test_member_of_matches_an_in_list(database_url: str) -> None:
    engine = make_engine(database_url)
    META.create_all(engine)
    with engine.begin() as conn:
        bulk_insert(conn, THINGS, [{"name": f"n{i}", "at": None, "amount": i} for i in range(3000)])
    wanted = [f"n{i}" for i in range(0, 3000, 7)] + ["missing", "it's \"quoted\""]
    with engine.connect() as conn:
        found = set(conn.execute(select(THINGS.c.name).where(member_of(THINGS.c.name, wanted, conn.dialect))).scalars())
        numbers = set(conn.execute(select(THINGS.c.amount).where(
            member_of(THINGS.c.amount, [1, 2, 2999], conn.dialect))).scalars())
    assert found == {f"n{i}" for i in range(0, 3000, 7)}
    assert numbers == {1, 2, 2999}


def test_the_fast_sqlite_datetime_text_is_sqlalchemys() -> None:
    from sqlalchemy.dialects import sqlite

    dialect = sqlite.dialect()
    core = UTCDateTime()._cached_bind_processor(dialect)
    assert core is not None
    for value in [*instants(200), datetime(2011, 12, 9, 12, 50, tzinfo=timezone(timedelta(hours=8)))]:
        assert _sqlite_datetime(value) == core(value)
    assert _sqlite_datetime(None) is None
