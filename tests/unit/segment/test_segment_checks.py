"""Checking rules against the trait catalogue: unknown traits, type mismatches, values, segments."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.segment.checks import (
    AllOf,
    Flag,
    InSegment,
    ListHas,
    Negate,
    Rule,
    TraitCompare,
    TraitIn,
    TraitsCompare,
    compile_rule,
)
from services.segment.rules import RuleError
from services.segment.traits import TRAITS

SEGMENTS = ("vip", "rfm_champions")


def check(text: str) -> Rule:
    return compile_rule(text, SEGMENTS.__contains__, SEGMENTS)


def problems(text: str) -> list[str]:
    with pytest.raises(RuleError) as caught:
        check(text)
    return [str(p) for p in caught.value.problems]


def test_unknown_trait_is_refused_with_position_and_suggestion() -> None:
    assert problems("recency_days <= 90 and monetry > 1000") == [
        "line 1, column 24: unknown trait 'monetry' — did you mean 'monetary'?"]


def test_an_unknown_trait_without_a_close_match_points_at_the_guide() -> None:
    assert problems("zzz > 1") == ["line 1, column 1: unknown trait 'zzz'; the traits are listed in the rule "
                                   "guide (RULES.md)"]


def test_every_problem_is_reported_in_order() -> None:
    found = problems('frequncy > 1 and region > "A"\nor lifecycle == "churn"')
    assert found == [
        "line 1, column 1: unknown trait 'frequncy' — did you mean 'frequency'?",
        "line 1, column 25: 'region' is a text: '>' does not apply; write region == \"...\" or region in "
        "(\"...\", ...)",
        "line 2, column 17: \"churn\" is not a lifecycle value; expected one of: new, active, at_risk, dormant, "
        "churned — did you mean 'churned'?",
    ]


@pytest.mark.parametrize(("text", "message"), [
    ('monetary > "1000"', "column 12: 'monetary' is an amount of money (in currency units); compare it with a "
                          "number, not with the text \"1000\""),
    ("frequency == true", "column 14: 'frequency' is a number; compare it with a number, not with true/false"),
    ("has_orders > 1", "column 12: 'has_orders' is yes/no: '>' does not apply"),
    ("has_orders == 1", "column 15: 'has_orders' is yes/no; write has_orders, not has_orders"),
    ("region == 3", "column 11: 'region' is a text; compare it with a text in quotes, not with the number 3"),
    ('top_categories == "Home"', "column 1: 'top_categories' is a list of texts; write \"Home\" in top_categories"),
    ('region in top_categories', "column 1: write the value in quotes, e.g. \"region\" in top_categories"),
    ('"Home" in region', "column 11: 'region' is a text, not a list"),
    ("frequency", "column 1: 'frequency' alone is not a condition; compare it with a number, e.g. frequency >= 2"),
    ("5", "column 1: the number 5 alone is not a condition"),
    ("1 < 2", "column 1: this compares two fixed values; one side must be a trait"),
    ("views > region", "column 7: 'views' is a number and 'region' is a text; they cannot be compared"),
    ("lifecycle == at_risk", "column 14: 'at_risk' is not a trait; if it is a value, put it in quotes: \"at_risk\""),
    ('preferred_payment in ("alipay", "paypal")', "column 33: \"paypal\" is not a preferred_payment value"),
    ("top_categories in (\"Home\")", "column 1: 'top_categories' is a list of texts"),
    ("region in (France)", "column 12: the list after 'in' holds fixed values; 'France' is not one"),
    ('in_segmnt("vip")', "column 1: unknown function 'in_segmnt' — did you mean 'in_segment'?"),
    ("in_segment(vip)", "column 1: in_segment takes one segment name in quotes"),
    ('in_segment("vipp")', "column 12: there is no segment named 'vipp' — did you mean 'vip'?"),
    ("in_segment > 1", "column 1: in_segment is a function: write in_segment(\"name\")"),
])
def test_type_mismatches_are_refused_in_words_a_marketer_reads(text: str, message: str) -> None:
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("line 1, " + message), found[0]


def test_a_valid_rule_becomes_typed_conditions() -> None:
    rule = check('lifecycle in ("at_risk", "dormant") and "Home" in top_categories and in_segment("vip") '
                 "and not consent_sms and 1000 < monetary and views > carts")
    assert isinstance(rule.condition, AllOf)
    lifecycle, home, vip, sms, money, views = rule.condition.items
    assert lifecycle == TraitIn(TRAITS["lifecycle"], ("at_risk", "dormant"), False)
    assert home == ListHas(TRAITS["top_categories"], "Home", False)
    assert vip == InSegment("vip")
    assert sms == Negate(Flag(TRAITS["consent_sms"]))
    # A literal on the left is turned around: 1000 < monetary is monetary > 1000.
    assert money == TraitCompare(TRAITS["monetary"], ">", Decimal(1000))
    assert views == TraitsCompare(TRAITS["views"], ">", TRAITS["carts"])
    assert rule.traits == {"lifecycle", "top_categories", "consent_sms", "monetary", "views", "carts"}
    assert rule.segments == {"vip"}


def test_flag_comparisons_are_normalised() -> None:
    flag = Flag(TRAITS["has_orders"])
    assert check("has_orders == true").condition == flag
    assert check("has_orders != true").condition == Negate(flag)
    assert check("has_orders == false").condition == Negate(flag)
    assert check("false != has_orders").condition == flag


def test_the_rfm_segment_values_are_the_profile_names() -> None:
    assert check('rfm_segment == "cant_lose_them"').traits == {"rfm_segment"}
    assert problems('rfm_segment == "Champions"')[0].endswith("did you mean 'champions'?")
