"""services.common.migrate: upgrades that start together on one fresh PostgreSQL database take turns."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from services.common.migrate import migration_lock_key as lock_key
from tests.support import postgres

ROOT = Path(__file__).resolve().parents[3]
CAMPAIGN_MIGRATIONS = ROOT / "services" / "campaign" / "migrations"


def start_migration(url: str) -> subprocess.Popen[bytes]:
    """The migrations Job's command (python -m services.common.jobs migrate campaign), in its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKSMAN_")}
    env["MARKSMAN_CAMPAIGN_DATABASE_URL"] = url
    return subprocess.Popen([sys.executable, "-m", "services.common.jobs", "migrate", "campaign"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def head_revisions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]


def test_lock_keys_differ_per_service_and_fit_a_bigint() -> None:
    keys = {lock_key(ROOT / "services" / name / "migrations")
            for name in ("profile", "segment", "recommend", "campaign", "gateway")}
    assert len(keys) == 5
    assert all(-(1 << 63) <= key < (1 << 63) for key in keys)


def test_an_upgrade_waits_while_another_holds_the_lock(pg_admin_url: str) -> None:
    url = postgres.create_database(pg_admin_url)
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(CAMPAIGN_MIGRATIONS),))
        process = start_migration(url)
        try:
            time.sleep(3.0)
            assert process.poll() is None, process.communicate()[0].decode()
            tables = holder.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
            assert tables == (0,)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (lock_key(CAMPAIGN_MIGRATIONS),))
        output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 0, output
    assert len(head_revisions(url)) == 1


def test_concurrent_upgrades_of_a_fresh_database_all_succeed(pg_admin_url: str) -> None:
    url = postgres.create_database(pg_admin_url)
    processes = [start_migration(url) for _ in range(4)]
    outputs = [p.communicate(timeout=180)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], "\n".join(outputs)
    assert len(head_revisions(url)) == 1


def test_sqlite_upgrades_without_a_lock(tmp_path: Path) -> None:
    process = start_migration(f"sqlite:///{tmp_path / 'campaign.db'}")
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 0, output
