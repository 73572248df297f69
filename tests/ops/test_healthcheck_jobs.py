"""The container probe and the one-shot jobs against real servers and real databases."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import sqlalchemy
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc

from services.common import healthcheck, jobs
from services.common.grpc_server import Registration, start
from services.common.settings import settings_of

ROOT = Path(__file__).resolve().parents[2]


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers /healthz with 200 and anything else with 404; remembers what it was sent."""

    seen: ClassVar[list[tuple[str, str, str, bytes]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.seen.append((self.command, self.path, self.headers.get("Authorization", ""), self.rfile.read(length)))
        ok = self.path in ("/healthz", "/v1/segments/vip/refresh")
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}' if ok else b'{"detail": "no such route"}')

    do_GET = do_POST = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_grpc_probe_follows_the_servers_health(monkeypatch: pytest.MonkeyPatch) -> None:
    running = start("probe", [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server,
                                           profile_pb2_grpc.ProfileServiceServicer(),
                                           profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name)],
                    metrics_port=None)
    monkeypatch.setenv("MARKSMAN_PROFILE_HOST", "0.0.0.0")
    monkeypatch.setenv("MARKSMAN_PROFILE_GRPC_PORT", str(running.port))
    try:
        healthy, detail = healthcheck.probe(settings_of("profile"))
        assert healthy, detail
        assert detail == f"grpc health 127.0.0.1:{running.port} -> SERVING"
        running.health.enter_graceful_shutdown()
        assert healthcheck.probe(settings_of("profile")) == (
            False, f"grpc health 127.0.0.1:{running.port} -> NOT_SERVING")
    finally:
        running.stop(0)
    healthy, detail = healthcheck.probe(settings_of("profile"), timeout=0.5)
    assert not healthy and detail.endswith(("UNAVAILABLE", "DEADLINE_EXCEEDED")), detail


def test_http_probe_of_the_gateway(monkeypatch: pytest.MonkeyPatch, http_server: int) -> None:
    monkeypatch.setenv("MARKSMAN_GATEWAY_HOST", "0.0.0.0")
    monkeypatch.setenv("MARKSMAN_GATEWAY_PORT", str(http_server))
    assert healthcheck.probe(settings_of("gateway")) == (True, f"http://127.0.0.1:{http_server}/healthz -> 200")


def test_probe_process_exit_codes(http_server: int) -> None:
    import os

    env = {**os.environ, "MARKSMAN_SERVICE": "gateway", "MARKSMAN_GATEWAY_PORT": str(http_server)}
    ok = subprocess.run([sys.executable, "-m", "services.common.healthcheck"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    env["MARKSMAN_GATEWAY_PORT"] = "1"  # nothing listens there
    down = subprocess.run([sys.executable, "-m", "services.common.healthcheck"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "-> ConnectionRefusedError" in down.stdout, down.stdout
    del env["MARKSMAN_SERVICE"]
    usage = subprocess.run([sys.executable, "-m", "services.common.healthcheck"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2


@pytest.mark.parametrize("service", ["profile", "segment", "gateway"])
def test_migrate_job_brings_each_database_to_head(service: str, database_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"MARKSMAN_{service.upper()}_DATABASE_URL", database_url)
    assert jobs.main(["migrate", service]) == 0
    engine = sqlalchemy.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            first = conn.execute(sqlalchemy.text("select version_num from alembic_version")).scalar_one()
        assert jobs.main(["migrate", service]) == 0  # a second run is a no-op
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("select version_num from alembic_version")).scalar_one() == first
    finally:
        engine.dispose()


def test_call_job_sends_the_key_and_fails_on_an_error_status(monkeypatch: pytest.MonkeyPatch,
                                                            http_server: int) -> None:
    monkeypatch.setenv(jobs.GATEWAY_URL_ENV, f"http://127.0.0.1:{http_server}")
    monkeypatch.delenv(jobs.API_KEY_ENV, raising=False)
    assert jobs.main(["call", "POST", "/v1/segments/vip/refresh"]) == 2
    monkeypatch.setenv(jobs.API_KEY_ENV, "k-123")
    Recorder.seen.clear()
    assert jobs.main(["call", "post", "/v1/segments/vip/refresh", "--json", '{"a": 1}']) == 0
    assert Recorder.seen == [("POST", "/v1/segments/vip/refresh", "Bearer k-123", b'{"a": 1}')]
    assert jobs.main(["call", "POST", "/v1/nothing"]) == 1
