"""Applies a service's Alembic migrations at start (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def alembic_config(migrations_dir: Path, engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def upgrade_to_head(migrations_dir: Path, engine: Engine) -> None:
    """Brings the database to the newest revision; a no-op when it is there already."""
    command.upgrade(alembic_config(migrations_dir, engine), "head")
