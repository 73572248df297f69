"""Applies a service's Alembic migrations at start (SQLite and PostgreSQL alike), one upgrader at a time."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

# The high half of every migration lock key, so it cannot meet an advisory lock taken for another purpose.
LOCK_NAMESPACE = 0x6D6B_736D  # "mksm"


def alembic_config(migrations_dir: Path, engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def lock_key(migrations_dir: Path) -> int:
    """The advisory lock key of one migration history (stable across processes and Python versions)."""
    low = zlib.crc32(migrations_dir.parent.name.encode())
    value = (LOCK_NAMESPACE << 32) | low
    return value - (1 << 64) if value >= 1 << 63 else value


@contextmanager
def upgrade_lock(migrations_dir: Path, engine: Engine) -> Iterator[None]:
    """Holds a PostgreSQL session advisory lock while migrating: a migrations Job and a starting Deployment
    on a fresh database would otherwise both create the alembic_version table and the first tables, and one
    of them would fail. The second waits here, then finds the database at head. SQLite needs nothing: its
    file has one writer, and one process per machine migrates it before replicas start."""
    if engine.dialect.name != "postgresql":
        yield
        return
    key = lock_key(migrations_dir)
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        holder.commit()
        try:
            yield
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            holder.commit()


def upgrade_to_head(migrations_dir: Path, engine: Engine) -> None:
    """Brings the database to the newest revision; a no-op when it is there already."""
    with upgrade_lock(migrations_dir, engine):
        command.upgrade(alembic_config(migrations_dir, engine), "head")
