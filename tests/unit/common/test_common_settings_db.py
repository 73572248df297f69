"""services.common.settings and services.common.db: where the database is, and how it is opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from services.common.db import is_sqlite, make_engine, transaction
from services.common.settings import ServiceSettings, env_prefix


class ProfileLikeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKSMAN_PROFILE_", extra="ignore")

    service_name: str = "profile"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MARKSMAN_"):
            monkeypatch.delenv(name)


# --- settings ----------------------------------------------------------------------------------


def test_default_database_is_a_sqlite_file_named_after_the_service(tmp_path: Path) -> None:
    data_dir = tmp_path / "var" / "nested"
    settings = ServiceSettings(service_name="ledger", data_dir=data_dir)
    url = settings.resolved_database_url()
    assert url == f"sqlite:///{(data_dir / 'ledger.db').resolve()}"
    assert url.startswith("sqlite:////")
    assert data_dir.is_dir()


def test_relative_data_dir_resolves_to_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = ServiceSettings(service_name="svc", data_dir=Path("rel")).resolved_database_url()
    assert url == f"sqlite:///{tmp_path.resolve() / 'rel' / 'svc.db'}"


def test_explicit_database_url_wins_and_touches_no_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "never"
    settings = ServiceSettings(database_url="postgresql://u:p@db:5432/marksman", data_dir=data_dir)
    assert settings.resolved_database_url() == "postgresql://u:p@db:5432/marksman"
    assert not data_dir.exists()


def test_subclass_reads_its_own_prefixed_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_PROFILE_DATABASE_URL", "postgresql://profile@db/profile")
    monkeypatch.setenv("MARKSMAN_PROFILE_GRPC_PORT", "50061")
    monkeypatch.setenv("MARKSMAN_PROFILE_DATA_DIR", str(tmp_path / "pd"))
    settings = ProfileLikeSettings()
    assert settings.resolved_database_url() == "postgresql://profile@db/profile"
    assert settings.grpc_port == 50061
    assert settings.data_dir == tmp_path / "pd"
    assert settings.service_name == "profile"


def test_subclass_ignores_the_base_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_DATABASE_URL", "postgresql://base@db/base")
    monkeypatch.setenv("MARKSMAN_PROFILE_DATA_DIR", str(tmp_path))
    assert ProfileLikeSettings().resolved_database_url() == f"sqlite:///{(tmp_path / 'profile.db').resolve()}"
    # The base class itself does read MARKSMAN_*.
    assert ServiceSettings().resolved_database_url() == "postgresql://base@db/base"


def test_ports_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_PROFILE_GRPC_PORT", "70000")
    with pytest.raises(ValidationError):
        ProfileLikeSettings()


def test_defaults() -> None:
    settings = ServiceSettings()
    assert (settings.host, settings.grpc_port, settings.metrics_port) == ("127.0.0.1", 0, 0)
    assert (settings.grpc_workers, settings.shutdown_grace_s, settings.database_url) == (16, 5.0, "")
    assert env_prefix("profile") == "MARKSMAN_PROFILE_"


# --- db ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@localhost:5432/db",
        "postgres://u:p@localhost:5432/db",
        "postgresql+psycopg://u:p@localhost/db",
    ],
)
def test_postgres_urls_use_psycopg_without_connecting(url: str) -> None:
    engine = make_engine(url, pool_size=3)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.database == "db"
        assert engine.url.username == "u"
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        assert not is_sqlite(engine)
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'svc.db'}")
    try:
        assert is_sqlite(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        with transaction(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql(
                "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id))"
            )
        with pytest.raises(IntegrityError), transaction(engine) as conn:
            conn.exec_driver_sql("INSERT INTO child (id, parent_id) VALUES (1, 42)")
    finally:
        engine.dispose()


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def test_transaction_commits_at_the_end_and_rolls_back_on_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'tx.db'}")
    try:
        with transaction(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        with transaction(engine) as conn:
            conn.execute(text("INSERT INTO item (id, name) VALUES (1, 'kept')"))
        assert _count(engine, "item") == 1

        with pytest.raises(RuntimeError, match="boom"), transaction(engine) as conn:
            conn.execute(text("INSERT INTO item (id, name) VALUES (2, 'first')"))
            conn.execute(text("INSERT INTO item (id, name) VALUES (3, 'second')"))
            raise RuntimeError("boom")
        assert _count(engine, "item") == 1
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM item").scalars().all() == ["kept"]
    finally:
        engine.dispose()
