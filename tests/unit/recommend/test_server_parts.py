"""Serving's parts: forgetting a customer, popular items before a model, model files, the serving holder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.recommend import model
from services.recommend.catalogue import Item
from services.recommend.forget import without_customers
from services.recommend.frames import customer_features as features_of
from services.recommend.frames import interactions_frame, items_frame, users_frame
from services.recommend.modelfiles import ModelFiles
from services.recommend.popular import popularity_recommender
from services.recommend.recommender import Recommender
from services.recommend.serving import Serving, Wanted, check_k, check_segment, check_wanted
from services.recommend.store import CustomerFeatures
from tests.unit.recommend.service_fakes import synthetic_interactions, synthetic_portraits


@pytest.fixture(scope="module")
def trained() -> Recommender:
    interactions = interactions_frame([synthetic_interactions(customers=30, per_customer=20)])
    users = users_frame(features_of(synthetic_portraits(30)))
    return model.train(interactions[["customer_id", "sku", "kind", "quantity", "occurred_at", "amount_minor"]],
                       None, users, model.TrainParams(epochs=2, no_components=4, threads=1))


def test_without_customers_drops_rows_and_bought_lists(trained: Recommender) -> None:
    row = trained.user_index["c3"]
    keep_row = trained.user_index["c4"]
    bought_c4 = trained.skus[trained.bought(keep_row)].tolist()
    trimmed, count = without_customers(trained, ["c3", "not-there"])
    assert count == 1 and "c3" not in trimmed.user_index and len(trimmed.customer_ids) == len(trained.customer_ids) - 1
    assert len(trimmed.bought_items) == len(trained.bought_items) - len(trained.bought(row))
    assert trimmed.skus[trimmed.bought(trimmed.user_index["c4"])].tolist() == bought_c4
    assert np.array_equal(trimmed.user_vectors[trimmed.user_index["c4"]], trained.user_vectors[keep_row])
    same, none = without_customers(trained, ["nobody"])
    assert same is trained and none == 0


def test_popular_items_before_any_model() -> None:
    interactions = interactions_frame([synthetic_interactions(customers=30, per_customer=20)])
    items = [Item("G0-00", "Curated", in_stock=False), Item("NEVER-SOLD", "Home"), Item("G1-01", hidden=True)]
    features = [CustomerFeatures("c0", "champions"), CustomerFeatures("c1", "lost")]
    popular = popularity_recommender(interactions, items, features)
    assert popular is not None and "NEVER-SOLD" in popular.item_index and "G1-01" not in popular.item_index
    serving = Serving(lambda: popular)
    answer = serving.recommend("anyone", 5, Wanted(only_in_stock=True))
    assert answer.version == 0 and answer.ranked.fallback == "popular_overall"
    assert "G0-00" not in answer.ranked.skus and list(answer.ranked.scores) == sorted(answer.ranked.scores, reverse=True)
    assert serving.recommend("anyone", 5, Wanted(), segment="champions").ranked.fallback == "popular_in_segment"
    assert popularity_recommender(interactions[interactions["kind"] == "view"], items) is None


def test_popular_items_are_computed_once_per_ttl() -> None:
    calls: list[float] = []
    clock = [0.0]

    def source() -> Recommender | None:
        calls.append(clock[0])
        return None

    serving = Serving(source, popular_ttl_s=60, monotonic=lambda: clock[0])
    for _ in range(3):
        with pytest.raises(FailedPrecondition):
            serving.recommend("c1", 5, Wanted())
    clock[0] = 61.0
    with pytest.raises(FailedPrecondition):
        serving.recommend("c1", 5, Wanted())
    assert calls == [0.0, 61.0]


def test_serving_switches_forgets_and_updates_stock(trained: Recommender) -> None:
    serving = Serving()
    serving.switch(7, trained, 0.1, {"c3": CustomerFeatures("c3", "champions", "France", "p2")})
    top = serving.recommend("c3", 3, Wanted())
    assert top.version == 7 and top.ranked.fallback == ""
    serving.update_items({top.ranked.skus[0]: False, "unknown-sku": False}, {})
    assert top.ranked.skus[0] not in serving.recommend("c3", 3, Wanted(only_in_stock=True)).ranked.skus
    serving.update_items({}, {top.ranked.skus[1]: True})
    assert top.ranked.skus[1] not in serving.recommend("c3", 10, Wanted()).ranked.skus
    serving.update_items({}, {top.ranked.skus[1]: False})
    assert top.ranked.skus[1] in serving.recommend("c3", 3, Wanted()).ranked.skus
    assert serving.forget("c3") == 2 and serving.forget("c3") == 0
    assert serving.recommend("c3", 3, Wanted()).ranked.fallback == "popular_overall"
    with pytest.raises(NotFound):
        serving.similar("NOPE", 3, Wanted(), lambda _sku: None)
    with pytest.raises(FailedPrecondition, match="not in the model yet"):
        serving.similar("NEW", 3, Wanted(), lambda _sku: {"category": "never-seen"})


def test_request_checks() -> None:
    assert check_k(1) == 1 and check_k(100) == 100
    for k in (0, -1, 101, 10_000):
        with pytest.raises(InvalidArgument, match="k must be between 1 and 100"):
            check_k(k)
    with pytest.raises(InvalidArgument, match="segment"):
        check_segment("VIP customers")
    with pytest.raises(InvalidArgument, match="categories_in"):
        check_wanted(Wanted(categories_in=frozenset({""})))
    with pytest.raises(InvalidArgument, match="exclude_skus holds at most 1000"):
        check_wanted(Wanted(exclude_skus=frozenset(f"S{n}" for n in range(1001))))


def test_model_files_are_written_whole_and_pruned(trained: Recommender, tmp_path: Path) -> None:
    files = ModelFiles(tmp_path / "models")
    assert files.versions() == []
    for version in (1, 2, 3):
        files.save(version, trained)
    files.save(2, without_customers(trained, ["c1"])[0])  # rewriting a version replaces it whole
    assert files.holds(1, "c1") and not files.holds(2, "c1")
    (tmp_path / "models" / ".4.partial").mkdir()
    assert files.prune([2, 3]) == [1]
    assert files.versions() == [2, 3] and not (tmp_path / "models" / ".4.partial").exists()
    loaded = files.load(3)
    assert loaded.customer_ids.tolist() == trained.customer_ids.tolist()
    assert items_frame([Item("A", tags=("x",))]).iloc[0]["tags"] == ["x"]


def test_no_popular_items_yet_is_believed_for_seconds_only(trained: Recommender) -> None:
    # The gateway asks for popular items at its start, before any order: that answer must not hide
    # the orders that arrive next for the whole TTL.
    clock = [0.0]
    answers: list[Recommender | None] = [None, trained]
    serving = Serving(lambda: answers.pop(0), popular_ttl_s=600, monotonic=lambda: clock[0])
    with pytest.raises(FailedPrecondition):
        serving.recommend("c1", 3, Wanted())
    clock[0] = 6.0
    assert serving.recommend("c3", 3, Wanted()).ranked.skus
