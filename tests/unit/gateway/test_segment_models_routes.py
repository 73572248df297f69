"""Predictive model routes and model audiences through the gateway, against a fake SegmentService over real gRPC:
admin scope, 422s before any call, quality fields (NaN as null), the training deadline, scores in member pages."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from marksman.segment.v1 import segment_pb2

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import NOW, FakeSegment, FakeServer, start_fake_server, ts

GOALS = ["retention", "growth", "growth_new_category", "activation", "acquisition"]
MODEL_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/predictive-models/retention/train", None),
    ("GET", "/v1/predictive-models", None),
    ("GET", "/v1/predictive-models/retention", None),
    ("POST", "/v1/segments", {"name": "lapsing", "model": {"goal": "retention", "top_k": 5}}),
]


class FakeModels(FakeSegment):
    """FakeSegment that also trains (instantly) and serves model audiences with scores."""

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, list[segment_pb2.PredictiveModel]] = {}
        self.train_requests: list[segment_pb2.TrainModelRequest] = []

    def TrainModel(self, request: Any, context: Any) -> Any:
        self._seen("TrainModel", context)
        self.train_requests.append(request)
        if request.seed_segment and request.seed_segment not in self.segments:
            context.abort(grpc.StatusCode.NOT_FOUND, f"there is no segment named '{request.seed_segment}'")
        history = self.models.setdefault(request.goal, [])
        # growth_new_category: a held-out set with one class (no AUC); activation: no better than chance.
        auc = {"growth_new_category": math.nan, "activation": 0.51}.get(request.goal, 0.74)
        model = segment_pb2.PredictiveModel(
            goal=request.goal, version=len(history) + 1, trained_at=ts(NOW), horizon_days=request.horizon_days or 90,
            seed_segment=request.seed_segment, seed_version=1 if request.seed_segment else 0,
            parameters='{"estimator": "HistGradientBoostingClassifier", "params": {"max_iter": 150}}',
            lines=401564, customers=4339, train_size=1994, train_base_rate=0.42, fit_seconds=0.2, seconds=1.1,
            evaluation="out of time", features=["recency_days", "frequency"], current=True,
            quality=segment_pb2.ModelQuality(auc=auc, auc_se=0.013 if auc == auc else math.nan,
                                             top_decile_lift=1.87 if auc > 0.6 else math.nan, base_rate=0.31,
                                             positives=588, held_out=1896, better_than_chance=auc > 0.6))
        for old in history:
            old.current = False
        history.append(model)
        return segment_pb2.TrainModelResponse(model=model)

    def ListModels(self, request: Any, context: Any) -> Any:
        self._seen("ListModels", context)
        return segment_pb2.ListModelsResponse(models=[self.models[g][-1] for g in GOALS if g in self.models],
                                              untrained_goals=[g for g in GOALS if g not in self.models])

    def GetModel(self, request: Any, context: Any) -> Any:
        self._seen("GetModel", context)
        if request.goal not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no {request.goal} model has been trained yet")
        versions = list(reversed(self.models[request.goal]))
        return segment_pb2.GetModelResponse(current=versions[0], versions=versions)

    def CreateSegment(self, request: Any, context: Any) -> Any:
        if not request.HasField("model"):
            return super().CreateSegment(request, context)
        self._seen("CreateSegment", context)
        segment = segment_pb2.Segment(name=request.name, kind=segment_pb2.SEGMENT_KIND_MODEL, model=request.model,
                                      description=request.description, created_at=ts(NOW))
        self.segments[request.name] = segment
        self.versions[request.name] = []
        return segment_pb2.CreateSegmentResponse(segment=segment)

    def RefreshSegment(self, request: Any, context: Any) -> Any:
        segment = self._segment(request.name, context)
        if not segment.HasField("model"):
            return super().RefreshSegment(request, context)
        goal = segment.model.goal
        if goal not in self.models:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"no {goal} model has been trained yet; train one first")
        response = super().RefreshSegment(request, context)
        number = self.models[goal][-1].version
        for version in (response.version, segment.current, self.versions[request.name][-1][0]):
            version.model_version = number
        return response

    def StreamMembers(self, request: Any, context: Any) -> Any:
        scored = self._segment(request.name, context).HasField("model")
        for page in super().StreamMembers(request, context):
            if scored:
                page.scores.extend(0.9 - 0.01 * n for n in range(len(page.customer_ids)))
            yield page


@pytest.fixture
def models_upstream() -> Iterator[FakeServer]:
    running = start_fake_server(FakeModels())
    yield running
    running.stop()


@pytest.fixture
def fake(models_upstream: FakeServer) -> FakeModels:
    assert isinstance(models_upstream.segment, FakeModels)
    return models_upstream.segment


@pytest.fixture
def gw(settings: GatewaySettings, keys: KeyStore, models_upstream: FakeServer) -> Iterator[TestClient]:
    wired = settings.model_copy(update={"segment_addr": models_upstream.address, "profile_addr": models_upstream.address,
                                        "training_timeout_s": 60.0})
    with TestClient(create_app(wired, keys=keys)) as test_client:
        yield test_client


def test_model_routes_need_the_admin_scope(gw: TestClient, platform: dict[str, str], fake: FakeModels) -> None:
    for method, path, body in MODEL_ROUTES:
        assert gw.request(method, path, json=body).status_code == 401, path
        response = gw.request(method, path, json=body, headers=platform)
        assert response.status_code == 403 and "'admin' scope" in response.json()["error"], path
    assert fake.deadlines == {} and fake.train_requests == []


def test_without_the_segment_service_they_are_503(client: TestClient, admin: dict[str, str]) -> None:
    for method, path, body in MODEL_ROUTES:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == 503 and response.json()["error"] == "segment service not configured", path


def test_train_returns_the_held_out_quality(gw: TestClient, admin: dict[str, str], fake: FakeModels) -> None:
    response = gw.post("/v1/predictive-models/retention/train", headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["quality"] == {"auc": 0.74, "auc_se": 0.013, "top_decile_lift": 1.87, "base_rate": 0.31,
                               "positives": 588, "held_out": 1896, "better_than_chance": True}
    assert (body["goal"], body["version"], body["current"], body["horizon_days"]) == ("retention", 1, True, 90)
    assert (body["seed_segment"], body["seed_version"], body["trained_at"]) == (None, None, "2011-12-10T00:00:00Z")
    assert (body["lines"], body["customers"], body["train_size"], body["seconds"]) == (401564, 4339, 1994, 1.1)
    assert body["parameters"] == {"estimator": "HistGradientBoostingClassifier", "params": {"max_iter": 150}}
    assert fake.train_requests[-1] == segment_pb2.TrainModelRequest(goal="retention")
    # Training reads every order line: it gets the training deadline, not the seconds of an ordinary call.
    deadline = fake.deadlines["TrainModel"]
    assert deadline is not None and 30 < deadline <= 60

    seeded = gw.post("/v1/predictive-models/acquisition/train", json={"seed_segment": "rfm_champions"},
                     headers=admin)
    assert seeded.status_code == 201 and seeded.json()["seed_segment"] == "rfm_champions"
    windowed = gw.post("/v1/predictive-models/growth/train", json={"horizon_days": 30}, headers=admin)
    assert windowed.status_code == 201 and fake.train_requests[-1].horizon_days == 30
    missing = gw.post("/v1/predictive-models/acquisition/train", json={"seed_segment": "nope"}, headers=admin)
    assert missing.status_code == 404 and missing.json()["error"] == "there is no segment named 'nope'"


def test_a_model_no_better_than_chance_says_so(gw: TestClient, admin: dict[str, str]) -> None:
    weak = gw.post("/v1/predictive-models/activation/train", headers=admin).json()
    assert weak["quality"]["better_than_chance"] is False and weak["quality"]["auc"] == 0.51
    single = gw.post("/v1/predictive-models/growth_new_category/train", headers=admin).json()["quality"]
    assert (single["auc"], single["auc_se"], single["top_decile_lift"], single["better_than_chance"]) == (
        None, None, None, False)


def test_bad_training_requests_are_422_before_any_call(gw: TestClient, admin: dict[str, str],
                                                       fake: FakeModels) -> None:
    unknown = gw.post("/v1/predictive-models/churn/train", headers=admin)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["path", "goal"]
    assert "'retention'" in unknown.json()["detail"][0]["msg"]
    for body, field in [({"horizon_days": 3}, "horizon_days"), ({"horizon_days": 400}, "horizon_days"),
                        ({"seed_segment": "Not A Name"}, "seed_segment"), ({"epochs": 5}, "epochs")]:
        response = gw.post("/v1/predictive-models/retention/train", json=body, headers=admin)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", field], body
    assert gw.get("/v1/predictive-models/churn", headers=admin).status_code == 422
    assert fake.train_requests == []


def test_list_and_get_models(gw: TestClient, admin: dict[str, str]) -> None:
    empty = gw.get("/v1/predictive-models", headers=admin)
    assert empty.status_code == 200 and empty.json() == {"models": [], "untrained_goals": GOALS}
    missing = gw.get("/v1/predictive-models/retention", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"] == "no retention model has been trained yet"
    for _ in range(2):
        gw.post("/v1/predictive-models/retention/train", headers=admin)
    gw.post("/v1/predictive-models/activation/train", headers=admin)
    listed = gw.get("/v1/predictive-models", headers=admin).json()
    assert [(m["goal"], m["version"], m["quality"]["better_than_chance"]) for m in listed["models"]] == [
        ("retention", 2, True), ("activation", 1, False)]
    assert listed["untrained_goals"] == ["growth", "growth_new_category", "acquisition"]
    one = gw.get("/v1/predictive-models/retention", headers=admin).json()
    assert one["goal"] == "retention" and one["current"]["version"] == 2
    assert [(v["version"], v["current"]) for v in one["versions"]] == [(2, True), (1, False)]


def test_a_model_audience_is_created_refreshed_and_paged_with_scores(gw: TestClient, admin: dict[str, str],
                                                                   fake: FakeModels) -> None:
    body = {"name": "lapsing", "model": {"goal": "retention", "top_k": 500}, "description": "likely to lapse"}
    created = gw.post("/v1/segments", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["kind"] == "model" and created.json()["rule"] == ""
    assert created.json()["model"] == {"goal": "retention", "top_k": 500, "threshold": None}
    sent = fake.segments["lapsing"].model
    assert (sent.goal, sent.WhichOneof("cut"), sent.top_k) == ("retention", "top_k", 500)

    early = gw.post("/v1/segments/lapsing/refresh", headers=admin)
    assert early.status_code == 409 and "no retention model has been trained yet" in early.json()["error"]
    gw.post("/v1/predictive-models/retention/train", headers=admin)
    refreshed = gw.post("/v1/segments/lapsing/refresh", headers=admin)
    assert refreshed.status_code == 200 and refreshed.json()["model_version"] == 1
    page = gw.get("/v1/segments/lapsing/versions/1/members?limit=4", headers=admin).json()
    assert page["customer_ids"] == ["c-1", "c-10", "c-11", "c-12"] and page["scores"] == [0.9, 0.89, 0.88, 0.87]

    threshold = gw.post("/v1/segments", json={"name": "likely", "model": {"goal": "growth", "threshold": 0.6}},
                        headers=admin)
    assert threshold.status_code == 201 and threshold.json()["model"] == {
        "goal": "growth", "top_k": None, "threshold": 0.6}
    assert fake.segments["likely"].model.WhichOneof("cut") == "threshold"
    listed = {s["name"]: s for s in gw.get("/v1/segments", headers=admin).json()["segments"]}
    assert listed["lapsing"]["current"]["model_version"] == 1 and listed["rfm_champions"]["model"] is None


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "x", "rule": "frequency > 1", "model": {"goal": "retention", "top_k": 5}}, "exactly one of rule and model"),
    ({"name": "x"}, "exactly one of rule and model"),
    ({"name": "x", "model": {"goal": "retention"}}, "exactly one of top_k and threshold"),
    ({"name": "x", "model": {"goal": "retention", "top_k": 5, "threshold": 0.5}}, "exactly one of top_k and threshold"),
    ({"name": "x", "model": {"goal": "churn", "top_k": 5}}, "'retention'"),
    ({"name": "x", "model": {"goal": "retention", "threshold": 1.5}}, "less than or equal to 1"),
    ({"name": "x", "model": {"goal": "retention", "threshold": -0.1}}, "greater than or equal to 0"),
    ({"name": "x", "model": {"goal": "retention", "top_k": 0}}, "greater than or equal to 1"),
    ({"name": "x", "model": {"goal": "retention", "top_k": 5, "k": 1}}, "Extra inputs"),
])
def test_bad_model_audiences_are_422_before_any_call(gw: TestClient, admin: dict[str, str], fake: FakeModels,
                                                     body: dict[str, Any], words: str) -> None:
    response = gw.post("/v1/segments", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert words in " ".join(d["msg"] for d in response.json()["detail"]), response.json()
    assert "CreateSegment" not in fake.deadlines
