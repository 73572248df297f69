"""Recommendation routes: a customer's top-k and an item's similar items (platform), the catalogue (platform),
training and model versions (admin)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.recommend.v1 import recommend_pb2 as pb
from marksman.recommend.v1 import recommend_pb2_grpc
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from services.gateway.auth import ADMIN, PLATFORM, require
from services.gateway.batch import describe
from services.gateway.channel_filters import ChannelAppliedOut, ChannelParam, for_request, merged
from services.gateway.clients import Upstreams
from services.gateway.deps import upstreams
from services.gateway.errors import ApiError, UpstreamError
from services.gateway.metrics import FALLBACKS
from services.gateway.openapi import body_schema, either, error_example, errors, ok
from services.gateway.popular import FALLBACK, fallback_answer
from services.gateway.routes.customers import CustomerId
from services.gateway.schemas import CURRENCY_PATTERN, AwareDatetime, MoneyOut, Strict

if TYPE_CHECKING:
    RecommendStub = recommend_pb2_grpc.RecommendServiceAsyncStub
else:  # the async stub class exists for type checkers only; FastAPI evaluates annotations at runtime
    RecommendStub = recommend_pb2_grpc.RecommendServiceStub

SERVICE = "recommend"
MAX_ITEMS = 5000
MAX_K = 100
MAX_FILTER_VALUES = 1000
router = APIRouter(tags=["recommendations"])
Clients = Annotated[Upstreams, Depends(upstreams)]
Platform = [Depends(require(PLATFORM))]
Admin = [Depends(require(ADMIN))]

# As event lines take SKUs: 1-64 characters, no control characters.
SKU_PATTERN = r"^[^\x00-\x1f\x7f]{1,64}$"
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=SKU_PATTERN)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=128)]
SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN, description="The item's SKU.",
                              examples=["85123A"])]
K = Annotated[int, Query(ge=1, le=MAX_K, description=f"How many items (1-{MAX_K}).")]
Categories = Annotated[list[str] | None, Query(max_length=MAX_FILTER_VALUES,
                                               description="Only these categories (repeat the parameter).")]
NotCategories = Annotated[list[str] | None, Query(max_length=MAX_FILTER_VALUES,
                                                  description="Never these categories (repeat the parameter).")]
Excluded = Annotated[list[str] | None, Query(max_length=MAX_FILTER_VALUES,
                                             description="SKUs never to return (repeat the parameter).")]
InStock = Annotated[bool, Query(description="Only items in stock.")]

_SOURCES = {pb.ITEM_SOURCE_CATALOGUE: "catalogue", pb.ITEM_SOURCE_EVENTS: "events"}
_STATES = {pb.MODEL_STATE_TRAINING: "training", pb.MODEL_STATE_SERVING: "serving",
           pb.MODEL_STATE_REJECTED: "rejected", pb.MODEL_STATE_FAILED: "failed",
           pb.MODEL_STATE_SUPERSEDED: "superseded"}


def recommend_stub(clients: Clients) -> RecommendStub:
    """The recommend service's stub; 503 when no recommend address is configured (not deployed here)."""
    if clients.recommend is None:
        raise ApiError(503, "recommend service not configured",
                       "the gateway has no MARKSMAN_GATEWAY_RECOMMEND_ADDR; recommendation routes are off")
    return clients.recommend


Recommend = Annotated[RecommendStub, Depends(recommend_stub)]


# ---- bodies ----

class MoneyIn(Strict):
    amount_minor: Annotated[int, Field(ge=0, le=10**13)]
    currency: Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]


class ItemIn(Strict):
    sku: Sku
    category: Annotated[str, StringConstraints(max_length=128)] = ""
    brand: Annotated[str, StringConstraints(max_length=128)] = ""
    price: MoneyIn | None = Field(default=None, description="The list price, in minor units.")
    in_stock: bool = True
    tags: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
                    Field(default_factory=list, max_length=32)]
    hidden: bool = Field(default=False, description="Not merchandise (postage, fees, gift wrap): never "
                                                    "recommended, and its purchases are not trained on.")


class ItemsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [
        {"sku": "85123A", "category": "Home", "brand": "", "price": {"amount_minor": 295, "currency": "GBP"},
         "in_stock": True, "tags": ["heart", "holder"]}]}]})

    items: Annotated[list[ItemIn], Field(max_length=MAX_ITEMS)]


ITEM = TypeAdapter(ItemIn)


class ItemResultOut(BaseModel):
    index: int
    sku: str | None
    status: Literal["accepted", "rejected"]
    created: bool
    reason: str | None


class ItemsOut(BaseModel):
    accepted: int
    rejected: int
    results: list[ItemResultOut]


class ItemOut(BaseModel):
    sku: str
    category: str
    brand: str
    price: MoneyOut | None
    in_stock: bool
    tags: list[str]
    price_band: str | None = Field(description="p1 (cheapest fifth of its category) to p5; null before a training.")
    source: Literal["catalogue", "events"]
    updated_at: datetime | None
    hidden: bool


class ScoredOut(BaseModel):
    sku: str
    score: float


class RecommendationsOut(BaseModel):
    customer_id: str
    model_version: int | None = Field(description="null: popular items, no model trained yet.")
    fallback: str | None = Field(description="null when the customer's own model row ranked the items; else "
                                             "popular_in_segment, popular_overall or item_features; "
                                             f"`{FALLBACK}` when recommend could not answer (degraded).")
    items: list[ScoredOut]
    degraded: bool = Field(False, description="true: recommend could not answer (down, too slow, or its circuit "
                                              "open) and the items are the popular list the gateway last got "
                                              "from it.")
    degraded_reason: str | None = Field(None, description="Why recommend could not answer (degraded only).")
    relaxed_filters: list[str] = Field(
        default_factory=list, description="Filters the degraded answer could not apply (exclude_bought, "
                                          "within_budget, segment). A request with category or stock filters "
                                          "gets 503 instead of a degraded answer.")
    fallback_age_s: float | None = Field(None, description="Age of the popular list (degraded only).")
    channel: ChannelAppliedOut = Field(description="The sales channel and the channel rule whose filters applied.")


class SimilarOut(BaseModel):
    sku: str
    model_version: int | None
    fallback: str | None
    items: list[ScoredOut]
    channel: ChannelAppliedOut = Field(description="The sales channel and the channel rule whose filters applied.")


class TrainParamsIn(Strict):
    components: Annotated[int, Field(ge=1, le=512)] | None = None
    loss: Literal["warp", "bpr", "logistic", "warp-kos"] | None = None
    epochs: Annotated[int, Field(ge=1, le=1000)] | None = None
    learning_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    item_alpha: Annotated[float, Field(ge=0, le=1)] | None = None
    user_alpha: Annotated[float, Field(ge=0, le=1)] | None = None
    use_item_features: bool | None = None
    use_user_features: bool | None = None
    view_weight: Annotated[float, Field(ge=0, le=1000)] | None = None
    cart_weight: Annotated[float, Field(ge=0, le=1000)] | None = None
    order_weight: Annotated[float, Field(ge=0, le=1000)] | None = None
    quantity_scale: Literal["binary", "log", "linear"] | None = None
    half_life_days: Annotated[float, Field(ge=0, le=36500)] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None


class TrainIn(Strict):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [
        {"params": {"components": 30, "epochs": 10, "half_life_days": 180}, "wait": True}]})

    params: TrainParamsIn = Field(default_factory=TrainParamsIn, description="Unset fields take the defaults.")
    force: bool = Field(default=False, description="Serve it even when it is worse than the serving model.")
    cutoff: AwareDatetime | None = Field(
        default=None, description="Train before, evaluate on the purchases after it; default: the time that holds "
                                  "out the last 10% of orders.")
    train_until_cutoff: bool = Field(default=False, description="Serve the model trained before the cutoff "
                                                                "(a fair side-by-side with later purchases).")
    wait: bool = Field(default=False, description="Answer when the run has ended (within the gateway's long "
                                                  "deadline) rather than when it has started.")


class MetricsOut(BaseModel):
    precision_at_k: float | None
    recall_at_k: float | None
    auc: float | None
    coverage: float | None


class EvaluationOut(BaseModel):
    k: int
    cutoff: datetime | None
    model: MetricsOut | None
    popularity: MetricsOut | None
    customers_evaluated: int
    test_purchases: int
    train_interactions: int


class ComparedOut(MetricsOut):
    version: int


class ModelOut(BaseModel):
    version: int
    state: Literal["training", "serving", "rejected", "failed", "superseded"]
    reason: str
    forced: bool
    params: dict[str, Any]
    cutoff: datetime | None = Field(description="The split the evaluation used.")
    train_until_cutoff: bool
    interactions: int
    customers: int
    items: int
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float
    evaluation: EvaluationOut | None
    compared_with_serving: ComparedOut | None = Field(
        description="The serving version's parameters re-trained on the same split, as the gate compared them.")


class ModelsOut(BaseModel):
    serving_version: int | None
    models: list[ModelOut]


# ---- conversions ----

def _time(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def _number(value: float) -> float | None:
    return None if value != value else value  # NaN (nothing evaluated) as null


def _metrics(m: pb.RankingMetrics) -> dict[str, float | None]:
    return {"precision_at_k": _number(m.precision_at_k), "recall_at_k": _number(m.recall_at_k),
            "auc": _number(m.auc), "coverage": _number(m.coverage)}


def model_out(m: pb.ModelVersion) -> dict[str, Any]:
    report = m.report if m.HasField("report") else None
    return {
        "version": m.version, "state": _STATES.get(m.state, "failed"), "reason": m.reason, "forced": m.forced,
        "params": {field.name: value for field, value in m.params.ListFields()},
        "cutoff": _time(report.cutoff, report.HasField("cutoff")) if report else None,
        "train_until_cutoff": m.train_until_cutoff, "interactions": m.interactions, "customers": m.customers,
        "items": m.items, "started_at": _time(m.started_at, m.HasField("started_at")),
        "finished_at": _time(m.finished_at, m.HasField("finished_at")), "seconds": m.seconds,
        "evaluation": None if report is None else {
            "k": report.k, "cutoff": _time(report.cutoff, report.HasField("cutoff")),
            "model": _metrics(report.model), "popularity": _metrics(report.popularity),
            "customers_evaluated": report.customers_evaluated, "test_purchases": report.test_purchases,
            "train_interactions": report.train_interactions,
        },
        "compared_with_serving": {"version": m.compared_version, **_metrics(m.compared_serving)}
        if m.compared_version else None,
    }


def item_out(item: pb.Item) -> dict[str, Any]:
    price = item.price if item.price.currency or item.price.amount_minor else None
    return {
        "sku": item.sku, "category": item.category, "brand": item.brand,
        "price": None if price is None else {"amount_minor": price.amount_minor, "currency": price.currency},
        "in_stock": item.in_stock, "tags": list(item.tags), "price_band": item.price_band or None,
        "source": _SOURCES.get(item.source, "catalogue"),
        "updated_at": _time(item.updated_at, item.HasField("updated_at")), "hidden": item.hidden,
    }


def item_to_proto(item: ItemIn) -> pb.Item:
    price = common_pb2.Money(amount_minor=item.price.amount_minor, currency=item.price.currency) if item.price else None
    return pb.Item(sku=item.sku, category=item.category, brand=item.brand, price=price, in_stock=item.in_stock,
                   tags=item.tags, hidden=item.hidden)


def _filters(categories: list[str] | None, not_categories: list[str] | None, excluded: list[str] | None,
             in_stock: bool, exclude_bought: bool = False, within_budget: bool = False) -> pb.Filters:
    return pb.Filters(categories_in=categories or [], categories_not_in=not_categories or [],
                      exclude_skus=excluded or [], only_in_stock=in_stock, exclude_bought=exclude_bought,
                      respect_purchasing_power=within_budget)


def _json(body: Any, status: int = 200) -> Response:
    # Built directly (no response-model validation): these routes answer a product page.
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _ranked(items: Any) -> list[dict[str, Any]]:
    return [{"sku": i.sku, "score": i.score} for i in items]


# ---- routes ----

NOT_CONFIGURED_503 = error_example(
    503, "The recommend service is unavailable or not configured here.",
    {"error": "recommend service not configured",
     "detail": "the gateway has no MARKSMAN_GATEWAY_RECOMMEND_ADDR; recommendation routes are off",
     "request_id": "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"},
)


# Answers of the demo stack (services/demo), for the document.
RECOMMENDATIONS_EXAMPLE = {
    "customer_id": "13261", "model_version": 3, "fallback": None, "degraded": False,
    "items": [{"sku": "85123A", "score": 1.4745}, {"sku": "22086", "score": 1.472}],
    "channel": {"name": "web", "rule": None, "rule_set_version": 3, "filters": None}}
SIMILAR_EXAMPLE = {
    "sku": "85123A", "model_version": 3, "fallback": None,
    "items": [{"sku": "21733", "score": 0.7584}, {"sku": "21754", "score": 0.7534}],
    "channel": {"name": "web", "rule": None, "rule_set_version": 3, "filters": None}}
ITEM_EXAMPLE = {
    "sku": "85123A", "category": "Home", "brand": "", "price": {"amount_minor": 295, "currency": "GBP"},
    "in_stock": True, "tags": ["heart", "holder"], "price_band": "p4", "source": "catalogue",
    "updated_at": "2011-12-10T00:00:00Z", "hidden": False}


@router.get(
    "/v1/customers/{customer_id}/recommendations",
    summary="The customer's top-k items, with business filters",
    description="A customer the model does not know (new, or erased) gets the popular items of their RFM segment "
                "(or `segment`), else overall; `fallback` says which. `model_version` is null before any model "
                "is trained (popular items from the events). 409 when there is neither a model nor any order. "
                f"When recommend cannot answer, the answer is `degraded`: `fallback: {FALLBACK}`, the overall "
                "popular items the gateway last got from recommend (refreshed in the background while it "
                "answers), without the filters named in `relaxed_filters`.",
    response_model=RecommendationsOut,
    responses={**ok(RECOMMENDATIONS_EXAMPLE), **errors(401, 403, 409, 422, 502), **NOT_CONFIGURED_503},
    dependencies=Platform,
)
async def recommendations(
    customer_id: CustomerId, clients: Clients, stub: Recommend, http: Request, k: K = 10,
    category: Categories = None, exclude_category: NotCategories = None, exclude: Excluded = None,
    in_stock: InStock = False,
    exclude_bought: Annotated[bool, Query(description="Leave out what the customer has bought.")] = True,
    within_budget: Annotated[bool, Query(description="Leave out items above the customer's price band "
                                                     "(their purchasing power).")] = False,
    segment: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,32}$",
                                         description="RFM segment for a customer the model does not know.")] = None,
    channel: ChannelParam = None,
) -> Response:
    applied = for_request(http, channel)
    filters = merged(_filters(category, exclude_category, exclude, in_stock, exclude_bought, within_budget), applied)
    if filters is None:  # the caller's categories and the channel's have none in common
        return _json({"customer_id": customer_id, "model_version": None, "fallback": None, "items": [],
                      "degraded": False, "channel": applied.out()})
    request = pb.RecommendRequest(customer_id=customer_id, k=k, segment=segment or "", filters=filters)
    try:
        answer = await clients.call(SERVICE, stub.Recommend, request)
    except UpstreamError as error:
        popular = clients.popular
        degraded = None if error.status != 503 or popular is None else fallback_answer(
            popular.current, customer_id, k, request.filters, request.segment, error.error, time.monotonic())
        if degraded is None:
            raise
        FALLBACKS.labels(FALLBACK).inc()
        return _json({**degraded, "channel": applied.out()})
    if clients.popular is not None:
        clients.popular.refresh_soon()
    return _json({"customer_id": customer_id, "model_version": answer.model_version or None,
                  "fallback": answer.fallback or None, "items": _ranked(answer.items), "degraded": False,
                  "channel": applied.out()})


@router.get(
    "/v1/items/{sku}/similar",
    summary="Items similar to one item",
    description="Nearest items by the model's item representations; an item the model has not seen yet is placed "
                "by its catalogue features (`fallback: item_features`).",
    response_model=SimilarOut,
    responses={**ok(SIMILAR_EXAMPLE), **errors(401, 403, 404, 409, 422, 502), **NOT_CONFIGURED_503},
    dependencies=Platform,
)
async def similar_items(
    sku: SkuPath, clients: Clients, stub: Recommend, http: Request, k: K = 10, category: Categories = None,
    exclude_category: NotCategories = None, exclude: Excluded = None, in_stock: InStock = False,
    channel: ChannelParam = None,
) -> Response:
    applied = for_request(http, channel)
    filters = merged(_filters(category, exclude_category, exclude, in_stock), applied)
    if filters is None:  # the caller's categories and the channel's have none in common
        return _json({"sku": sku, "model_version": None, "fallback": None, "items": [], "channel": applied.out()})
    answer = await clients.call(SERVICE, stub.SimilarItems, pb.SimilarItemsRequest(sku=sku, k=k, filters=filters))
    return _json({"sku": sku, "model_version": answer.model_version or None, "fallback": answer.fallback or None,
                  "items": _ranked(answer.items), "channel": applied.out()})


def _check_items(body: bytes) -> tuple[list[dict[str, Any] | None], list[ItemIn], list[int]]:
    """Each item validated on its own: (a result slot per item, the valid items, their positions)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, "malformed JSON", {"message": error.msg, "position": error.pos}) from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list) or set(document) != {"items"}:
        raise ApiError(422, "invalid request", 'the body must be a JSON object {"items": [...]}')
    raw_items: list[Any] = document["items"]
    if len(raw_items) > MAX_ITEMS:
        raise ApiError(413, "content too large", f"at most {MAX_ITEMS} items per request; got {len(raw_items)}")
    results: list[dict[str, Any] | None] = [None] * len(raw_items)
    valid: list[ItemIn] = []
    positions: list[int] = []
    for index, raw in enumerate(raw_items):
        try:
            valid.append(ITEM.validate_python(raw))
            positions.append(index)
        except ValidationError as error:
            sku = raw.get("sku") if isinstance(raw, dict) and isinstance(raw.get("sku"), str) else None
            results[index] = {"index": index, "sku": sku[:64] if sku else None, "status": "rejected",
                              "created": False, "reason": describe(error)[0]}
    return results, valid, positions


ITEMS_REJECTED = {"accepted": 0, "rejected": 1, "results": [
    {"index": 0, "sku": "85123A", "status": "rejected", "created": False, "reason": "price_minor: must be >= 0"}]}


@router.post(
    "/v1/items",
    summary="Create or replace catalogue items (at most 5,000; each validated on its own)",
    description="The platform owns its catalogue, as it owns its customers and events, so this takes the platform "
                "scope. An invalid item gets a `rejected` result with the reason and the others are stored: 200 "
                "when none was rejected, 207 when some were, 422 when all were. Items seen in events but never "
                "sent here are created from the events at the next training.",
    response_model=ItemsOut,
    responses={207: {"model": ItemsOut, "description": "Some items were rejected; see each result."},
               **errors(400, 401, 403, 413, 502), **NOT_CONFIGURED_503,
               **either(422, "Every item was rejected (an ItemsOut with each reason), or the body is not "
                             '{"items": [...]} (an ErrorOut).', ItemsOut, ITEMS_REJECTED)},
    openapi_extra=body_schema(ItemsIn),
    dependencies=Platform,
)
async def upsert_items(request: Request, clients: Clients, stub: Recommend) -> Response:
    results, valid, positions = _check_items(await request.body())
    if valid:
        answer = await clients.call(SERVICE, stub.UpsertItems,
                                    pb.UpsertItemsRequest(items=[item_to_proto(i) for i in valid]),
                                    timeout_s=clients.ingest_timeout_s)
        for result in answer.results:
            if 0 <= result.index < len(positions):
                results[positions[result.index]] = {
                    "index": positions[result.index], "sku": result.sku,
                    "status": "accepted" if result.ok else "rejected", "created": result.created,
                    "reason": result.error or None}
    for index, slot in enumerate(results):
        if slot is None:
            results[index] = {"index": index, "sku": None, "status": "rejected", "created": False,
                              "reason": "no result from the recommend service; resend it"}
    accepted = sum(1 for r in results if r is not None and r["status"] == "accepted")
    status = 200 if accepted == len(results) else (422 if accepted == 0 else 207)
    return _json({"accepted": accepted, "rejected": len(results) - accepted, "results": results}, status)


@router.get(
    "/v1/items/{sku}",
    summary="One catalogue item, with its price band",
    response_model=ItemOut,
    responses={**ok(ITEM_EXAMPLE), **errors(401, 403, 404, 422, 502), **NOT_CONFIGURED_503},
    dependencies=Platform,
)
async def get_item(sku: SkuPath, clients: Clients, stub: Recommend) -> Response:
    answer = await clients.call(SERVICE, stub.GetItem, pb.GetItemRequest(sku=sku))
    return _json(ItemOut.model_validate(item_out(answer.item)).model_dump(mode="json"))


@router.post(
    "/v1/models/train",
    summary="Train a model version on every interaction; it serves only if it is at least as good",
    description="Starts a run and answers 202 with its version (state `training`); poll `GET /v1/models/{version}`. "
                "With `wait`, answers 200 when the run has ended (202 if it is still running at the deadline). "
                "The run evaluates the candidate and the serving version's parameters on the same held-out split; "
                "a worse candidate is `rejected` and serving stays as it was, unless `force`. 409 while another "
                "run trains.",
    response_model=ModelOut,
    status_code=202,
    responses={200: {"model": ModelOut, "description": "The run has ended (with `wait`)."},
               **errors(400, 401, 403, 409, 415, 422, 502), **NOT_CONFIGURED_503},
    dependencies=Admin,
)
async def train_model(clients: Clients, stub: Recommend, body: Annotated[TrainIn | None, Body()] = None) -> Response:
    body = body or TrainIn()
    params = pb.TrainParams(**body.params.model_dump(exclude_none=True))
    request = pb.TrainModelRequest(params=params, force=body.force, train_until_cutoff=body.train_until_cutoff,
                                   wait=body.wait)
    if body.cutoff is not None:
        request.cutoff.FromDatetime(body.cutoff.astimezone(UTC))
    answer = await clients.call(SERVICE, stub.TrainModel, request,
                                timeout_s=clients.ingest_timeout_s if body.wait else None)
    out = ModelOut.model_validate(model_out(answer.model)).model_dump(mode="json")
    return _json(out, 202 if out["state"] == "training" else 200)


@router.get(
    "/v1/models",
    summary="Model versions, newest first, with their offline evaluation and state",
    response_model=ModelsOut,
    responses={**errors(401, 403, 422, 502), **NOT_CONFIGURED_503},
    dependencies=Admin,
)
async def list_models(clients: Clients, stub: Recommend,
                      limit: Annotated[int, Query(ge=1, le=100, description="At most this many.")] = 20) -> Response:
    answer = await clients.call(SERVICE, stub.ListModels, pb.ListModelsRequest(limit=limit))
    out = ModelsOut.model_validate({"serving_version": answer.serving_version or None,
                                    "models": [model_out(m) for m in answer.models]})
    return _json(out.model_dump(mode="json"))


@router.get(
    "/v1/models/{version}",
    summary="One model version",
    response_model=ModelOut,
    responses={**errors(401, 403, 404, 422, 502), **NOT_CONFIGURED_503},
    dependencies=Admin,
)
async def get_model(version: Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number.")],
                    clients: Clients, stub: Recommend) -> Response:
    answer = await clients.call(SERVICE, stub.GetModel, pb.GetModelRequest(version=version))
    return _json(ModelOut.model_validate(model_out(answer.model)).model_dump(mode="json"))
