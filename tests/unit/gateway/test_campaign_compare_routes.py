"""Campaign comparison routes through a real gRPC server with a fake CampaignService: the estimate of two audiences
on one budget and two campaigns' reports side by side; 422s naming the field, admin scope, upstream errors."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from marksman.campaign.v1 import campaign_pb2 as pb
from marksman.campaign.v1 import campaign_pb2_grpc
from marksman.common.v1 import common_pb2

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore

TABLE = "estimate (GBP)  rule  model\n"


def money(minor: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=minor, currency="GBP")


class FakeCampaign(campaign_pb2_grpc.CampaignServiceServicer):
    """Answers the two comparison calls; keeps the requests it got."""

    def __init__(self) -> None:
        self.requests: list[Any] = []

    def EstimateAudiences(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if any(a.segment == "ghost" for a in request.audiences):
            context.abort(grpc.StatusCode.NOT_FOUND, "segment 'ghost': there is no segment named 'ghost'")
        if request.scores_segment == "recent":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scores_segment 'recent' is a rule segment")
        first = pb.AudienceEstimate(name=request.audiences[0].name, segment=request.audiences[0].segment, version=3,
                                    members=2000, contacts=1000, scored=900, expected_responses=20.5,
                                    responses_low=11.7, responses_high=29.3, revenue=money(430_500),
                                    cost=money(500_000), revenue_over_cost=0.861, net_roi=-0.139)
        empty = [pb.AudienceEstimate(name=a.name, segment=a.segment, version=4, members=10, revenue=money(0),
                                     cost=money(0)) for a in request.audiences[1:]]
        return pb.EstimateAudiencesResponse(estimates=[first, *empty], table=TABLE)

    def CompareCampaigns(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if request.second_id == 404:
            context.abort(grpc.StatusCode.NOT_FOUND, "there is no campaign 404")

        def report(campaign_id: int, name: str, holdout: int) -> pb.CampaignReport:
            return pb.CampaignReport(campaign_id=campaign_id, name=name, targeted=100, holdout=holdout, sent=90,
                                     responses=5, response_rate=0.05, revenue=money(105_000), cost=money(45_000),
                                     revenue_over_cost=105 / 45, net_roi=60 / 45, holdout_responses=1,
                                     holdout_response_rate=0.1, uplift=-0.05, uplift_ci_low=-0.2,
                                     uplift_ci_high=0.1, attribution_days=7, incremental_revenue=money(0))

        return pb.CompareCampaignsResponse(first=report(request.first_id, "blanket", 10),
                                           second=report(request.second_id, "precision", 0), table="(GBP) ...\n")


@pytest.fixture
def fake() -> Iterator[tuple[FakeCampaign, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = FakeCampaign()
    campaign_pb2_grpc.add_CampaignServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture
def api(settings: GatewaySettings, keys: KeyStore, fake: tuple[FakeCampaign, str]) -> Iterator[TestClient]:
    wired = settings.model_copy(update={"campaign_addr": fake[1]})
    with TestClient(create_app(wired, keys=keys)) as test_client:
        yield test_client


def body(**change: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "audiences": [{"name": "rule", "segment": "bought-90-days", "cost_per_contact_minor": 500},
                      {"name": "model", "segment": "growth-top-400", "cost_per_contact_minor": 1250}],
        "budget_minor": 500_000, "currency": "GBP",
        "history": {"response_rate": 0.02, "revenue_per_responder_minor": 21_000, "mean_score": 0.3},
        "scores_segment": "growth-scored",
    }
    return values | change


def test_estimate_compare_passes_the_request_and_answers_both(api: TestClient, admin: dict[str, str],
                                                              fake: tuple[FakeCampaign, str]) -> None:
    response = api.post("/v1/campaigns/estimate/compare", json=body(), headers=admin)
    assert response.status_code == 200, response.text
    got = response.json()
    rule, model = got["estimates"]
    assert rule == {"name": "rule", "segment": "bought-90-days", "version": 3, "members": 2000, "contacts": 1000,
                    "scored": 900, "expected_responses": 20.5, "responses_ci95": [11.7, 29.3],
                    "expected_response_rate": 0.0205, "expected_revenue": {"amount_minor": 430_500, "currency": "GBP"},
                    "cost": {"amount_minor": 500_000, "currency": "GBP"}, "revenue_over_cost": 0.861, "net_roi": -0.139}
    assert model["contacts"] == 0 and model["expected_response_rate"] is None and model["revenue_over_cost"] is None
    assert got["table"] == TABLE
    sent = fake[0].requests[-1]
    assert [(a.name, a.segment, a.cost_per_contact_minor) for a in sent.audiences] == [
        ("rule", "bought-90-days", 500), ("model", "growth-top-400", 1250)]
    assert (sent.budget.amount_minor, sent.budget.currency, sent.scores_segment) == (500_000, "GBP", "growth-scored")
    assert (sent.history.response_rate, sent.history.revenue_per_responder_minor, sent.history.mean_score) == (
        0.02, 21_000, 0.3)
    # Without mean score nor scores segment: 0 and "" upstream (calibrated scores; rule members unscored).
    history = {"response_rate": 0.02, "revenue_per_responder_minor": 21_000}
    assert api.post("/v1/campaigns/estimate/compare", json={k: v for k, v in body(history=history).items()
                                                             if k != "scores_segment"}, headers=admin).status_code == 200
    assert fake[0].requests[-1].history.mean_score == 0 and fake[0].requests[-1].scores_segment == ""


@pytest.mark.parametrize(("change", "where"), [
    ({"audiences": [{"name": "rule", "segment": "a", "cost_per_contact_minor": 500}]}, ["body", "audiences"]),
    ({"budget_minor": 0}, ["body", "budget_minor"]),
    ({"currency": "gbp"}, ["body", "currency"]),
    ({"history": {"response_rate": 1.5, "revenue_per_responder_minor": 1}}, ["body", "history", "response_rate"]),
    ({"history": {"response_rate": 0.1, "revenue_per_responder_minor": -1}},
     ["body", "history", "revenue_per_responder_minor"]),
    ({"history": {"response_rate": 0.1, "revenue_per_responder_minor": 1, "mean_score": 0}},
     ["body", "history", "mean_score"]),
    ({"audiences": [{"name": "a", "segment": "Bad Name", "cost_per_contact_minor": 1},
                    {"name": "b", "segment": "x", "cost_per_contact_minor": 1}]}, ["body", "audiences", 0, "segment"]),
    ({"audiences": [{"name": "a", "segment": "x", "cost_per_contact_minor": 0},
                    {"name": "b", "segment": "x", "cost_per_contact_minor": 1}]},
     ["body", "audiences", 0, "cost_per_contact_minor"]),
    ({"scores_segment": "UPPER"}, ["body", "scores_segment"]),
    ({"surprise": 1}, ["body", "surprise"]),
])
def test_estimate_compare_422_names_the_field(api: TestClient, admin: dict[str, str], change: dict[str, Any],
                                              where: list[Any], fake: tuple[FakeCampaign, str]) -> None:
    response = api.post("/v1/campaigns/estimate/compare", json=body(**change), headers=admin)
    assert response.status_code == 422, response.text
    assert where in [d["loc"] for d in response.json()["detail"]]
    assert fake[0].requests == []


def test_estimate_compare_same_names_and_upstream_errors(api: TestClient, admin: dict[str, str]) -> None:
    twins = [{"name": "a", "segment": "x", "cost_per_contact_minor": 1}] * 2
    same = api.post("/v1/campaigns/estimate/compare", json=body(audiences=twins), headers=admin)
    assert same.status_code == 422 and "different names" in same.text
    ghost = [{"name": "a", "segment": "ghost", "cost_per_contact_minor": 1},
             {"name": "b", "segment": "x", "cost_per_contact_minor": 1}]
    missing = api.post("/v1/campaigns/estimate/compare", json=body(audiences=ghost), headers=admin)
    assert missing.status_code == 404 and "ghost" in missing.json()["error"]
    rule_scores = api.post("/v1/campaigns/estimate/compare", json=body(scores_segment="recent"), headers=admin)
    assert rule_scores.status_code == 422 and "is a rule segment" in rule_scores.json()["error"]


def test_compare_campaigns(api: TestClient, admin: dict[str, str], fake: tuple[FakeCampaign, str]) -> None:
    response = api.get("/v1/campaigns/1/compare/2", headers=admin)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["first"]["name"] == "blanket" and got["second"]["name"] == "precision"
    assert got["first"]["uplift"] == {"difference": -0.05, "ci95_low": -0.2, "ci95_high": 0.1}
    assert got["second"]["uplift"] is None  # no holdout, no uplift
    assert got["first"]["cost"] == {"amount_minor": 45_000, "currency": "GBP"} and got["table"] == "(GBP) ...\n"
    assert (fake[0].requests[-1].first_id, fake[0].requests[-1].second_id) == (1, 2)
    assert api.get("/v1/campaigns/1/compare/404", headers=admin).status_code == 404
    bad = api.get("/v1/campaigns/0/compare/x", headers=admin)
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("path", "campaign_id"), ("path", "other_id")}


def test_admin_scope_and_not_configured(api: TestClient, platform: dict[str, str], client: TestClient,
                                        admin: dict[str, str]) -> None:
    assert api.post("/v1/campaigns/estimate/compare", json=body(), headers=platform).status_code == 403
    assert api.get("/v1/campaigns/1/compare/2").status_code == 401
    # The default settings have no campaign address.
    assert client.get("/v1/campaigns/1/compare/2", headers=admin).status_code == 503


def test_estimate_one_audience(api: TestClient, admin: dict[str, str], fake: tuple[FakeCampaign, str]) -> None:
    one = {"audience": {"name": "rule", "segment": "bought-90-days", "cost_per_contact_minor": 500},
           "budget_minor": 500_000, "currency": "GBP",
           "history": {"response_rate": 0.02, "revenue_per_responder_minor": 21_000}}
    response = api.post("/v1/campaigns/estimate", json=one, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["contacts"] == 1000 and response.json()["net_roi"] == -0.139
    sent = fake[0].requests[-1]
    assert [a.segment for a in sent.audiences] == ["bought-90-days"] and sent.scores_segment == ""
    missing = api.post("/v1/campaigns/estimate", json={k: v for k, v in one.items() if k != "audience"}, headers=admin)
    assert missing.status_code == 422 and ["body", "audience"] in [d["loc"] for d in missing.json()["detail"]]
