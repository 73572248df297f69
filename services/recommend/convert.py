"""Recommend protos <-> domain values: items, training parameters, model versions, filters, rankings."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from marksman.common.v1 import common_pb2
from marksman.recommend.v1 import recommend_pb2 as pb

from services.common.clock import parse_instant
from services.recommend.catalogue import SOURCE_CATALOGUE, SOURCE_EVENTS, Item
from services.recommend.recipe import Recipe
from services.recommend.scoring import Ranked
from services.recommend.serving import Wanted
from services.recommend.store import FAILED, REJECTED, SERVING, SUPERSEDED, TRAINING, ModelVersion

_SOURCES = {SOURCE_CATALOGUE: pb.ITEM_SOURCE_CATALOGUE, SOURCE_EVENTS: pb.ITEM_SOURCE_EVENTS}
_STATES = {TRAINING: pb.MODEL_STATE_TRAINING, SERVING: pb.MODEL_STATE_SERVING, REJECTED: pb.MODEL_STATE_REJECTED,
           FAILED: pb.MODEL_STATE_FAILED, SUPERSEDED: pb.MODEL_STATE_SUPERSEDED}


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def item_from_proto(item: pb.Item) -> Item:
    return Item(
        sku=item.sku, category=item.category, brand=item.brand, price_minor=item.price.amount_minor,
        currency=item.price.currency, in_stock=item.in_stock if item.HasField("in_stock") else True,
        tags=tuple(item.tags), hidden=item.hidden,
    )


def item_to_proto(item: Item) -> pb.Item:
    price = common_pb2.Money(amount_minor=item.price_minor, currency=item.currency)
    return pb.Item(sku=item.sku, category=item.category, brand=item.brand, price=price, in_stock=item.in_stock,
                   tags=list(item.tags), price_band=item.price_band,
                   source=_SOURCES.get(item.source, pb.ITEM_SOURCE_UNSPECIFIED),
                   updated_at=ts(item.updated_at) if item.updated_at else None, hidden=item.hidden)


def item_features(item: Item) -> dict[str, Any]:
    """What the model core places a new item by."""
    return {"category": item.category, "brand": item.brand, "price_band": item.price_band, "tags": list(item.tags)}


def overrides_from_proto(params: pb.TrainParams) -> dict[str, Any]:
    """The parameters the caller set (proto3 optional fields), by name."""
    return {field.name: value for field, value in params.ListFields()}


def params_to_proto(recipe: Recipe) -> pb.TrainParams:
    return pb.TrainParams(**recipe.overrides())


def _metrics(values: Mapping[str, Any] | None) -> pb.RankingMetrics | None:
    if not values:
        return None

    def number(name: str) -> float:
        value = values.get(name)
        return float(value) if isinstance(value, int | float) else float("nan")

    return pb.RankingMetrics(precision_at_k=number("precision"), recall_at_k=number("recall"), auc=number("auc"),
                             coverage=number("coverage"))


def _report(report: Mapping[str, Any] | None) -> pb.OfflineReport | None:
    if not report:
        return None
    cutoff = report.get("cutoff")
    return pb.OfflineReport(
        k=int(report.get("k", 0)),
        cutoff=ts(parse_instant(cutoff)) if isinstance(cutoff, str) and cutoff else None,
        model=_metrics(report.get("model")),
        popularity=_metrics(report.get("popularity")),
        customers_evaluated=int(report.get("users_evaluated", 0)),
        test_purchases=int(report.get("test_purchases", 0)),
        train_interactions=int(report.get("train_interactions", 0)),
    )


def version_to_proto(v: ModelVersion) -> pb.ModelVersion:
    compared = v.metrics.get("compared") or {}
    return pb.ModelVersion(
        version=v.version, state=_STATES.get(v.state, pb.MODEL_STATE_UNSPECIFIED), reason=v.reason, forced=v.forced,
        params=params_to_proto(Recipe.from_dict(v.params)), train_until_cutoff=v.train_until_cutoff,
        interactions=v.interactions, customers=v.customers, items=v.items, started_at=ts(v.started_at),
        finished_at=ts(v.finished_at) if v.finished_at else None, seconds=v.seconds,
        report=_report(v.metrics.get("report")), compared_serving=_metrics(compared),
        compared_version=int(compared.get("version") or 0),
    )


def wanted_from_proto(filters: pb.Filters) -> Wanted:
    return Wanted(
        categories_in=frozenset(filters.categories_in), categories_not_in=frozenset(filters.categories_not_in),
        exclude_skus=frozenset(filters.exclude_skus), only_in_stock=filters.only_in_stock,
        exclude_bought=filters.exclude_bought, respect_purchasing_power=filters.respect_purchasing_power,
        brands_in=frozenset(filters.brands_in), brands_not_in=frozenset(filters.brands_not_in),
    )


def scored(ranked: Ranked) -> list[pb.ScoredItem]:
    return [pb.ScoredItem(sku=sku, score=score) for sku, score in zip(ranked.skus, ranked.scores, strict=True)]
