"""Predictive model routes (admin): train a goal's model through the segment service, list each goal's current
model with its held-out quality, read one goal's versions. (/v1/models belongs to the recommend service.)"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from marksman.segment.v1 import segment_pb2

from services.gateway import convert
from services.gateway.auth import ADMIN, require
from services.gateway.clients import Upstreams
from services.gateway.config import GatewaySettings
from services.gateway.deps import SegmentStub, segment, settings, upstreams
from services.gateway.openapi import error_example, errors
from services.gateway.schemas import (
    PredictiveGoal,
    PredictiveModelDetailOut,
    PredictiveModelOut,
    PredictiveModelsOut,
    TrainIn,
)

SERVICE = "segment"
router = APIRouter(tags=["predictive models"])
Admin = [Depends(require(ADMIN))]
Clients = Annotated[Upstreams, Depends(upstreams)]
Segment = Annotated[SegmentStub, Depends(segment)]
Settings = Annotated[GatewaySettings, Depends(settings)]
Goal = Annotated[
    PredictiveGoal,
    Path(description="retention (active customers likely not to buy in the window), growth (buyers likely to buy "
                     "again), growth_new_category (likely to buy a category new to them), activation (dormant "
                     "customers likely to come back), acquisition (prospects like the best customers)."),
]
_REQUEST_ID = "6f1c0d0e9b7a4c2d8e5f3a1b2c4d6e8f"
NO_MODEL_404 = error_example(404, "The goal has no trained model yet.", {
    "error": "no retention model has been trained yet", "detail": {"grpc_status": "NOT_FOUND"},
    "request_id": _REQUEST_ID})
CANNOT_TRAIN_409 = error_example(409, "The data cannot train this goal (e.g. too little history for the window), "
                                      "or the seed segment has no version yet; the previous model stays current.", {
    "error": "the growth model cannot be trained on the data there is: growth: the training labels at "
             "2010-12-12 00:00:00+00:00 have a single class",
    "detail": {"grpc_status": "FAILED_PRECONDITION"}, "request_id": _REQUEST_ID})
UNAVAILABLE_503 = error_example(503, "The segment service (or profile behind it) is not configured, unavailable, "
                                     "or did not answer in time.", {
    "error": "segment service unavailable: profile's interaction export failed (UNAVAILABLE: ...)",
    "detail": {"grpc_status": "UNAVAILABLE"}, "request_id": _REQUEST_ID})


@router.post(
    "/v1/predictive-models/{goal}/train",
    status_code=201,
    summary="Train the goal's model on the customers' own history and store it as the goal's next version",
    description="The segment service reads every order and refund line from profile, trains on features before "
                "a cut-off with labels from the window after it, and reports the quality on a later, held-out "
                "window (acquisition: on held-out customers). A model no better than chance is stored and "
                "returned with `quality.better_than_chance` false, never hidden. A failed training stores "
                "nothing: the previous version stays current.",
    response_model=PredictiveModelOut,
    responses={**errors(400, 401, 403, 404, 415, 422, 502), **CANNOT_TRAIN_409, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def train_model(goal: Goal, clients: Clients, stub: Segment, config: Settings,
                      body: TrainIn | None = None) -> PredictiveModelOut:
    options = body or TrainIn()
    request = segment_pb2.TrainModelRequest(goal=goal, seed_segment=options.seed_segment or "",
                                            horizon_days=options.horizon_days or 0)
    response = await clients.call(SERVICE, stub.TrainModel, request, timeout_s=config.training_timeout_s)
    return convert.predictive_model_out(response.model)


@router.get(
    "/v1/predictive-models",
    summary="Each goal's current model with its held-out quality, and the goals not trained yet",
    response_model=PredictiveModelsOut,
    responses={**errors(401, 403, 502), **UNAVAILABLE_503},
    dependencies=Admin,
)
async def list_models(clients: Clients, stub: Segment) -> PredictiveModelsOut:
    response = await clients.call(SERVICE, stub.ListModels, segment_pb2.ListModelsRequest())
    return PredictiveModelsOut(models=[convert.predictive_model_out(m) for m in response.models],
                               untrained_goals=list(response.untrained_goals))


@router.get(
    "/v1/predictive-models/{goal}",
    summary="One goal's current model and every retained version, newest first",
    response_model=PredictiveModelDetailOut,
    responses={**errors(401, 403, 422, 502), **NO_MODEL_404, **UNAVAILABLE_503},
    dependencies=Admin,
)
async def get_model(goal: Goal, clients: Clients, stub: Segment) -> PredictiveModelDetailOut:
    response = await clients.call(SERVICE, stub.GetModel, segment_pb2.GetModelRequest(goal=goal))
    return PredictiveModelDetailOut(goal=goal, current=convert.predictive_model_out(response.current),
                                    versions=[convert.predictive_model_out(m) for m in response.versions])
