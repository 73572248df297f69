"""PostgreSQL advisory locks: one holder at a time across processes and replicas (SQLite: no-ops)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

# The high half of every Marksman lock key, so it cannot meet an advisory lock taken for another purpose.
NAMESPACE = 0x6D6B_736D  # "mksm"


def lock_key(name: str) -> int:
    """A signed 64-bit key for a lock name, stable across processes and Python versions."""
    value = (NAMESPACE << 32) | zlib.crc32(name.encode())
    return value - (1 << 64) if value >= 1 << 63 else value


@contextmanager
def advisory_lock(engine: Engine, name: str) -> Iterator[None]:
    """Holds the named lock on a connection of its own until the block ends (waits while another holds it)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = lock_key(name)
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        holder.commit()
        try:
            yield
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            holder.commit()


def nobody_holds(conn: Connection, name: str) -> bool:
    """Whether the named lock is free; takes it until `conn`'s transaction ends. Always true off PostgreSQL."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": lock_key(name)}).scalar())
