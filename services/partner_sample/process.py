"""The sample partner as a child process on a free port, for tests, benchmarks and the demo."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.stack import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Receiver:
    """A running receiver: its base URL, intake endpoint (`url + "/messages"`) and process."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url + "/messages"

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = httpx.get(self.url + "/stats", timeout=30).json()
        return result

    def messages(self, campaign_id: str | None = None) -> list[dict[str, Any]]:
        params = {"campaign_id": campaign_id} if campaign_id is not None else {}
        result: list[dict[str, Any]] = httpx.get(self.url + "/messages", params=params, timeout=120).json()["messages"]
        return result

    def faults(self, **change: float) -> dict[str, Any]:
        """POST /faults: fail_next, fail_status, fail_for_s, delay_ms, delay_next."""
        answer = httpx.post(self.url + "/faults", json=change, timeout=10)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


@contextmanager
def running(secret: str, args: Sequence[str] = (), *, log_path: Path | None = None, host: str = "127.0.0.1",
            timeout_s: float = 30.0) -> Iterator[Receiver]:
    """Starts `python -m services.partner_sample` with `args` (fault flags), waits for /healthz, stops it after."""
    port = free_port()
    with open(log_path or "/dev/null", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.partner_sample", "--host", host, "--port", str(port),
                                    "--secret", secret, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    receiver = Receiver(host, port, process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                httpx.get(receiver.url + "/healthz", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
                    raise RuntimeError(f"the sample partner did not start (exit {process.poll()}): {tail}") from None
                time.sleep(0.05)
        yield receiver
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
