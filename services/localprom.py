"""A local Prometheus for `marksman up`: a scrape config for the stack's processes, started when installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.stack import GRPC_SERVICES, Stack

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
DEFAULT_PORT = 9090
SCRAPE_INTERVAL = "15s"


def scrape_config(targets: Mapping[str, Sequence[str]], rule_files: Sequence[str], *,
                  interval: str = SCRAPE_INTERVAL) -> dict[str, Any]:
    """A Prometheus config: one job per service (its processes as targets), plus the rule files."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": list(rule_files),
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": [{"targets": list(hosts)}]}
            for job, hosts in targets.items()
        ],
    }


def stack_targets(stack: Stack, prometheus_port: int = DEFAULT_PORT) -> dict[str, list[str]]:
    """job -> host:port of each process's /metrics (the gateway serves it on its own HTTP port)."""
    targets = {
        name: [f"{stack.host}:{stack.ports[replica][1]}" for replica in stack.replica_names(name)]
        for name in GRPC_SERVICES
    }
    targets["gateway"] = [f"{stack.host}:{stack.ports['gateway'][0]}"]
    targets["prometheus"] = [f"{stack.host}:{prometheus_port}"]
    return targets


def local_config(stack: Stack, prometheus_port: int = DEFAULT_PORT, rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    rule_files = [str(rules_dir / "*.yml")] if rules_dir.is_dir() else []
    return scrape_config(stack_targets(stack, prometheus_port), rule_files)


@dataclass
class LocalPrometheus:
    popen: subprocess.Popen[bytes]
    url: str

    def stop(self, grace: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return int(self.popen.returncode)


def start(stack: Stack, *, port: int = DEFAULT_PORT, binary: str = "prometheus",
          timeout: float = 30.0) -> LocalPrometheus | str:
    """Starts Prometheus on the stack's data dir, or returns why not (binary absent, failed to start)."""
    found = shutil.which(binary)
    if found is None:
        return f"{binary} is not installed (Debian: apt-get install prometheus)"
    folder = stack.data_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "prometheus.yml"
    # JSON is YAML: no YAML library needed at run time.
    config.write_text(json.dumps(local_config(stack, port), indent=2) + "\n")
    log_path = stack.data_dir / "logs" / "prometheus.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [found, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={stack.host}:{port}", "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    running = LocalPrometheus(popen, f"http://{stack.host}:{port}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            return f"prometheus exited with code {popen.returncode}; see {log_path}"
        try:
            with urllib.request.urlopen(running.url + "/-/ready", timeout=1.0) as response:
                if response.status == 200:
                    return running
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    running.stop()
    return f"prometheus did not become ready within {timeout:.0f} s; see {log_path}"
