"""`python -m services.gateway` as a real process: bootstrap keys, uvloop/httptools serving, SIGTERM."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.stack import free_port
from tests.unit.gateway.gateway_fakes import FakeServer, bearer

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def gateway_process(tmp_path: Path, upstream: FakeServer) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {
        **os.environ,
        "MARKSMAN_GATEWAY_PORT": str(port),
        "MARKSMAN_GATEWAY_PROFILE_ADDR": upstream.address,
        "MARKSMAN_GATEWAY_DATA_DIR": str(tmp_path / "var"),
        "MARKSMAN_GATEWAY_BOOTSTRAP_KEYS_FILE": str(tmp_path / "keys.txt"),
    }
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "services.gateway"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.1)
        yield url, tmp_path
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal (so the exit status says SIGTERM).
        assert process.wait(10) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (tmp_path / "gateway.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_the_process_serves_with_its_bootstrap_keys(gateway_process: tuple[str, Path]) -> None:
    url, folder = gateway_process
    keys_file = folder / "keys.txt"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    keys = dict(line.split("=", 1) for line in keys_file.read_text().splitlines() if not line.startswith("#"))
    customer = {"customer_id": "c-1", "name": "Zoë 王小明", "email": "zoe@example.com", "phone": "+44 7700 900123"}
    response = httpx.post(url + "/v1/customers", json={"customers": [customer]}, headers=bearer(keys["platform"]))
    assert response.status_code == 200, response.text
    assert httpx.get(url + "/v1/admin/summary", headers=bearer(keys["admin"])).status_code == 200
    assert (folder / "var" / "gateway.db").exists()
    time.sleep(0.2)
    logs = (folder / "gateway.log").read_text()
    # No personal data and no plaintext keys in the log (stderr is not a terminal here).
    assert '"route":"/v1/customers"' in logs
    for secret in ("zoe@example.com", "7700 900123", "王小明", keys["admin"], keys["platform"]):
        assert secret not in logs
