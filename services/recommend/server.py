"""The recommend gRPC servicer: protos to domain values and back, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from marksman.common.v1 import common_pb2
from marksman.recommend.v1 import recommend_pb2 as pb
from marksman.recommend.v1 import recommend_pb2_grpc

from services.common.errors import InvalidArgument, NotFound
from services.recommend import convert, telemetry
from services.recommend.catalogue import item_problem, normalized
from services.recommend.erasure import Eraser
from services.recommend.recipe import resolve
from services.recommend.serving import (
    Serving,
    check_customer_id,
    check_k,
    check_segment,
    check_sku,
    check_wanted,
)
from services.recommend.store import RecommendStore
from services.recommend.training import Trainer, TrainRequest

MAX_ITEMS = 5000
MAX_LIST = 100
DEFAULT_LIST = 20
# A waiting TrainModel returns this long before its deadline, with the run still training.
WAIT_MARGIN_S = 0.5


class RecommendServicer(recommend_pb2_grpc.RecommendServiceServicer):
    def __init__(self, store: RecommendStore, serving: Serving, trainer: Trainer, eraser: Eraser,
                 clock: Callable[[], datetime], threads: int) -> None:
        self.store = store
        self.serving = serving
        self.trainer = trainer
        self.eraser = eraser
        self.clock = clock
        self.threads = threads

    def UpsertItems(self, request: pb.UpsertItemsRequest, context: grpc.ServicerContext) -> pb.UpsertItemsResponse:
        if len(request.items) > MAX_ITEMS:
            raise InvalidArgument(f"at most {MAX_ITEMS} items per call; split the batch")
        items = [normalized(convert.item_from_proto(i)) for i in request.items]
        problems = [item_problem(i) for i in items]
        good = [i for i, problem in zip(items, problems, strict=True) if problem is None]
        created = self.store.upsert_items(good, self.clock()) if good else set()
        self.serving.update_items({i.sku: i.in_stock for i in good}, {i.sku: i.hidden for i in good})
        results = [pb.ItemResult(sku=i.sku, index=n, ok=problem is None, created=problem is None and i.sku in created,
                                 error=problem or "")
                   for n, (i, problem) in enumerate(zip(items, problems, strict=True))]
        return pb.UpsertItemsResponse(results=results, accepted=len(good), rejected=len(items) - len(good))

    def GetItem(self, request: pb.GetItemRequest, context: grpc.ServicerContext) -> pb.GetItemResponse:
        item = self.store.get_item(check_sku(request.sku))
        if item is None:
            raise NotFound(f"there is no item {request.sku!r}")
        return pb.GetItemResponse(item=convert.item_to_proto(item))

    def TrainModel(self, request: pb.TrainModelRequest, context: grpc.ServicerContext) -> pb.TrainModelResponse:
        recipe = resolve(convert.overrides_from_proto(request.params), self.threads)
        cutoff = request.cutoff.ToDatetime(tzinfo=UTC) if request.HasField("cutoff") else None
        if cutoff is not None and cutoff > self.clock():
            raise InvalidArgument("cutoff is in the future: nothing after it could be held out")
        version = self.trainer.start(TrainRequest(recipe, request.force, cutoff, request.train_until_cutoff))
        if request.wait:
            remaining = context.time_remaining()
            self.trainer.wait(None if remaining is None else max(0.0, remaining - WAIT_MARGIN_S))
        return pb.TrainModelResponse(model=convert.version_to_proto(self.store.get_version(version)))

    def ListModels(self, request: pb.ListModelsRequest, context: grpc.ServicerContext) -> pb.ListModelsResponse:
        if not 0 <= request.limit <= MAX_LIST:
            raise InvalidArgument(f"limit must be between 1 and {MAX_LIST} (0 for {DEFAULT_LIST})")
        versions = self.store.list_versions(request.limit or DEFAULT_LIST)
        return pb.ListModelsResponse(models=[convert.version_to_proto(v) for v in versions],
                                     serving_version=self.store.serving_version() or 0)

    def GetModel(self, request: pb.GetModelRequest, context: grpc.ServicerContext) -> pb.GetModelResponse:
        if request.version < 0:
            raise InvalidArgument("version must be positive (0 for the serving version)")
        version = request.version or self.store.serving_version()
        if version is None:
            raise NotFound("no model version is serving yet")
        return pb.GetModelResponse(model=convert.version_to_proto(self.store.get_version(version)))

    def Recommend(self, request: pb.RecommendRequest, context: grpc.ServicerContext) -> pb.RecommendResponse:
        answer = self.serving.recommend(check_customer_id(request.customer_id), check_k(request.k),
                                        check_wanted(convert.wanted_from_proto(request.filters)),
                                        check_segment(request.segment))
        telemetry.count("Recommend", answer.ranked.fallback)
        return pb.RecommendResponse(items=convert.scored(answer.ranked), model_version=answer.version,
                                    fallback=answer.ranked.fallback)

    def SimilarItems(self, request: pb.SimilarItemsRequest, context: grpc.ServicerContext) -> pb.SimilarItemsResponse:
        def describe(sku: str) -> dict[str, object] | None:
            item = self.store.get_item(sku)
            return None if item is None else convert.item_features(item)

        answer = self.serving.similar(check_sku(request.sku), check_k(request.k),
                                      check_wanted(convert.wanted_from_proto(request.filters)), describe)
        telemetry.count("SimilarItems", answer.ranked.fallback)
        return pb.SimilarItemsResponse(items=convert.scored(answer.ranked), model_version=answer.version,
                                       fallback=answer.ranked.fallback)

    def EraseCustomer(self, request: common_pb2.EraseCustomerRequest, context: grpc.ServicerContext) -> common_pb2.EraseCustomerResponse:
        erased, count = self.eraser.erase(check_customer_id(request.customer_id))
        return common_pb2.EraseCustomerResponse(erased=erased, records_deleted=count)
