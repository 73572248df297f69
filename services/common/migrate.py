"""Applies a service's Alembic migrations at start (SQLite and PostgreSQL alike), one upgrader at a time."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from services.common.locks import advisory_lock, lock_key


def alembic_config(migrations_dir: Path, engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def lock_name(migrations_dir: Path) -> str:
    """One lock per migration history (the service's package name)."""
    return f"migrate:{migrations_dir.parent.name}"


def migration_lock_key(migrations_dir: Path) -> int:
    return lock_key(lock_name(migrations_dir))


def upgrade_to_head(migrations_dir: Path, engine: Engine) -> None:
    """Brings the database to the newest revision; a no-op when it is there already.

    On PostgreSQL an advisory lock is held meanwhile: a migrations Job and a starting Deployment on a fresh
    database would otherwise both create the alembic_version table and the first tables, and one would fail.
    The second waits, then finds the database at head. SQLite's file has one writer, and one process per
    machine migrates it before replicas start.
    """
    with advisory_lock(engine, lock_name(migrations_dir)):
        command.upgrade(alembic_config(migrations_dir, engine), "head")
