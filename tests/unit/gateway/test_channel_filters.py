"""Channel rules on the recommendation routes: the channel's filters reach recommend (a real gRPC fake) on top
of the caller's, the answer names the rule applied, the API key's channel is the default."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from marksman.recommend.v1 import recommend_pb2 as pb

from services.gateway.channel_filters import Applied, merged
from services.gateway.channel_rules import RecommendationFilters
from services.gateway.popular import Popular, fallback_answer
from services.gateway.store import KeyStore
from tests.unit.gateway import test_recommend_routes as routes
from tests.unit.gateway.gateway_fakes import bearer
from tests.unit.gateway.test_recommend_routes import KNOWN, FakeRecommend

# The recommend routes' fixtures: a real gRPC server with the fake service, and the app wired to it.
fake = routes.fake
rec = routes.rec

MARKETPLACE = {"only_in_stock": True, "brands": ["Own"], "categories": ["Home", "Kitchen"],
               "exclude_categories": ["Fees"]}
RULES: dict[str, Any] = {"currency": "GBP", "rules": [], "channel_rules": {
    "channels": {"marketplace": {"recommendations": MARKETPLACE},
                 "partner": {"recommendations": {"exclude_brands": ["Rival"]}}},
    "api_keys": {"acme": {"sales_channel": "partner:acme"}}}}


def save(client: TestClient, admin: dict[str, str]) -> None:
    assert client.put("/v1/pricing/rule-set", json=RULES, headers=admin).status_code == 201


def test_the_channels_filters_narrow_the_callers_and_the_answer_names_the_rule(
        rec: TestClient, admin: dict[str, str], platform: dict[str, str], fake: tuple[FakeRecommend, str]) -> None:
    save(rec, admin)
    answer = rec.get(f"/v1/customers/{KNOWN}/recommendations?k=3&channel=marketplace&category=Home&category=Toys"
                     "&exclude_category=Toys", headers=platform)
    assert answer.status_code == 200, answer.text
    sent = fake[0].requests[-1].filters
    assert sent.only_in_stock and list(sent.categories_in) == ["Home"]
    assert list(sent.categories_not_in) == ["Toys", "Fees"] and list(sent.brands_in) == ["Own"]
    assert answer.json()["channel"] == {"name": "marketplace", "rule": "marketplace", "rule_set_version": 1,
                                        "filters": {**MARKETPLACE, "exclude_brands": []}}
    assert len(answer.json()["items"]) == 3


def test_without_a_rule_for_the_channel_only_the_callers_filters_apply(
        rec: TestClient, admin: dict[str, str], platform: dict[str, str], fake: tuple[FakeRecommend, str]) -> None:
    save(rec, admin)
    answer = rec.get(f"/v1/customers/{KNOWN}/recommendations?k=2&category=Toys", headers=platform).json()
    assert answer["channel"] == {"name": "web", "rule": None, "rule_set_version": 1, "filters": None}
    sent = fake[0].requests[-1].filters
    assert list(sent.categories_in) == ["Toys"] and not sent.only_in_stock and not sent.brands_in


def test_the_api_keys_channel_is_the_default_and_one_partner_falls_back_to_partner(
        rec: TestClient, admin: dict[str, str], keys: KeyStore, fake: tuple[FakeRecommend, str]) -> None:
    save(rec, admin)
    acme = bearer(keys.create_key("acme", ["platform"]))
    answer = rec.get("/v1/items/85123A/similar?k=1", headers=acme).json()
    assert answer["channel"]["name"] == "partner:acme" and answer["channel"]["rule"] == "partner"
    assert list(fake[0].requests[-1].filters.brands_not_in) == ["Rival"]
    # A channel named in the request wins over the key's.
    web = rec.get("/v1/items/85123A/similar?k=1&channel=web", headers=acme).json()
    assert web["channel"]["rule"] is None and not fake[0].requests[-1].filters.brands_not_in


def test_no_category_in_common_answers_no_items_without_asking_recommend(
        rec: TestClient, admin: dict[str, str], platform: dict[str, str], fake: tuple[FakeRecommend, str]) -> None:
    save(rec, admin)
    asked = len(fake[0].requests)
    answer = rec.get(f"/v1/customers/{KNOWN}/recommendations?channel=marketplace&category=Toys", headers=platform)
    assert answer.status_code == 200 and answer.json()["items"] == [] and len(fake[0].requests) == asked
    assert answer.json()["channel"]["rule"] == "marketplace"


def test_an_unknown_channel_is_422_naming_the_parameter(rec: TestClient, platform: dict[str, str]) -> None:
    for channel in ("tv", "partner:", "partner:Bad!"):
        answer = rec.get(f"/v1/customers/{KNOWN}/recommendations?channel={channel}", headers=platform)
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "channel"], channel


def test_merged_keeps_the_callers_filters_and_adds_the_rules() -> None:
    caller = pb.Filters(categories_not_in=["Fees"], exclude_skus=["A"], exclude_bought=True)
    assert merged(caller, Applied("web")) is caller
    rule = RecommendationFilters(exclude_categories=["Fees", "Toys"], brands=["Own"])
    out = merged(caller, Applied("app", "app", 2, rule))
    assert out is not None and list(out.categories_not_in) == ["Fees", "Toys"] and list(out.exclude_skus) == ["A"]
    assert out.exclude_bought and list(out.brands_in) == ["Own"] and not out.categories_in
    assert list(caller.brands_in) == []  # the caller's message is left as it was


def test_the_popular_fallback_refuses_a_channels_brand_filter_rather_than_break_it() -> None:
    popular = Popular((("S1", 9.0), ("S2", 8.0)), 0.0)
    assert fallback_answer(popular, "c", 2, pb.Filters(), "", "down", 1.0) is not None
    for filters in (pb.Filters(brands_in=["Own"]), pb.Filters(brands_not_in=["Rival"])):
        assert fallback_answer(popular, "c", 2, filters, "", "down", 1.0) is None
