"""The recommend servicer over a real gRPC server, training from a fake profile served over gRPC."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2_grpc
from marksman.recommend.v1 import recommend_pb2 as pb
from marksman.recommend.v1 import recommend_pb2_grpc

from services.common.db import make_engine
from services.common.grpc_server import Registration, start
from services.recommend.__main__ import build
from services.recommend.config import RecommendSettings
from services.recommend.source import ProfileSource
from services.recommend.store import RecommendStore
from tests.unit.recommend.service_fakes import (
    FakeProfile,
    rpc_code,
    start_fake_profile,
    synthetic_interactions,
    synthetic_portraits,
)

Stub = recommend_pb2_grpc.RecommendServiceStub
GOOD = pb.TrainParams(epochs=10, components=16)
WORSE = pb.TrainParams(epochs=1, components=1, learning_rate=1e-6, use_item_features=False)


@contextmanager
def recommend_service(folder: Path, profile: FakeProfile) -> Iterator[Stub]:
    """Profile (fake) and recommend (real, wired as __main__ wires it), each a gRPC server."""
    profile_server = start_fake_profile(profile)
    settings = RecommendSettings(data_dir=folder, train_threads=2)
    store = RecommendStore(make_engine(settings.resolved_database_url()))
    store.migrate()
    profile_channel = grpc.insecure_channel(f"127.0.0.1:{profile_server.port}")
    source = ProfileSource(profile_pb2_grpc.ProfileServiceStub(profile_channel), 30, 500)
    servicer = build(settings, store, source)
    server = start("recommend", [Registration(recommend_pb2_grpc.add_RecommendServiceServicer_to_server, servicer,
                                              "marksman.recommend.v1.RecommendService")], metrics_port=None, workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Stub(channel)
    finally:
        channel.close()
        server.stop(0)
        profile_channel.close()
        profile_server.stop(0)


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKSMAN_AS_OF", "2011-12-10T00:00:00Z")


@pytest.fixture
def profile() -> FakeProfile:
    return FakeProfile(synthetic_interactions(), synthetic_portraits())


@pytest.fixture
def stub(tmp_path: Path, profile: FakeProfile) -> Iterator[Stub]:
    with recommend_service(tmp_path, profile) as running:
        yield running


@pytest.fixture
def trained(stub: Stub) -> Stub:
    model = train(stub, GOOD)
    assert model.state == pb.MODEL_STATE_SERVING, model.reason
    return stub


def train(stub: Stub, params: pb.TrainParams, **options: object) -> pb.ModelVersion:
    request = pb.TrainModelRequest(params=params, wait=True, **options)  # type: ignore[arg-type]
    return stub.TrainModel(request, timeout=120).model


def code_and_details(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    return error.code(), error.details()  # type: ignore[attr-defined]


def test_before_any_model_popular_items_from_the_interactions(stub: Stub) -> None:
    code, details = code_and_details(lambda: stub.SimilarItems(pb.SimilarItemsRequest(sku="G1-03", k=5)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "none is serving yet" in details
    answer = stub.Recommend(pb.RecommendRequest(customer_id="c1", k=5))
    assert answer.model_version == 0 and answer.fallback == "popular_overall" and len(answer.items) == 5
    scores = [i.score for i in answer.items]
    assert scores == sorted(scores, reverse=True)


def test_no_model_and_no_orders_is_a_clear_precondition(tmp_path: Path) -> None:
    with recommend_service(tmp_path, FakeProfile([], [])) as empty:
        code, details = code_and_details(lambda: empty.Recommend(pb.RecommendRequest(customer_id="c1", k=5)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "no model is trained yet" in details
        model = train(empty, GOOD)
        assert model.state == pb.MODEL_STATE_FAILED and "orders" in model.reason


def test_upsert_items_keeps_the_good_ones(stub: Stub) -> None:
    money = common_pb2.Money(amount_minor=1299, currency="GBP")
    response = stub.UpsertItems(pb.UpsertItemsRequest(items=[
        pb.Item(sku="NEW-1", category="Home", brand="Acme", price=money, tags=["gift", "gift", "red"]),
        pb.Item(sku="", category="Home"),
        pb.Item(sku="NEW-2", price=common_pb2.Money(amount_minor=100, currency="pounds")),
        pb.Item(sku="NEW-3", in_stock=False),
    ]))
    assert (response.accepted, response.rejected) == (2, 2)
    by_index = {r.index: r for r in response.results}
    assert by_index[0].ok and by_index[0].created and by_index[3].ok
    assert not by_index[1].ok and "sku" in by_index[1].error
    assert not by_index[2].ok and "ISO 4217" in by_index[2].error
    item = stub.GetItem(pb.GetItemRequest(sku="NEW-1")).item
    assert (item.category, item.price.amount_minor, list(item.tags), item.in_stock) == ("Home", 1299, ["gift", "red"], True)
    assert item.source == pb.ITEM_SOURCE_CATALOGUE and item.updated_at.seconds > 0
    assert not stub.GetItem(pb.GetItemRequest(sku="NEW-3")).item.in_stock
    assert rpc_code(lambda: stub.GetItem(pb.GetItemRequest(sku="NOPE"))) == grpc.StatusCode.NOT_FOUND
    too_many = pb.UpsertItemsRequest(items=[pb.Item(sku=f"S{n}") for n in range(5001)])
    assert rpc_code(lambda: stub.UpsertItems(too_many)) == grpc.StatusCode.INVALID_ARGUMENT


def test_train_list_get_and_recommend(trained: Stub) -> None:
    stub = trained
    models = stub.ListModels(pb.ListModelsRequest())
    assert models.serving_version == 1 and [m.version for m in models.models] == [1]
    model = stub.GetModel(pb.GetModelRequest()).model
    assert model.state == pb.MODEL_STATE_SERVING and model.params.epochs == 10 and model.params.components == 16
    assert model.params.loss == "warp" and model.interactions == 3600 and model.customers == 120
    report = model.report
    assert report.k == 10 and report.customers_evaluated > 0 and report.cutoff.seconds > 0
    assert report.model.precision_at_k > report.popularity.precision_at_k

    known = stub.Recommend(pb.RecommendRequest(customer_id="c4", k=10, filters=pb.Filters(exclude_bought=True)))
    assert known.fallback == "" and known.model_version == 1 and len(known.items) == 10
    # c4 is in group 4: most of what the model suggests comes from that group's items.
    assert sum(i.sku.startswith("G4-") for i in known.items) >= 5
    unknown = stub.Recommend(pb.RecommendRequest(customer_id="stranger", k=3))
    assert unknown.fallback == "popular_overall" and len(unknown.items) == 3
    segment = stub.Recommend(pb.RecommendRequest(customer_id="stranger", k=3, segment="champions"))
    assert segment.fallback == "popular_in_segment"
    only = stub.Recommend(pb.RecommendRequest(customer_id="c4", k=5, filters=pb.Filters(categories_in=["cat2"])))
    assert only.items and all(i.sku.startswith("G2-") for i in only.items)


def test_stock_and_purchasing_power_filters(trained: Stub) -> None:
    stub = trained
    top = stub.Recommend(pb.RecommendRequest(customer_id="c4", k=3)).items[0].sku
    stub.UpsertItems(pb.UpsertItemsRequest(items=[pb.Item(sku=top, category="cat4", in_stock=False)]))
    in_stock = stub.Recommend(pb.RecommendRequest(customer_id="c4", k=10, filters=pb.Filters(only_in_stock=True)))
    assert top not in [i.sku for i in in_stock.items]
    # c0's purchasing power is 0.0 (band p1): only the cheapest band of each category, or unbanded items.
    cheap = stub.Recommend(pb.RecommendRequest(customer_id="c0", k=10,
                                               filters=pb.Filters(respect_purchasing_power=True)))
    bands = {stub.GetItem(pb.GetItemRequest(sku=i.sku)).item.price_band for i in cheap.items}
    assert bands <= {"p1", ""}, bands



def test_brand_filters(trained: Stub) -> None:
    stub = trained
    # c4 mostly buys group 4 (brand0); asked for brand1 only, it gets odd groups' items only.
    odd = stub.Recommend(pb.RecommendRequest(customer_id="c4", k=10, filters=pb.Filters(brands_in=["brand1"])))
    assert len(odd.items) == 10 and all(int(i.sku[1]) % 2 == 1 for i in odd.items), odd.items
    even = stub.SimilarItems(pb.SimilarItemsRequest(sku=odd.items[0].sku, k=5,
                                                    filters=pb.Filters(brands_not_in=["brand1"])))
    assert even.items and all(int(i.sku[1]) % 2 == 0 for i in even.items), even.items
    code, details = code_and_details(lambda: stub.Recommend(pb.RecommendRequest(
        customer_id="c4", k=5, filters=pb.Filters(brands_in=[""]))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "filters.brands_in" in details


def test_bad_requests_are_invalid_arguments(trained: Stub) -> None:
    stub = trained
    for request in (pb.RecommendRequest(customer_id="c1", k=0), pb.RecommendRequest(customer_id="c1", k=101),
                    pb.RecommendRequest(customer_id="c 1", k=5), pb.RecommendRequest(customer_id="", k=5),
                    pb.RecommendRequest(customer_id="c1", k=5, segment="Champions!"),
                    pb.RecommendRequest(customer_id="c1", k=5, filters=pb.Filters(exclude_skus=["x" * 65]))):
        code, details = code_and_details(lambda r=request: stub.Recommend(r))  # type: ignore[misc]
        assert code == grpc.StatusCode.INVALID_ARGUMENT, request
    code, details = code_and_details(lambda: stub.Recommend(pb.RecommendRequest(customer_id="c1", k=10_000)))
    assert "k must be between 1 and 100" in details
    code, details = code_and_details(lambda: stub.TrainModel(pb.TrainModelRequest(params=pb.TrainParams(loss="nope"))))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "params.loss" in details
    future = Timestamp()
    future.FromDatetime(datetime(2030, 1, 1, tzinfo=UTC))
    assert rpc_code(lambda: stub.TrainModel(pb.TrainModelRequest(cutoff=future))) == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_code(lambda: stub.ListModels(pb.ListModelsRequest(limit=1000))) == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_code(lambda: stub.GetModel(pb.GetModelRequest(version=99))) == grpc.StatusCode.NOT_FOUND


def test_a_worse_run_through_the_api_leaves_serving_alone(trained: Stub) -> None:
    stub = trained
    worse = train(stub, WORSE)
    assert worse.state == pb.MODEL_STATE_REJECTED and "below serving version 1" in worse.reason
    assert worse.compared_version == 1 and worse.compared_serving.precision_at_k > worse.report.model.precision_at_k
    assert stub.ListModels(pb.ListModelsRequest()).serving_version == 1
    assert stub.Recommend(pb.RecommendRequest(customer_id="c4", k=3)).model_version == 1
    forced = train(stub, WORSE, force=True)
    assert forced.state == pb.MODEL_STATE_SERVING
    assert stub.Recommend(pb.RecommendRequest(customer_id="c4", k=3)).model_version == forced.version
    states = {m.version: m.state for m in stub.ListModels(pb.ListModelsRequest()).models}
    assert states == {1: pb.MODEL_STATE_SUPERSEDED, 2: pb.MODEL_STATE_REJECTED, 3: pb.MODEL_STATE_SERVING}


def test_one_training_at_a_time(stub: Stub) -> None:
    started = stub.TrainModel(pb.TrainModelRequest(params=GOOD)).model
    assert started.state in (pb.MODEL_STATE_TRAINING, pb.MODEL_STATE_SERVING)
    if started.state == pb.MODEL_STATE_TRAINING:
        code, details = code_and_details(lambda: stub.TrainModel(pb.TrainModelRequest(params=GOOD)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "training now" in details
    # Serving goes on while it trains, with popular items until the run publishes.
    assert stub.Recommend(pb.RecommendRequest(customer_id="c1", k=2)).items


def test_similar_items(trained: Stub) -> None:
    stub = trained
    similar = stub.SimilarItems(pb.SimilarItemsRequest(sku="G1-03", k=5))
    assert similar.fallback == "" and len(similar.items) == 5 and "G1-03" not in [i.sku for i in similar.items]
    stub.UpsertItems(pb.UpsertItemsRequest(items=[pb.Item(sku="BRAND-NEW", category="cat1", brand="brand1")]))
    placed = stub.SimilarItems(pb.SimilarItemsRequest(sku="BRAND-NEW", k=5))
    assert placed.fallback == "item_features" and len(placed.items) == 5
    assert rpc_code(lambda: stub.SimilarItems(pb.SimilarItemsRequest(sku="NOPE", k=5))) == grpc.StatusCode.NOT_FOUND
    assert rpc_code(lambda: stub.SimilarItems(pb.SimilarItemsRequest(sku="G1-03", k=0))) == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_erased_customers_become_unknown(trained: Stub) -> None:
    stub = trained
    assert stub.Recommend(pb.RecommendRequest(customer_id="c7", k=3)).fallback == ""
    erased = stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="c7"))
    assert erased.erased and erased.records_deleted == 2  # features + the serving version's row
    after = stub.Recommend(pb.RecommendRequest(customer_id="c7", k=3))
    assert after.fallback == "popular_overall"
    again = stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="c7"))
    assert not again.erased and again.records_deleted == 0
    assert rpc_code(lambda: stub.EraseCustomer(common_pb2.EraseCustomerRequest(customer_id="a/b"))) == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_a_restart_serves_the_same_version_from_its_files(tmp_path: Path, profile: FakeProfile) -> None:
    with recommend_service(tmp_path, profile) as first:
        version = train(first, GOOD).version
        before = first.Recommend(pb.RecommendRequest(customer_id="c4", k=5))
    with recommend_service(tmp_path, profile) as second:
        after = second.Recommend(pb.RecommendRequest(customer_id="c4", k=5))
    assert after.model_version == version and [i.sku for i in after.items] == [i.sku for i in before.items]
