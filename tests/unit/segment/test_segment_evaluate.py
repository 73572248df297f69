"""The vectorised evaluator agrees with plain pandas masks and with a row-by-row reference on generated portraits."""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.segment import synthetic
from services.segment.checks import compile_rule
from services.segment.evaluate import mask
from services.segment.frame import PortraitFrame
from services.segment.traits import CATEGORY_SLOTS, LIFECYCLE_STAGES, PAYMENT_CHANNELS, RFM_SEGMENTS

RAW = synthetic.portraits(600, seed=11, currencies=("GBP", "JPY"))
FRAME = PortraitFrame.from_columns(RAW)
ROWS: list[dict[str, Any]] = [{str(k): v for k, v in row.items()} for row in RAW.to_dict("records")]
VIP_KEYS = np.sort(RAW["key"].to_numpy()[::7])
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def members_of(name: str) -> np.ndarray:
    return VIP_KEYS if name == "vip" else np.empty(0, dtype="int64")


def evaluate(text: str, frame: PortraitFrame = FRAME) -> np.ndarray:
    rule = compile_rule(text, lambda name: name in ("vip", "empty"), ["vip", "empty"])
    return mask(rule.condition, frame, members_of)


def same(text: str, expected: pd.Series | np.ndarray) -> None:
    got = evaluate(text)
    assert got.dtype == bool and got.shape == (len(RAW),)
    assert np.array_equal(got, np.asarray(expected, dtype=bool)), text


# ---- against plain pandas masks ----

def test_the_issue_examples_match_plain_pandas() -> None:
    d = RAW
    gbp = d.currency == "GBP"
    # Money is written in currency units: 1000 is £1,000.00 (100,000 pence) and ¥1,000.
    monetary_over_1000 = (gbp & (d.monetary_minor > 100_000)) | (~gbp & (d.monetary_minor > 1000))
    same("recency_days <= 90 and monetary > 1000 or frequency >= 5",
         ((d.recency_days <= 90) & (d.frequency >= 1) & monetary_over_1000) | (d.frequency >= 5))
    has_home = (d[list(CATEGORY_SLOTS)] == "Home").any(axis=1)
    same('lifecycle in ("at_risk", "dormant") and "Home" in top_categories',
         d.lifecycle.isin(["at_risk", "dormant"]) & has_home)
    same('price_sensitivity >= 0.6 and preferred_payment == "alipay"',
         (d.price_sensitivity >= 0.6) & (d.preferred_payment == "alipay"))
    same('in_segment("vip")', d.key.isin(VIP_KEYS))
    same('in_segment("empty") or not in_segment("vip")', ~d.key.isin(VIP_KEYS))


def test_traits_undefined_without_orders_match_no_comparison() -> None:
    d = RAW
    assert (d.recency_days == -1).any()
    same("recency_days <= 90", (d.recency_days <= 90) & d.has_orders)
    # Negation still includes them: they have not ordered in the last 90 days.
    same("not (recency_days <= 90)", ~((d.recency_days <= 90) & d.has_orders))
    same("purchase_interval_days < 30", (d.purchase_interval_days < 30) & (d.frequency >= 2))
    same("r_score <= 2", (d.r_score <= 2) & (d.frequency >= 1))


def test_money_is_converted_to_minor_units_exactly_per_currency() -> None:
    d = RAW
    gbp = d.currency == "GBP"
    same("monetary >= 10.05", (gbp & (d.monetary_minor >= 1005)) | (~gbp & (d.monetary_minor >= 10.05)))
    same("monetary in (0, 1)", (gbp & d.monetary_minor.isin([0, 100])) | (~gbp & d.monetary_minor.isin([0, 1])))
    same("monetary > average_order_value",
         (d.monetary_minor > d.average_order_value_minor) & (d.frequency >= 1))


def test_unknown_values_of_open_texts_match_nobody_and_differ_from_everybody() -> None:
    same('region == "Atlantis"', np.zeros(len(RAW), dtype=bool))
    same('region != "Atlantis"', np.ones(len(RAW), dtype=bool))
    same('"Nope" in top_categories', np.zeros(len(RAW), dtype=bool))
    same("true", np.ones(len(RAW), dtype=bool))


def test_an_empty_frame_gives_an_empty_mask() -> None:
    empty = PortraitFrame.empty()
    rule = compile_rule('"Home" in top_categories and monetary > 1 or in_segment("vip")', "vip".__eq__)
    assert mask(rule.condition, empty, members_of).shape == (0,)


# ---- against a row-by-row reference, on generated rules ----

Case = tuple[str, Callable[[dict[str, Any]], bool]]


def _defined(row: dict[str, Any], minimum: int) -> bool:
    return bool(row["frequency"] >= minimum)


def _number(trait: str, column: str, minimum: int, values: st.SearchStrategy[Decimal]) -> st.SearchStrategy[Case]:
    def case(op: str, value: Decimal) -> Case:
        return f"{trait} {op} {value}", lambda r: _defined(r, minimum) and OPS[op](Decimal(str(r[column])), value)
    return st.builds(case, st.sampled_from(sorted(OPS)), values)


def _money(op: str, value: Decimal) -> Case:
    def check(row: dict[str, Any]) -> bool:
        scale = Decimal(1) if row["currency"] == "JPY" else Decimal(100)
        return OPS[op](Decimal(row["monetary_minor"]), value * scale)
    return f"monetary {op} {value}", check


def _text(trait: str, column: str, vocabulary: tuple[str, ...]) -> st.SearchStrategy[Case]:
    def equal(op: str, value: str) -> Case:
        return f'{trait} {op} "{value}"', lambda r: OPS[op](r[column], value)

    def among(negated: bool, values: list[str]) -> Case:
        listed = ", ".join(f'"{v}"' for v in values)
        word = "not in" if negated else "in"
        return f"{trait} {word} ({listed})", lambda r: (r[column] in values) != negated

    return st.one_of(st.builds(equal, st.sampled_from(["==", "!="]), st.sampled_from(vocabulary)),
                     st.builds(among, st.booleans(), st.lists(st.sampled_from(vocabulary), min_size=1, max_size=3)))


def _category(negated: bool, value: str) -> Case:
    word = "not in" if negated else "in"
    return f'"{value}" {word} top_categories', lambda r: (value in [r[s] for s in CATEGORY_SLOTS]) != negated


def _flag(trait: str, form: int) -> Case:
    texts = [trait, f"{trait} == true", f"{trait} == false", f"not {trait}"]
    return texts[form], lambda r: bool(r[trait]) == (form < 2)


ATOMS: st.SearchStrategy[Case] = st.one_of(
    _number("recency_days", "recency_days", 1, st.integers(-5, 800).map(Decimal)),
    _number("frequency", "frequency", 0, st.integers(0, 8).map(Decimal)),
    _number("views", "views", 0, st.integers(0, 15).map(Decimal)),
    _number("m_score", "m_score", 1, st.integers(0, 6).map(Decimal)),
    _number("price_sensitivity", "price_sensitivity", 0, st.integers(0, 100).map(lambda v: Decimal(v) / 100)),
    st.builds(_money, st.sampled_from(sorted(OPS)), st.integers(-1000, 600_000).map(lambda v: Decimal(v) / 100)),
    _text("lifecycle", "lifecycle", LIFECYCLE_STAGES),
    _text("rfm_segment", "rfm_segment", RFM_SEGMENTS),
    _text("preferred_payment", "preferred_payment", PAYMENT_CHANNELS),
    _text("region", "region", (*synthetic.REGIONS, "Atlantis")),
    _text("currency", "currency", ("GBP", "JPY", "EUR")),
    st.builds(_category, st.booleans(), st.sampled_from((*synthetic.CATEGORIES, "Nope"))),
    st.builds(_flag, st.sampled_from(["has_orders", "consent_email", "consent_push"]), st.integers(0, 3)),
    st.just(("views > carts", lambda r: r["views"] > r["carts"])),
    st.just(('in_segment("vip")', lambda r: r["key"] in set(VIP_KEYS.tolist()))),
)


def _combine(children: st.SearchStrategy[Case]) -> st.SearchStrategy[Case]:
    def both(a: Case, b: Case) -> Case:
        return f"({a[0]}) and ({b[0]})", lambda r: a[1](r) and b[1](r)

    def either(a: Case, b: Case) -> Case:
        return f"({a[0]}) or ({b[0]})", lambda r: a[1](r) or b[1](r)

    def negate(a: Case) -> Case:
        return f"not ({a[0]})", lambda r: not a[1](r)

    return st.one_of(st.builds(both, children, children), st.builds(either, children, children),
                     st.builds(negate, children))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(ATOMS, _combine, max_leaves=6))
def test_generated_rules_match_a_row_by_row_reference(case: Case) -> None:
    text, reference = case
    expected = np.array([reference(row) for row in ROWS], dtype=bool)
    same(text, expected)


# ---- the frame ----

def test_upsert_replaces_rows_by_key_and_learns_new_texts() -> None:
    changed = synthetic.portraits(3, seed=5, first_key=int(RAW.key.max()) - 1)
    changed["region"] = ["Atlantis", "France", "Atlantis"]
    changed["top_category_1"] = ["Comics", "", "Home"]
    merged = FRAME.upsert(PortraitFrame.from_columns(changed))
    assert merged.size == FRAME.size + 1
    data = merged.data.set_index("key")
    assert list(data.loc[changed.key, "region"]) == ["Atlantis", "France", "Atlantis"]
    rule = compile_rule('region == "Atlantis" and "Comics" in top_categories', lambda _n: False)
    assert mask(rule.condition, merged, members_of).sum() == 1
    assert FRAME.size == len(RAW)  # the original frame is untouched


def test_without_drops_keys() -> None:
    key = int(RAW.key.iloc[0])
    smaller = FRAME.without([key, 10**9])
    assert smaller.size == FRAME.size - 1 and key not in smaller.keys


@pytest.mark.parametrize("column", ["lifecycle", "rfm_segment", "preferred_payment"])
def test_closed_texts_keep_one_dtype_across_upserts(column: str) -> None:
    merged = FRAME.upsert(PortraitFrame.from_columns(synthetic.portraits(5, seed=2, first_key=10**6)))
    assert merged.data[column].dtype == FRAME.data[column].dtype


def test_frames_from_store_rows_and_from_columns_are_the_same() -> None:
    from services.segment.frame import COLUMNS

    rows = list(RAW[list(COLUMNS)].itertuples(index=False, name=None))
    from_rows = PortraitFrame.from_rows(rows).data
    pd.testing.assert_frame_equal(from_rows, FRAME.data, check_categorical=False)
    assert PortraitFrame.from_rows([]).size == 0
