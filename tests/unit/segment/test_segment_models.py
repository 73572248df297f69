"""Predictive models and model audiences on SQLite and PostgreSQL: training through the interaction export,
numbered model versions with their held-out quality, failures that store nothing, audience refreshes, erasure."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import orjson
import pandas as pd
import pytest
from prometheus_client import REGISTRY

from services.common.db import make_engine
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.segment import metrics, persist, predict, synthetic
from services.segment.audiences import ModelAudience
from services.segment.interactions import InteractionCache
from services.segment.predict_metrics import Quality
from services.segment.scoring import Scorer
from services.segment.segments import Segments
from services.segment.store import ModelInfo, SegmentStore
from services.segment.training import Trainer
from tests.unit.segment.segment_fakes import (
    NOW,
    FakeProfile,
    direct_export,
    direct_interactions,
    synthetic_protos,
)

N = 400
# The synthetic lines span 360 days: a 30-day window leaves room for a train and a test cut-off.
HORIZON = 30


@dataclass
class World:
    store: SegmentStore
    profile: FakeProfile
    lines: InteractionCache
    trainer: Trainer
    scorer: Scorer
    segments: Segments


@pytest.fixture
def world(database_url: str) -> World:
    store = SegmentStore(make_engine(database_url))
    store.migrate()
    profile = FakeProfile()
    profile.put(synthetic_protos(N))
    profile.put_lines(synthetic.order_lines(N, pd.Timestamp(NOW)))
    lines = InteractionCache(direct_interactions(profile), page_size=500)
    trainer = Trainer(store, lines, lambda: NOW)
    scorer = Scorer(store, lines, lambda: NOW)
    segments = Segments(store, lambda: NOW, export=direct_export(profile), scorer=scorer, customer_data=lines)
    segments.install_built_ins()
    segments.sync()
    return World(store, profile, lines, trainer, scorer, segments)


def member_rows(segments: Segments, name: str) -> tuple[list[str], list[float]]:
    ids: list[str] = []
    scores: list[float] = []
    for page in segments.members(name, page_size=37):
        ids += page.customer_ids
        scores += page.scores
    return ids, scores


def candidate_scores(world: World, goal: str) -> pd.Series:
    """Every candidate's score by the goal's current model, computed here the long way."""
    model, estimator = world.scorer.current(goal)
    feats = predict.candidates(goal, predict.features(world.lines.lines(), pd.Timestamp(NOW)))
    return pd.Series(estimator.predict_proba(feats[list(model.features)])[:, 1], index=feats.index)


# ---- training ----

def test_training_stores_numbered_versions_with_their_held_out_quality(world: World) -> None:
    first = world.trainer.train("retention", horizon_days=HORIZON)
    assert (first.goal, first.version, first.horizon_days, first.trained_at) == ("retention", 1, HORIZON, NOW)
    q = first.quality
    assert 0.6 < q.auc <= 1 and 0 < q.auc_se < 0.1 and q.top_decile_lift > 1 and 0 < q.base_rate < 1
    assert q.better_than_chance and 0 < q.positives < q.size
    assert first.lines == sum(len(e) for e in world.profile.events) and 300 < first.customers <= N
    assert first.train_size > 100 and 0 < first.train_base_rate < 1 and 0 < first.fit_seconds <= first.seconds
    assert first.features == predict.FEATURE_COLUMNS and "out of time" in first.evaluation
    params = orjson.loads(first.parameters)
    assert params["estimator"] == "HistGradientBoostingClassifier" and params["horizon_days"] == HORIZON
    assert params["params"]["max_iter"] == 150

    second = world.trainer.train("retention", horizon_days=HORIZON)
    assert second.version == 2 and second.quality == first.quality  # same data, same seed: same model
    assert [m.version for m in world.trainer.get("retention")] == [2, 1]
    data, digest = world.store.model_data("retention", 2) or (b"", "")
    assert persist.digest_of(data) == digest and persist.loads(data, digest) is not None

    models, untrained = world.trainer.list_models()
    assert [(m.goal, m.version) for m in models] == [("retention", 2)]
    assert untrained == ["growth", "growth_new_category", "activation", "acquisition"]


def test_a_model_no_better_than_chance_is_stored_and_flagged(world: World) -> None:
    # Dormant customers of this data come back at random: the model cannot tell who will.
    model = world.trainer.train("activation", horizon_days=HORIZON)
    assert not model.quality.better_than_chance and model.quality.auc < 0.55
    stored = world.store.current_model("activation")
    assert stored is not None and stored.version == 1 and not stored.quality.better_than_chance
    assert world.trainer.list_models()[0][0].quality.auc == pytest.approx(model.quality.auc)
    labels = {"goal": "activation"}
    assert REGISTRY.get_sample_value("marksman_segment_model_better_than_chance", labels) == 0
    assert REGISTRY.get_sample_value("marksman_segment_model_auc", labels) == pytest.approx(model.quality.auc)
    assert (REGISTRY.get_sample_value("marksman_segment_training_seconds_count", labels) or 0) >= 1
    world.trainer.train("retention", horizon_days=HORIZON)
    metrics.MODEL_BETTER_THAN_CHANCE.labels("retention").set(0)
    world.trainer.publish()  # at start: the gauges say what the store holds
    assert REGISTRY.get_sample_value("marksman_segment_model_better_than_chance", {"goal": "retention"}) == 1


def test_a_failed_training_stores_nothing_and_the_previous_model_stays_current(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.trainer.train("growth", horizon_days=HORIZON)
    with pytest.raises(FailedPrecondition, match="cannot be trained on the data there is"):
        world.trainer.train("growth", horizon_days=365)  # two windows of a year need two years of data

    def broken(estimator: object) -> tuple[bytes, str]:
        raise OSError("disk full")

    monkeypatch.setattr(persist, "dumps", broken)
    with pytest.raises(OSError, match="disk full"):
        world.trainer.train("growth", horizon_days=HORIZON)
    monkeypatch.undo()
    assert [m.version for m in world.trainer.get("growth")] == [1]
    assert world.trainer.train("growth", horizon_days=HORIZON).version == 2  # the worker lives on


def test_bad_training_requests_say_what_is_wrong(world: World) -> None:
    with pytest.raises(InvalidArgument, match="unknown goal 'churn'"):
        world.trainer.train("churn")
    with pytest.raises(InvalidArgument, match="seed_segment applies to acquisition only"):
        world.trainer.train("retention", seed_segment="rfm_champions")
    with pytest.raises(InvalidArgument, match="horizon_days must be between 7 and 365; got 3"):
        world.trainer.train("growth", horizon_days=3)
    with pytest.raises(InvalidArgument, match="horizon_days does not apply to acquisition"):
        world.trainer.train("acquisition", horizon_days=30)
    with pytest.raises(NotFound, match="no growth model has been trained yet"):
        world.trainer.get("growth")
    assert world.store.current_models() == {}


def test_no_lines_no_model(database_url: str) -> None:
    store = SegmentStore(make_engine(database_url))
    store.migrate()
    trainer = Trainer(store, InteractionCache(direct_interactions(FakeProfile())), lambda: NOW)
    with pytest.raises(FailedPrecondition, match="no order lines yet"):
        trainer.train("retention")


def test_acquisition_learns_from_the_seed_segment_the_user_chose(world: World) -> None:
    default = world.trainer.train("acquisition")
    assert (default.seed_segment, default.seed_version, default.horizon_days) == ("", 0, 0)
    assert default.quality.better_than_chance and "customer holdout" in default.evaluation
    assert default.features == predict.LOOKALIKE_COLUMNS

    with pytest.raises(NotFound, match="no segment named 'nope'"):
        world.trainer.train("acquisition", seed_segment="nope")
    world.segments.create("loyal", "frequency >= 2")
    with pytest.raises(FailedPrecondition, match="'loyal' has no version yet; refresh it first"):
        world.trainer.train("acquisition", seed_segment="loyal")
    world.segments.refresh("loyal")
    world.segments.refresh("loyal")
    seeded = world.trainer.train("acquisition", seed_segment="loyal")
    assert (seeded.version, seeded.seed_segment, seeded.seed_version) == (2, "loyal", 2)
    assert seeded.quality.size > 0  # reported whatever it is; this seed is random, so no claim on its AUC


# ---- model audiences ----

def test_model_audience_top_k_is_the_highest_scores_with_the_scores_kept(world: World) -> None:
    created = world.segments.create("churners", "", "likely to churn", ModelAudience("retention", top_k=50))
    assert created.kind == "model" and created.rule == "" and created.model == ModelAudience("retention", 50, None)
    assert world.store.get_segment("churners") == created
    with pytest.raises(FailedPrecondition, match="no retention model has been trained yet; train one first"):
        world.segments.refresh("churners")
    assert world.segments.get("churners")[1] == []

    world.trainer.train("retention", horizon_days=HORIZON)
    version = world.segments.refresh("churners")
    assert (version.number, version.size, version.portraits, version.model_version) == (1, 50, N, 1)
    assert version.rule.startswith("retention model, top 50 (model version 1, held-out AUC 0.")
    ids, scores = member_rows(world.segments, "churners")
    assert len(ids) == len(scores) == 50 and all(0 <= s <= 1 for s in scores)
    everyone = candidate_scores(world, "retention")
    assert dict(zip(ids, scores, strict=True)) == pytest.approx(everyone[ids].to_dict())
    assert min(scores) >= everyone.drop(ids).max()
    # Usable in rules like any segment.
    assert world.segments.preview('in_segment("churners")').count == 50


def test_model_audience_threshold_and_a_newer_model(world: World) -> None:
    world.trainer.train("growth", horizon_days=HORIZON)
    world.segments.create("growers", "", model=ModelAudience("growth", threshold=0.5))
    version = world.segments.refresh("growers")
    everyone = candidate_scores(world, "growth")
    assert 0 < version.size == int((everyone >= 0.5).sum()) < len(everyone)
    assert min(member_rows(world.segments, "growers")[1]) >= 0.5
    world.trainer.train("growth", horizon_days=60)
    newer = world.segments.refresh("growers")
    assert (newer.number, newer.model_version) == (2, 2)
    assert [v.model_version for v in world.segments.get("growers")[1]] == [2, 1]


def test_rule_segments_keep_no_scores(world: World) -> None:
    world.segments.create("buyers", "has_orders")
    world.segments.refresh("buyers")
    ids, scores = member_rows(world.segments, "buyers")
    assert ids and scores == []
    assert world.segments.get("buyers")[1][0].model_version is None


def test_a_failed_model_refresh_keeps_the_previous_version_current(world: World) -> None:
    world.trainer.train("retention", horizon_days=HORIZON)
    world.segments.create("churners", "", model=ModelAudience("retention", top_k=20))
    first = world.segments.refresh("churners")
    world.profile.interactions_unavailable = True
    with pytest.raises(Unavailable, match="interaction export failed"):
        world.segments.refresh("churners")
    segment, versions = world.segments.get("churners")
    assert segment.current == first and [v.number for v in versions] == [1]


def test_an_audience_needs_cached_portraits(database_url: str) -> None:
    store = SegmentStore(make_engine(database_url))
    store.migrate()
    profile = FakeProfile()
    profile.put_lines(synthetic.order_lines(N, pd.Timestamp(NOW)))
    lines = InteractionCache(direct_interactions(profile))
    Trainer(store, lines, lambda: NOW).train("retention", horizon_days=HORIZON)
    segments = Segments(store, lambda: NOW, scorer=Scorer(store, lines, lambda: NOW))
    segments.create("churners", "", model=ModelAudience("retention", top_k=20))
    with pytest.raises(FailedPrecondition, match="no portraits are cached yet"):
        segments.refresh("churners")


def test_erasure_reaches_the_interaction_lines_and_the_audience(world: World) -> None:
    world.trainer.train("retention", horizon_days=HORIZON)
    world.segments.create("churners", "", model=ModelAudience("retention", top_k=30))
    world.segments.refresh("churners")
    victim = member_rows(world.segments, "churners")[0][0]
    assert world.segments.erase(victim)[0]
    assert victim not in set(world.lines.lines()["customer_id"])
    assert victim not in member_rows(world.segments, "churners")[0]
    assert victim not in member_rows(world.segments, "churners")[0]
    version = world.segments.refresh("churners")
    assert victim not in member_rows(world.segments, "churners")[0] and version.size == 30


# ---- the store ----

def _info(goal: str, auc: float = 0.7, flag: bool = True) -> ModelInfo:
    quality = Quality(auc, math.nan if math.isnan(auc) else 0.02, math.nan if math.isnan(auc) else 1.8, 0.3,
                      30, 100, flag)
    return ModelInfo(goal, 0, NOW, 90, "", 0, "{}", 1000, 50, 80, 0.25, 0.1, 0.4, quality, "test", ("a", "b"))


def test_models_are_numbered_per_goal_and_nan_survives_the_round_trip(database_url: str) -> None:
    store = SegmentStore(make_engine(database_url))
    store.migrate()
    assert store.current_model("growth") is None
    assert store.write_model(_info("growth"), b"one", persist.digest_of(b"one")).version == 1
    assert store.write_model(_info("retention"), b"r", persist.digest_of(b"r")).version == 1
    single_class = store.write_model(_info("growth", math.nan, False), b"two", persist.digest_of(b"two"))
    assert single_class.version == 2
    current = store.current_models()
    assert {g: m.version for g, m in current.items()} == {"growth": 2, "retention": 1}
    q = current["growth"].quality
    assert math.isnan(q.auc) and math.isnan(q.auc_se) and math.isnan(q.top_decile_lift) and not q.better_than_chance
    assert current["retention"].quality == _info("retention").quality and current["retention"].features == ("a", "b")
    assert store.model_data("growth", 1) == (b"one", persist.digest_of(b"one"))
    assert store.model_data("growth", 9) is None
    for _ in range(3):
        store.write_model(_info("growth"), b"x", persist.digest_of(b"x"))
    assert store.prune_models("growth", 2) == 3
    assert [m.version for m in store.model_versions("growth")] == [5, 4]
    assert [m.version for m in store.model_versions("retention")] == [1]


def test_scores_are_stored_exactly_with_their_members(database_url: str) -> None:
    store = SegmentStore(make_engine(database_url))
    store.migrate()
    profile = FakeProfile()
    profile.put(synthetic_protos(10))
    segments = Segments(store, lambda: NOW, export=direct_export(profile))
    segments.sync()
    segments.create("scored", "", model=ModelAudience("growth", top_k=3))
    segment = store.get_segment("scored")
    assert segment is not None
    scores = np.array([0.1 + 1e-12, 2 / 3, 0.999999])
    version = store.write_version(segment.id, "growth model, top 3", np.array([7, 2, 5]), 10, 0.0, NOW,
                                  scores=scores, model_version=4)
    assert version.model_version == 4
    page = store.member_page(version.id, 0, 10)
    assert [(key, score) for key, _, score in page] == [(2, 2 / 3), (5, 0.999999), (7, 0.1 + 1e-12)]
    assert sorted(store.member_ids(version.id)) == sorted(cid for _, cid, _ in page)
