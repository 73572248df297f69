"""The body of every service's Alembic env.py: run migrations on the engine the service gave."""

from __future__ import annotations

from alembic import context
from sqlalchemy import MetaData, create_engine, pool


def run(target_metadata: MetaData) -> None:
    config = context.config
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url") or ""
        engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        # Batch mode lets ALTER TABLE work on SQLite by copying the table.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        context.run_migrations()
