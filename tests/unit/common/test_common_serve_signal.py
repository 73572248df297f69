"""serve(): a real process that stops gracefully on SIGTERM or SIGINT and then calls on_stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from marksman.profile.v1 import profile_pb2_grpc
    from services.common import logs
    from services.common.grpc_server import Registration, serve

    marker = Path(sys.argv[1])
    logs.configure("sigtest")


    def on_stop() -> None:
        marker.write_text("stopped")


    serve(
        "sigtest",
        [
            Registration(
                profile_pb2_grpc.add_ProfileServiceServicer_to_server,
                profile_pb2_grpc.ProfileServiceServicer(),
                "marksman.profile.v1.ProfileService",
            )
        ],
        host="127.0.0.1",
        port=0,
        metrics_port=0,
        grace=2.0,
        on_stop=on_stop,
    )
    """
)


def _read_until_serving(stream: IO[str]) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    for line in stream:
        seen.append(line)
        entry = json.loads(line)
        if entry.get("msg") == "serving":
            return entry, seen
    raise AssertionError(f"the server never logged 'serving':\n{''.join(seen)}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_gracefully_on_signal_and_runs_on_stop(tmp_path: Path, signum: signal.Signals) -> None:
    script = tmp_path / "serve_once.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "on_stop.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "gen")])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marker)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        serving, _ = _read_until_serving(proc.stderr)
        assert serving["service"] == "sigtest"
        assert serving["services"] == ["marksman.profile.v1.ProfileService"]
        port = serving["grpc_port"]
        assert isinstance(port, int) and port > 0
        assert isinstance(serving["metrics_port"], int) and serving["metrics_port"] > 0

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for service in ("", "marksman.profile.v1.ProfileService"):
                response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                assert response.status == health_pb2.HealthCheckResponse.SERVING
        assert not marker.exists()

        started = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert marker.read_text() == "stopped"

        rest = [json.loads(line) for line in proc.stderr.read().splitlines()]
        messages = [entry["msg"] for entry in rest]
        assert messages == ["stopping", "stopped"]
        assert rest[0]["signal"] == signum.name
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stderr is not None:
            proc.stderr.close()
