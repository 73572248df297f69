"""Grafana dashboards (overview, ingestion, recommendations, dispatch) built with grafana-foundation-sdk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as StatPanel
from grafana_foundation_sdk.builders.timeseries import Panel as TimeseriesPanel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"
# Long-running calls (streams, recomputes, trainings) would swamp an interactive latency view.
BATCH_METHODS = "Export.*|Stream.*|Recompute.*|Refresh.*|Train.*|Sync.*|Check|Watch"
INGEST_METHODS = 'service="profile",method=~"IngestEvents|StreamEvents"'


@dataclass(frozen=True)
class Panel:
    title: str
    queries: list[tuple[str, str]]
    unit: str = "short"
    stat: bool = False
    description: str = ""


@dataclass(frozen=True)
class Board:
    uid: str
    title: str
    description: str
    rows: list[tuple[str, list[Panel]]] = field(default_factory=list)


def grpc_quantile(q: float, selector: str = "", by: str = "service", interactive: bool = True) -> str:
    matchers = ",".join(m for m in (f'method!~"{BATCH_METHODS}"' if interactive else "", selector) if m)
    return (f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate(marksman_grpc_server_handling_seconds_bucket{{{matchers}}}[{RATE}])))")


def golden_signals() -> list[tuple[str, list[Panel]]]:
    grpc_errors = 'code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DATA_LOSS|DEADLINE_EXCEEDED|UNIMPLEMENTED"'
    return [
        ("Services", [
            Panel("Processes up", [("sum by (job) (up)", "{{job}}")], stat=True,
                  description="Scrape targets answering, per job (a service's processes)."),
            Panel("gRPC calls/s", [(f"sum by (service) (rate(marksman_grpc_server_handled_total[{RATE}]))",
                                    "{{service}}")], "reqps"),
            Panel("gRPC server errors (share of calls)", [(
                f"sum by (service) (rate(marksman_grpc_server_handled_total{{{grpc_errors}}}[{RATE}]))"
                f" / sum by (service) (rate(marksman_grpc_server_handled_total[{RATE}]))", "{{service}}")],
                "percentunit", description="INTERNAL, UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED ...: not the callers' mistakes."),
            Panel("gRPC latency p50 / p99 (interactive calls)", [
                (grpc_quantile(0.5), "p50 {{service}}"), (grpc_quantile(0.99), "p99 {{service}}")], "s"),
            Panel("gRPC calls in flight", [("sum by (service) (marksman_grpc_server_in_flight)", "{{service}}")]),
            Panel("gRPC calls/s by method and code", [(
                f"sum by (service, method, code) (rate(marksman_grpc_server_handled_total[{RATE}]))",
                "{{service}} {{method}} {{code}}")], "reqps"),
        ]),
        ("Gateway (HTTP)", [
            Panel("Requests/s by route", [(f"sum by (route) (rate(marksman_http_requests_total[{RATE}]))",
                                           "{{route}}")], "reqps"),
            Panel("5xx share", [(f'sum(rate(marksman_http_requests_total{{status=~"5.."}}[{RATE}]))'
                                 f" / sum(rate(marksman_http_requests_total[{RATE}]))", "5xx")], "percentunit"),
            Panel("4xx/s by route and status", [(
                f'sum by (route, status) (rate(marksman_http_requests_total{{status=~"4.."}}[{RATE}]))',
                "{{route}} {{status}}")], "reqps"),
            Panel("Latency p99 by route", [(
                f"histogram_quantile(0.99, sum by (route, le) (rate(marksman_http_request_duration_seconds_bucket[{RATE}])))",
                "{{route}}")], "s"),
            Panel("Requests in flight", [("sum(marksman_http_requests_in_flight)", "in flight")]),
        ]),
        ("Processes", [
            Panel("CPU (cores)", [(f"sum by (job, instance) (rate(process_cpu_seconds_total[{RATE}]))",
                                   "{{job}} {{instance}}")]),
            Panel("Resident memory", [("sum by (job, instance) (process_resident_memory_bytes)",
                                       "{{job}} {{instance}}")], "bytes"),
            Panel("Open file descriptors", [("sum by (job, instance) (process_open_fds)", "{{job}} {{instance}}")]),
        ]),
    ]


def ingestion() -> list[tuple[str, list[Panel]]]:
    return [
        ("Events", [
            Panel("Gateway: events/s by result", [(
                f"sum by (result) (rate(marksman_gateway_events_total[{RATE}]))", "{{result}}")], "short"),
            Panel("Gateway: rejections/s by reason", [(
                f"sum by (reason) (rate(marksman_gateway_event_rejections_total[{RATE}]))", "{{reason}}")]),
            Panel("Profile: events/s by result", [(
                f"sum by (result) (rate(marksman_profile_events_total[{RATE}]))", "{{result}}")]),
            Panel("Profile: rejections/s by reason", [(
                f"sum by (reason) (rate(marksman_profile_event_rejections_total[{RATE}]))", "{{reason}}")]),
            Panel("Rejected share (gateway)", [(
                f'sum(rate(marksman_gateway_events_total{{result="rejected"}}[{RATE}]))'
                f" / sum(rate(marksman_gateway_events_total[{RATE}]))", "rejected")], "percentunit"),
            Panel("Ingest call latency p50 / p99", [
                (grpc_quantile(0.5, INGEST_METHODS, "method", interactive=False), "p50 {{method}}"),
                (grpc_quantile(0.99, INGEST_METHODS, "method", interactive=False), "p99 {{method}}")], "s"),
        ]),
        ("Portraits", [
            Panel("Portraits waiting for an update", [("max(marksman_profile_portraits_pending)", "pending")]),
            Panel("Portraits rewritten/s by path", [(
                f"sum by (path) (rate(marksman_profile_portraits_updated_total[{RATE}]))", "{{path}}")]),
            Panel("Full recompute: mean time", [(
                "sum(rate(marksman_profile_recompute_seconds_sum[1h])) / sum(rate(marksman_profile_recompute_seconds_count[1h]))",
                "mean")], "s"),
        ]),
        ("Segments", [
            Panel("Portraits in segment's cache", [("max(marksman_segment_portraits_cached)", "cached")]),
            Panel("Segment refresh p99", [(
                "histogram_quantile(0.99, sum by (le) (rate(marksman_segment_refresh_seconds_bucket[1h])))", "p99")], "s"),
        ]),
    ]


def recommendations() -> list[tuple[str, list[Panel]]]:
    return [
        ("Serving", [
            Panel("Answers/s by fallback", [(
                f"sum by (fallback) (rate(marksman_recommend_recommendations_total[{RATE}]))", "{{fallback}}")]),
            Panel("Fallback share", [(
                f'sum(rate(marksman_recommend_recommendations_total{{fallback!="none"}}[{RATE}]))'
                f" / sum(rate(marksman_recommend_recommendations_total[{RATE}]))", "fallback")], "percentunit",
                description="Answers not from the model (unknown customer, no model yet)."),
            Panel("Recommend latency p50 / p99", [
                (grpc_quantile(0.5, 'service="recommend"', "method"), "p50 {{method}}"),
                (grpc_quantile(0.99, 'service="recommend"', "method"), "p99 {{method}}")], "s"),
        ]),
        ("Model", [
            Panel("Serving model version", [("max(marksman_recommend_serving_model_version)", "version")], stat=True),
            Panel("Offline precision@k of the serving model", [(
                "max(marksman_recommend_serving_precision_at_k)", "precision@k")], "percentunit"),
            Panel("Serving model age", [(
                # Replicas serving no model yet export 0: left out, or the age would read 56 years.
                "time() - max(marksman_recommend_serving_model_trained_timestamp_seconds > 0)", "age")], "s"),
            Panel("Trainings by outcome (per day)", [(
                "sum by (outcome) (increase(marksman_recommend_training_seconds_count[1d]))", "{{outcome}}")]),
            Panel("Training time (mean per outcome)", [(
                "sum by (outcome) (rate(marksman_recommend_training_seconds_sum[1d]))"
                " / sum by (outcome) (rate(marksman_recommend_training_seconds_count[1d]))", "{{outcome}}")], "s"),
        ]),
    ]


def dispatch() -> list[tuple[str, list[Panel]]]:
    return [
        ("Deliveries", [
            Panel("Deliveries/s by state", [(
                f"sum by (state) (rate(marksman_campaign_deliveries_total[{RATE}]))", "{{state}}")]),
            Panel("Deliveries/s by partner and state", [(
                f"sum by (partner, state) (rate(marksman_campaign_deliveries_total[{RATE}]))",
                "{{partner}} {{state}}")]),
            Panel("Dispatch lag (oldest due delivery)", [("max(marksman_campaign_dispatch_lag_seconds)", "lag")], "s"),
            Panel("Deliveries written by launches/s", [(
                f"sum(rate(marksman_campaign_launch_deliveries_total[{RATE}]))", "launched")]),
            Panel("Not sent, by reason/s", [(
                f"sum by (reason) (rate(marksman_campaign_skipped_total[{RATE}]))", "{{reason}}")]),
            Panel("Dead letters (last hour)", [(
                "sum by (partner) (increase(marksman_campaign_dead_letters_total[1h]))", "{{partner}}")]),
        ]),
        ("Partners", [
            Panel("Partner error share", [(
                f"sum by (partner) (rate(marksman_campaign_partner_errors_total[{RATE}]))"
                f" / sum by (partner) (rate(marksman_campaign_partner_requests_total[{RATE}]))", "{{partner}}")],
                "percentunit", description="Push requests that failed as a whole (timeouts, 5xx, bad replies)."),
            Panel("Partner errors/s by kind", [(
                f"sum by (partner, kind) (rate(marksman_campaign_partner_errors_total[{RATE}]))",
                "{{partner}} {{kind}}")]),
            Panel("Push latency p99", [(
                f"histogram_quantile(0.99, sum by (partner, le) (rate(marksman_campaign_push_seconds_bucket[{RATE}])))",
                "{{partner}}")], "s"),
        ]),
        ("Outcomes", [
            Panel("Responses/s by kind", [(
                f"sum by (kind) (rate(marksman_campaign_responses_total[{RATE}]))", "{{kind}}")]),
            Panel("Attributed revenue per day (minor units)", [(
                "sum by (currency) (increase(marksman_campaign_attributed_revenue_minor_total[1d]))", "{{currency}}")]),
            Panel("Quotes/s (complete or degraded) and rules applied by kind", [
                (f"sum by (result) (rate(marksman_gateway_quotes_total[{RATE}]))", "quotes {{result}}"),
                (f"sum by (kind) (rate(marksman_gateway_quote_rules_applied_total[{RATE}]))", "{{kind}}")]),
        ]),
    ]


BOARDS = [
    Board("marksman-overview", "Marksman / Overview", "Golden signals of every service and the gateway.",
          golden_signals()),
    Board("marksman-ingestion", "Marksman / Ingestion", "Events in, rejections by reason, portraits and segments.",
          ingestion()),
    Board("marksman-recommendations", "Marksman / Recommendations",
          "The recommend service: answers, fallbacks, the serving model and its trainings.", recommendations()),
    Board("marksman-dispatch", "Marksman / Dispatch",
          "The campaign service: deliveries, lag, dead letters, partners, responses and revenue; pricing quotes.",
          dispatch()),
]


def build(board: Board) -> dict[str, Any]:
    builder = (DashboardBuilder(board.title).uid(board.uid).description(board.description)
               .tags(["marksman"]).refresh("30s").time("now-3h", "now")
               .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus")))
    for row_title, panels in board.rows:
        builder = builder.with_row(Row(row_title))
        for spec in panels:
            panel: Any = StatPanel() if spec.stat else TimeseriesPanel()
            panel = panel.title(spec.title).unit(spec.unit).datasource(DATASOURCE).height(8).span(8)
            if spec.description:
                panel = panel.description(spec.description)
            for index, (expr, legend) in enumerate(spec.queries):
                panel = panel.with_target(Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + index))
                                          .datasource(DATASOURCE))
            builder = builder.with_panel(panel)
    body: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    for number, panel_json in enumerate(body["panels"], 1):
        panel_json["id"] = number  # the SDK leaves ids at 0; Grafana links and edits panels by id
    return body


def render() -> dict[str, dict[str, Any]]:
    """file name -> dashboard JSON."""
    return {f"{board.uid.removeprefix('marksman-')}.json": build(board) for board in BOARDS}
