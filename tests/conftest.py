"""Fixtures for every suite: a database URL per test on SQLite and, where the binaries exist, PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import postgres  # noqa: E402


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    if postgres.pg_bin() is None:
        pytest.skip("PostgreSQL binaries are not installed on this machine")
    with postgres.cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One empty database per test, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    admin: str = request.getfixturevalue("pg_admin_url")
    return postgres.create_database(admin)
