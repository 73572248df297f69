"""Prometheus scrape configs: local (the default `marksman up` ports) and compose (DNS of the service names)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from services import localprom
from services.stack import DEFAULT_PORTS, Stack
from tools.deploygen.catalog import Service

COMPOSE_RULES = "/etc/prometheus/rules/*.yml"


def local() -> dict[str, Any]:
    """What `marksman up` writes for its default ports (it renders its own for the ports it really binds)."""
    stack = Stack(Path(tempfile.gettempdir()) / "unused")
    stack.ports.update(DEFAULT_PORTS)
    config = localprom.local_config(stack)
    config["rule_files"] = ["rules/*.yml"]  # relative to this file, for `prometheus --config.file=` from here
    return config


def compose(services: list[Service]) -> dict[str, Any]:
    config = localprom.scrape_config({}, [COMPOSE_RULES])
    # DNS service discovery: `docker-compose up --scale segment=2` is scraped without an edit.
    config["scrape_configs"] = [
        {"job_name": s.name, "metrics_path": "/metrics",
         "dns_sd_configs": [{"names": [s.name], "type": "A", "port": s.scrape_port, "refresh_interval": "30s"}]}
        for s in services
    ] + [{"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]}]
    return config
