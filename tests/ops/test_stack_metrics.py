"""Every process of a real stack: /metrics passes promtool's lint; dashboards and alerts use only what they
export (or what docs/operations.md lists as pending); `marksman up`'s Prometheus scrapes them all."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest

from services import localprom
from services.stack import Stack, free_port
from tests.ops.promql import (
    ROOT,
    SYNTHETIC,
    documented_pending,
    exported_names,
    grafana_queries,
    metric_names,
    recorded_names,
    rules,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("ops-stack"), ephemeral_ports=True,
                    env={"MARKSMAN_AS_OF": "2011-12-10T00:00:00Z"})
    running.start()
    key = running.api_keys()["platform"]
    with httpx.Client(base_url=running.gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        c.post("/v1/customers", json={"customers": [{"customer_id": "ops-1", "region": "United Kingdom"}]})
        c.post("/v1/events", json={"events": [
            {"event_id": "ops-o1", "type": "order", "customer_id": "ops-1", "occurred_at": "2011-12-01T10:00:00Z",
             "currency": "GBP", "lines": [{"sku": "A1", "quantity": 1, "unit_price_minor": 100}]},
            # Well-formed, so the gateway passes it on; profile refuses it (more than 24 h ahead of the clock).
            {"event_id": "ops-future", "type": "order", "customer_id": "ops-1", "occurred_at": "2030-01-01T00:00:00Z",
             "currency": "GBP", "lines": [{"sku": "A1", "quantity": 1, "unit_price_minor": 100}]},
        ]})
        c.get("/v1/customers/ops-1/profile")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def expositions(stack: Stack) -> dict[str, str]:
    """Process name -> its /metrics text."""
    return {p.name: httpx.get(stack.metrics_url(p.name), timeout=10).text for p in stack.processes}


def test_every_process_serves_metrics(stack: Stack, expositions: dict[str, str]) -> None:
    assert set(expositions) == {p.name for p in stack.processes}
    for name, text in expositions.items():
        service = name.split("-")[0]
        if service == "gateway":
            assert "marksman_http_requests_total" in text
        else:
            assert f'marksman_grpc_server_handled_total{{code="OK",method="Check",service="{service}"}}' in text, name
    profile = expositions["profile"] + expositions.get("profile-2", "")
    assert 'marksman_profile_event_rejections_total{reason="occurred_at"} 1.0' in profile


def test_promtool_check_metrics_on_every_process(expositions: dict[str, str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (deploy/ci/tools.sh installs Debian's prometheus package)")
    for name, text in expositions.items():
        done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not done.stdout.strip(), f"{name}: {done.stdout}{done.stderr}"


def test_no_label_carries_an_identifier(expositions: dict[str, str]) -> None:
    for name, text in expositions.items():
        assert "ops-1" not in text and "ops-o1" not in text and "ops-future" not in text, name


def registry_names() -> set[str]:
    """Names the services' metric modules register, for services the stack does not run (yet)."""
    for path in sorted((ROOT / "services").glob("*/*.py")):
        if path.stem in ("metrics", "telemetry") or path.stem.endswith("_metrics"):
            importlib.import_module(f"services.{path.parent.name}.{path.stem}")
    return exported_names(generate_latest(REGISTRY).decode())


def test_dashboards_and_rules_use_only_exported_or_documented_metrics(expositions: dict[str, str]) -> None:
    exported = set().union(*(exported_names(text) for text in expositions.values())) | registry_names()
    pending = documented_pending()
    known = exported | set(pending) | recorded_names() | SYNTHETIC
    used: dict[str, str] = {}
    for board, title, expr in grafana_queries():
        used.update({metric: f"{board} / {title}" for metric in metric_names(expr)})
    for rule in rules():
        used.update({metric: f"rule {rule.get('alert') or rule.get('record')}" for metric in metric_names(rule["expr"])})
    unknown = {metric: where for metric, where in used.items() if metric not in known}
    assert not unknown, f"metrics no service exports and docs/operations.md does not list: {unknown}"
    assert not set(pending) & exported, "exported now: drop them from the pending list in docs/operations.md"
    assert set(pending) <= set(used), "listed as pending but no dashboard or rule uses them"


def test_local_prometheus_scrapes_every_process(stack: Stack) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (deploy/ci/tools.sh installs Debian's prometheus package)")
    port = free_port()
    started = localprom.start(stack, port=port)
    assert isinstance(started, localprom.LocalPrometheus), started
    try:
        config = json.loads((stack.data_dir / "prometheus" / "prometheus.yml").read_text())
        assert config["rule_files"] == [str(localprom.RULES_DIR / "*.yml")]
        deadline = time.monotonic() + 60
        while True:
            with urllib.request.urlopen(f"{started.url}/api/v1/targets", timeout=5) as response:
                targets = json.loads(response.read())["data"]["activeTargets"]
            health = {t["scrapeUrl"]: t["health"] for t in targets}
            if health and all(h == "up" for h in health.values()):
                break
            assert time.monotonic() < deadline, health
            time.sleep(1)
        expected = {stack.metrics_url(p.name) for p in stack.processes} | {f"{started.url}/metrics"}
        assert set(health) == expected
        with urllib.request.urlopen(f"{started.url}/api/v1/rules", timeout=5) as response:
            groups = json.loads(response.read())["data"]["groups"]
        assert {g["name"] for g in groups} >= {"marksman.recording", "marksman.availability"}
    finally:
        assert started.stop() == 0


def test_missing_prometheus_is_reported_not_raised(stack: Stack, tmp_path: Path) -> None:
    assert localprom.start(stack, binary="no-such-prometheus-binary") == (
        "no-such-prometheus-binary is not installed (Debian: apt-get install prometheus)")
