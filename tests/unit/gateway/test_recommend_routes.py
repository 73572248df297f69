"""Recommendation routes through a real gRPC server with a fake RecommendService: 422s naming the field, scopes,
per-item catalogue results, training answers, model versions, 503 when not configured, erasure reaching it."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from marksman.common.v1 import common_pb2
from marksman.recommend.v1 import recommend_pb2 as pb
from marksman.recommend.v1 import recommend_pb2_grpc

from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.store import KeyStore
from tests.unit.gateway.gateway_fakes import FakeServer

KNOWN = "c-1"


class FakeRecommend(recommend_pb2_grpc.RecommendServiceServicer):
    """Answers like the real service for the gateway's purposes; keeps the requests it got."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.training = False
        self.erased: list[str] = []

    def Recommend(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if request.k > 100:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "k must be between 1 and 100")
        fallback = "" if request.customer_id == KNOWN else "popular_overall"
        items = [pb.ScoredItem(sku=f"S{n}", score=1.0 - n / 10) for n in range(request.k)]
        return pb.RecommendResponse(items=items, model_version=3, fallback=fallback)

    def SimilarItems(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if request.sku == "NOPE":
            context.abort(grpc.StatusCode.NOT_FOUND, "there is no item 'NOPE' in the model or the catalogue")
        return pb.SimilarItemsResponse(items=[pb.ScoredItem(sku="S9", score=0.5)], model_version=3)

    def UpsertItems(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        results = [pb.ItemResult(sku=i.sku, index=n, ok=i.sku != "REFUSED", created=True,
                                 error="refused by the service" if i.sku == "REFUSED" else "")
                   for n, i in enumerate(request.items)]
        ok = sum(r.ok for r in results)
        return pb.UpsertItemsResponse(results=list(reversed(results)), accepted=ok, rejected=len(results) - ok)

    def GetItem(self, request: Any, context: Any) -> Any:
        if request.sku != "85123A":
            context.abort(grpc.StatusCode.NOT_FOUND, f"there is no item {request.sku!r}")
        return pb.GetItemResponse(item=pb.Item(sku="85123A", category="Home", in_stock=True, price_band="p3",
                                               price=common_pb2.Money(amount_minor=295, currency="GBP"),
                                               source=pb.ITEM_SOURCE_EVENTS))

    def _version(self, number: int, state: int) -> pb.ModelVersion:
        report = pb.OfflineReport(k=10, model=pb.RankingMetrics(precision_at_k=0.07, recall_at_k=0.1, auc=0.8),
                                  popularity=pb.RankingMetrics(precision_at_k=0.035, auc=float("nan")),
                                  customers_evaluated=1200)
        report.cutoff.FromJsonString("2011-11-01T00:00:00Z")
        model = pb.ModelVersion(version=number, state=state, reason="first model", params=pb.TrainParams(epochs=20),
                                interactions=390_000, report=report, compared_version=number - 1 if number > 1 else 0)
        model.started_at.FromJsonString("2011-12-10T00:00:00Z")
        return model

    def TrainModel(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if self.training:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "a model is training now; wait for it to finish")
        state = pb.MODEL_STATE_SERVING if request.wait else pb.MODEL_STATE_TRAINING
        return pb.TrainModelResponse(model=self._version(4, state))

    def ListModels(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        return pb.ListModelsResponse(models=[self._version(2, pb.MODEL_STATE_SERVING),
                                             self._version(1, pb.MODEL_STATE_SUPERSEDED)], serving_version=2)

    def GetModel(self, request: Any, context: Any) -> Any:
        if request.version != 2:
            context.abort(grpc.StatusCode.NOT_FOUND, f"there is no model version {request.version}")
        return pb.GetModelResponse(model=self._version(2, pb.MODEL_STATE_SERVING))

    def EraseCustomer(self, request: Any, context: Any) -> Any:
        self.erased.append(request.customer_id)
        return common_pb2.EraseCustomerResponse(erased=True, records_deleted=2)


@pytest.fixture
def fake() -> Iterator[tuple[FakeRecommend, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = FakeRecommend()
    recommend_pb2_grpc.add_RecommendServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture
def rec(settings: GatewaySettings, keys: KeyStore, fake: tuple[FakeRecommend, str]) -> Iterator[TestClient]:
    wired = settings.model_copy(update={"recommend_addr": fake[1], "ingest_timeout_s": 5.0})
    with TestClient(create_app(wired, keys=keys)) as test_client:
        yield test_client


def field_of(response: Any) -> list[list[str]]:
    return [d["loc"] for d in response.json()["detail"]]


def test_recommendations_known_and_unknown(rec: TestClient, platform: dict[str, str],
                                           fake: tuple[FakeRecommend, str]) -> None:
    known = rec.get(f"/v1/customers/{KNOWN}/recommendations?k=3", headers=platform)
    assert known.status_code == 200, known.text
    body = known.json()
    assert body["fallback"] is None and body["model_version"] == 3 and [i["sku"] for i in body["items"]] == [
        "S0", "S1", "S2"]
    unknown = rec.get("/v1/customers/stranger/recommendations", headers=platform).json()
    assert unknown["fallback"] == "popular_overall" and len(unknown["items"]) == 10
    rec.get(f"/v1/customers/{KNOWN}/recommendations?k=5&category=Home&category=Kitchen&exclude_category=Toys"
            "&exclude=85123A&in_stock=true&exclude_bought=false&within_budget=true&segment=champions",
            headers=platform)
    sent = fake[0].requests[-1]
    assert list(sent.filters.categories_in) == ["Home", "Kitchen"] and list(sent.filters.categories_not_in) == ["Toys"]
    assert list(sent.filters.exclude_skus) == ["85123A"] and sent.filters.only_in_stock
    assert not sent.filters.exclude_bought and sent.filters.respect_purchasing_power and sent.segment == "champions"


@pytest.mark.parametrize(("path", "field"), [
    ("/v1/customers/c-1/recommendations?k=0", ["query", "k"]),
    ("/v1/customers/c-1/recommendations?k=10000", ["query", "k"]),
    ("/v1/customers/c-1/recommendations?k=ten", ["query", "k"]),
    ("/v1/customers/bad%20id/recommendations", ["path", "customer_id"]),
    ("/v1/customers/c-1/recommendations?segment=VIP!", ["query", "segment"]),
    ("/v1/items/" + "x" * 65 + "/similar", ["path", "sku"]),
    ("/v1/items/85123A/similar?k=101", ["query", "k"]),
])
def test_bad_parameters_are_422_naming_the_field(rec: TestClient, platform: dict[str, str], path: str,
                                                 field: list[str]) -> None:
    response = rec.get(path, headers=platform)
    assert response.status_code == 422, response.text
    assert field in field_of(response)


def test_scopes(rec: TestClient, platform: dict[str, str], admin: dict[str, str]) -> None:
    assert rec.get("/v1/customers/c-1/recommendations").status_code == 401
    assert rec.post("/v1/models/train", json={}, headers=platform).status_code == 403
    assert rec.get("/v1/models", headers=platform).status_code == 403
    assert rec.get("/v1/models/2", headers=platform).status_code == 403
    assert rec.get("/v1/customers/c-1/recommendations", headers=admin).status_code == 200
    assert rec.post("/v1/items", json={"items": []}, headers=platform).status_code == 200


def test_similar_items(rec: TestClient, platform: dict[str, str]) -> None:
    similar = rec.get("/v1/items/85123A/similar?k=1&category=Home", headers=platform)
    assert similar.status_code == 200 and similar.json() == {
        "sku": "85123A", "model_version": 3, "fallback": None, "items": [{"sku": "S9", "score": 0.5}],
        "channel": {"name": "web", "rule": None, "rule_set_version": None, "filters": None}}
    missing = rec.get("/v1/items/NOPE/similar", headers=platform)
    assert missing.status_code == 404 and "NOPE" in missing.json()["error"]


def test_items_are_checked_one_by_one(rec: TestClient, platform: dict[str, str],
                                     fake: tuple[FakeRecommend, str]) -> None:
    body = {"items": [
        {"sku": "A1", "category": "Home", "price": {"amount_minor": 250, "currency": "GBP"}, "tags": ["gift"]},
        {"sku": "A2", "price": {"amount_minor": -1, "currency": "GBP"}},
        {"sku": "REFUSED"},
        {"category": "no sku"},
        {"sku": "A3", "in_stock": False, "hidden": True},
    ]}
    response = rec.post("/v1/items", json=body, headers=platform)
    assert response.status_code == 207, response.text
    out = response.json()
    assert (out["accepted"], out["rejected"]) == (2, 3)
    by_index = {r["index"]: r for r in out["results"]}
    assert by_index[0]["status"] == "accepted" and by_index[0]["created"]
    assert by_index[1]["status"] == "rejected" and "price.amount_minor" in by_index[1]["reason"]
    assert by_index[2]["reason"] == "refused by the service" and by_index[3]["reason"].startswith("sku")
    assert by_index[4]["status"] == "accepted"
    assert fake[0].requests[-1].items[-1].hidden and not fake[0].requests[-1].items[0].hidden
    bad = rec.post("/v1/items", json={"items": [{"sku": ""}]}, headers=platform)
    assert bad.status_code == 422 and bad.json()["rejected"] == 1
    assert rec.post("/v1/items", content=b'{"items": [', headers={**platform, "Content-Type": "application/json"}
                    ).status_code == 400
    assert rec.post("/v1/items", json={"things": []}, headers=platform).status_code == 422
    too_many = {"items": [{"sku": f"S{n}"} for n in range(5001)]}
    assert rec.post("/v1/items", json=too_many, headers=platform).status_code == 413


def test_get_item(rec: TestClient, platform: dict[str, str]) -> None:
    item = rec.get("/v1/items/85123A", headers=platform)
    assert item.status_code == 200 and item.json()["price"] == {"amount_minor": 295, "currency": "GBP"}
    assert item.json()["source"] == "events" and item.json()["price_band"] == "p3"
    assert rec.get("/v1/items/OTHER", headers=platform).status_code == 404


def test_training_and_models(rec: TestClient, admin: dict[str, str], fake: tuple[FakeRecommend, str]) -> None:
    started = rec.post("/v1/models/train", json={"params": {"epochs": 30, "loss": "bpr"}, "cutoff": "2011-11-01T00:00:00Z",
                                                 "train_until_cutoff": True}, headers=admin)
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "training" and started.json()["version"] == 4
    sent = fake[0].requests[-1]
    assert (sent.params.epochs, sent.params.loss, sent.train_until_cutoff) == (30, "bpr", True)
    assert not sent.params.HasField("components") and sent.cutoff.ToJsonString() == "2011-11-01T00:00:00Z"
    done = rec.post("/v1/models/train", json={"wait": True}, headers=admin)
    assert done.status_code == 200 and done.json()["state"] == "serving"
    assert rec.post("/v1/models/train", headers=admin).status_code == 202  # no body: every default
    assert rec.post("/v1/models/train", json={"params": {"epochs": 0}}, headers=admin).status_code == 422
    assert rec.post("/v1/models/train", json={"cutoff": "2011-11-01"}, headers=admin).status_code == 422
    fake[0].training = True
    busy = rec.post("/v1/models/train", json={}, headers=admin)
    assert busy.status_code == 409 and "training now" in busy.json()["error"]

    models = rec.get("/v1/models?limit=5", headers=admin).json()
    assert models["serving_version"] == 2 and [m["version"] for m in models["models"]] == [2, 1]
    first = models["models"][0]
    assert first["evaluation"]["model"]["precision_at_k"] == 0.07 and first["evaluation"]["popularity"]["auc"] is None
    assert first["cutoff"].startswith("2011-11-01") and first["params"] == {"epochs": 20}
    assert first["compared_with_serving"]["version"] == 1
    assert rec.get("/v1/models/2", headers=admin).json()["state"] == "serving"
    assert rec.get("/v1/models/7", headers=admin).status_code == 404
    assert ["path", "version"] in field_of(rec.get("/v1/models/0", headers=admin))


def test_not_configured_is_503(client: TestClient, platform: dict[str, str]) -> None:
    response = client.get("/v1/customers/c-1/recommendations", headers=platform)
    assert response.status_code == 503 and "recommend service not configured" in response.json()["error"]


def test_erasure_reaches_recommend(rec: TestClient, admin: dict[str, str], fake: tuple[FakeRecommend, str],
                                   upstream: FakeServer) -> None:
    erased = rec.delete("/v1/customers/c-9", headers=admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["services"]["recommend"] == 2 and fake[0].erased == ["c-9"]
