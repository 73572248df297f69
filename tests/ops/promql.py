"""Helpers of the ops tests: PromQL metric names (promql-parser), exported names, the documented list."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
OPERATIONS = ROOT / "docs/operations.md"
# Grafana's own variables, as Grafana substitutes them before the query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}
# Series Prometheus makes itself, not the services.
SYNTHETIC = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
PENDING_ROW = re.compile(r"^\|\s*`(marksman_[a-z0-9_]+)`\s*\|[^|]*\|\s*([a-z]+)\s*\|\s*pending", re.MULTILINE)


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression selects; raises on a syntax error."""
    names: set[str] = set()

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            if name:
                names.add(name)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def grafana_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, expression with Grafana's variables substituted) of every panel."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                yield path.name, panel["title"], expr


def rules() -> Iterator[dict[str, str]]:
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def exported_names(exposition: str) -> set[str]:
    """The series names a /metrics page offers, including families that have no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        elif family.type == "summary":
            names.update(family.name + suffix for suffix in ("", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


def documented_pending() -> dict[str, str]:
    """Metric name -> the service expected to export it, from docs/operations.md's list (status "pending")."""
    return {name: owner for name, owner in PENDING_ROW.findall(OPERATIONS.read_text())}
