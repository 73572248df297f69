"""The rule set's channel section: validation on save (422 naming what is wrong) and the lookups routes make."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from services.gateway.channel_rules import CHANNEL_RULES_EXAMPLE, ChannelRules, RateLimit
from services.gateway.pricing_rules import RuleSetIn


def rule_set(channel_rules: dict[str, Any]) -> dict[str, Any]:
    return {"currency": "GBP", "rules": [], "channel_rules": channel_rules}


def test_the_example_is_valid_and_a_rule_set_without_channel_rules_still_loads() -> None:
    rules = ChannelRules.model_validate(CHANNEL_RULES_EXAMPLE)
    assert rules.campaign_map() == {"marketplace": ["email", "push"]}
    old = RuleSetIn.model_validate_json('{"currency": "GBP", "rules": []}')
    assert old.channel_rules == ChannelRules() and old.channel_rules.key_limit("anyone") is None


def test_channel_lookup_falls_back_from_one_partner_to_all_partners() -> None:
    rules = ChannelRules.model_validate({"channels": {
        "partner": {"recommendations": {"only_in_stock": True}},
        "partner:acme": {"recommendations": {"exclude_categories": ["Fees"]}}}})
    acme = rules.channel("partner:acme")
    assert acme is not None and acme[0] == "partner:acme"
    other = rules.channel("partner:zeta")
    assert other is not None and other[0] == "partner" and other[1].recommendations.only_in_stock
    assert rules.channel("web") is None


def test_key_limits_and_channels_by_key_name() -> None:
    rules = ChannelRules.model_validate({
        "rate_limit": {"requests_per_s": 10, "burst": 20},
        "api_keys": {"acme": {"sales_channel": "partner:acme", "rate_limit": {"requests_per_s": 1, "burst": 2}},
                     "app-key": {"sales_channel": "app"}}})
    assert rules.key_limit("acme") == ("acme", RateLimit(requests_per_s=1, burst=2))
    assert rules.key_limit("app-key") == ("default", RateLimit(requests_per_s=10, burst=20))
    assert rules.key_channel("acme") == "partner:acme" and rules.key_channel("nobody") == "web"


@pytest.mark.parametrize(("channel_rules", "message"), [
    ({"channels": {"shop": {}}}, "unknown sales channel 'shop'"),
    ({"channels": {"partner:ACME!": {}}}, "unknown sales channel 'partner:ACME!'"),
    ({"api_keys": {"k": {"sales_channel": "tv"}}}, "unknown sales channel 'tv'"),
    ({"rate_limit": {"requests_per_s": -5, "burst": 10}}, "greater than or equal to 1"),
    ({"rate_limit": {"requests_per_s": 10, "burst": 0}}, "greater than or equal to 1"),
    ({"rate_limit": {"requests_per_s": 10, "burst": 5}}, "burst (5) must be at least requests_per_s (10)"),
    ({"channels": {"web": {"campaign_channels": ["fax"]}}}, "'sms', 'email', 'push', 'webhook' or 'ads'"),
    ({"channels": {"web": {"campaign_channels": ["sms", "sms"]}}}, "lists a channel twice"),
    ({"channels": {"partner:acme": {"campaign_channels": ["email"]}}}, "set them on 'partner'"),
    ({"channels": {"app": {"recommendations": {"brands": ["A"], "exclude_brands": ["A"]}}}},
     "brands both required and excluded: A"),
    ({"channels": {"app": {"recommendations": {"in_stock": True}}}}, "Extra inputs are not permitted"),
])
def test_bad_channel_rules_are_refused_with_what_is_wrong(channel_rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RuleSetIn.model_validate(rule_set(channel_rules))
    assert message in str(caught.value)


def test_saving_bad_channel_rules_answers_422_and_keeps_the_current_version(
        client: TestClient, admin: dict[str, str]) -> None:
    good = client.put("/v1/pricing/rule-set", json=rule_set(CHANNEL_RULES_EXAMPLE), headers=admin)
    assert good.status_code == 201, good.text
    assert good.json()["rule_set"]["channel_rules"]["channels"]["marketplace"]["campaign_channels"] == ["email", "push"]
    bad = client.put("/v1/pricing/rule-set", headers=admin, json=rule_set(
        {"channels": {"tv": {}}, "rate_limit": {"requests_per_s": -1, "burst": 1}}))
    assert bad.status_code == 422
    problems = {tuple(d["loc"]): d["msg"] for d in bad.json()["detail"]}
    assert "unknown sales channel 'tv'" in problems[("body", "channel_rules", "channels", "tv", "[key]")]
    assert "greater than or equal to 1" in problems[("body", "channel_rules", "rate_limit", "requests_per_s")]
    assert client.get("/v1/pricing/rule-set", headers=admin).json()["version"] == 1
