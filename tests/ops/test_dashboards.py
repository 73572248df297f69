"""Grafana dashboards: valid JSON models whose every query parses as PromQL (promql-parser)."""

from __future__ import annotations

import json

import pytest

from tests.ops.promql import DASHBOARDS, grafana_queries, metric_names, recorded_names, rules

QUERIES = list(grafana_queries())


def test_the_four_dashboards_exist() -> None:
    assert {p.name for p in DASHBOARDS} == {"overview.json", "ingestion.json", "recommendations.json",
                                            "dispatch.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_model(path: object) -> None:
    board = json.loads(path.read_text())  # type: ignore[attr-defined]
    assert board["uid"].startswith("marksman-") and board["title"].startswith("Marksman / ")
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)) and 0 not in ids
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert [t["refId"] for t in panel["targets"]] == [chr(ord("A") + i) for i in range(len(panel["targets"]))]


@pytest.mark.parametrize(("board", "title", "expr"), QUERIES, ids=[f"{b}:{t}" for b, t, _ in QUERIES])
def test_every_panel_query_parses(board: str, title: str, expr: str) -> None:
    assert metric_names(expr), f"{board} / {title}: selects no metric"


def test_rule_expressions_parse() -> None:
    for rule in rules():
        assert metric_names(rule["expr"]), rule


def test_the_parser_rejects_broken_promql() -> None:
    with pytest.raises(Exception, match=r"unclosed|unexpected|expected"):
        metric_names("sum(rate(marksman_http_requests_total[5m])")
    assert metric_names('{__name__="up"} + max(marksman_x offset 5m)') == {"up", "marksman_x"}
    assert "service:marksman_grpc_requests:rate5m" in recorded_names()
