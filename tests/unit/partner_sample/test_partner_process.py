"""The receiver as a real process: command-line faults, a client timeout, then recovery by key."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from services.partner_sample import process, signing

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    flags = ["--fail-first", "1", "--fail-status", "502", "--delay-ms", "700", "--delay-first", "2"]
    with process.running(SECRET, flags, log_path=tmp_path / "partner.log") as running:
        yield running.url


def send(url: str, keys: list[str], timeout: float = 5.0) -> httpx.Response:
    body = orjson.dumps({"messages": [{"idempotency_key": k, "channel": "sms", "to": "+440000000000",
                                       "body": "x", "campaign_id": "c"} for k in keys]})
    return httpx.post(url + "/messages", content=body, timeout=timeout,
                      headers=signing.headers(SECRET, int(time.time()), body))


@pytest.mark.integration
def test_fail_first_then_timeouts_then_recovery_each_key_new_once(receiver: str) -> None:
    assert send(receiver, ["a", "b"]).status_code == 502
    for _ in range(2):  # taken but answered too late: the sender cannot know
        with pytest.raises(httpx.ReadTimeout):
            send(receiver, ["a", "b"], timeout=0.2)
    results = send(receiver, ["a", "b", "c"]).json()["results"]
    assert [r["status"] for r in results] == ["duplicate", "duplicate", "accepted"]
    stats = httpx.get(receiver + "/stats").json()
    assert stats["new"] == 3 and stats["failed_injected"] == 1 and stats["requests"] == 4
    assert {m["idempotency_key"]: m["deliveries"] for m in httpx.get(receiver + "/messages").json()["messages"]} == {
        "a": 3, "b": 3, "c": 1}


def test_secret_is_required() -> None:
    done = subprocess.run([sys.executable, "-m", "services.partner_sample", "--port", "0"], cwd=ROOT,
                          capture_output=True, text=True, env={"PATH": "/usr/bin"}, timeout=60)
    assert done.returncode == 2 and "--secret is required" in done.stderr


@pytest.mark.integration
def test_receiver_helper_sets_faults_and_reads_messages(tmp_path: Path) -> None:
    with process.running(SECRET, log_path=tmp_path / "partner.log") as running:
        assert running.faults(fail_next=1, fail_status=503)["fail_next"] == 1
        assert send(running.url, ["x"]).status_code == 503
        assert send(running.url, ["x"]).status_code == 200
        assert [m["idempotency_key"] for m in running.messages("c")] == ["x"]
        assert running.messages("other") == [] and running.stats()["failed_injected"] == 1
    assert running.process.poll() is not None
