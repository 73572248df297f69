"""Exported portrait protos become cache rows: enums by name, consent per channel, ranked category slots."""

from __future__ import annotations

from marksman.common.v1 import common_pb2
from marksman.profile.v1 import profile_pb2

from services.segment.sync import record_from_proto
from services.segment.traits import CATEGORY_SLOTS
from tests.unit.segment.segment_fakes import NOW


def test_a_portrait_becomes_a_cache_row() -> None:
    portrait = profile_pb2.Portrait(
        customer_id="12347", has_orders=True, recency_days=3, frequency=7,
        monetary=common_pb2.Money(amount_minor=432_210, currency="GBP"),
        average_order_value=common_pb2.Money(amount_minor=61_744, currency="GBP"),
        r_score=5, f_score=5, m_score=5, rfm_segment="champions",
        lifecycle_stage=common_pb2.LIFECYCLE_STAGE_AT_RISK,
        top_categories=["Home", "Garden", "Kitchen", "Toys", "Bags", "Gifts"],
        preferred_payment_channel=common_pb2.PAYMENT_CHANNEL_ALIPAY,
        preferred_sales_channel=common_pb2.SALES_CHANNEL_MINI_PROGRAM,
        region="Iceland", views=4, consents=[
            profile_pb2.Consent(channel=common_pb2.CONTACT_CHANNEL_EMAIL, granted=True),
            profile_pb2.Consent(channel=common_pb2.CONTACT_CHANNEL_PUSH, granted=False),
        ],
    )
    portrait.computed_at.FromDatetime(NOW)
    row = record_from_proto(portrait, NOW)
    assert row["computed_at"] == NOW and row["synced_at"] == NOW
    assert (row["monetary_minor"], row["average_order_value_minor"], row["currency"]) == (432_210, 61_744, "GBP")
    assert (row["lifecycle"], row["preferred_payment"], row["preferred_sales_channel"]) == (
        "at_risk", "alipay", "mini_program")
    assert (row["consent_email"], row["consent_sms"], row["consent_push"]) == (True, False, False)
    # Ranked categories fill the slots; past the fifth they are not kept.
    assert [row[s] for s in CATEGORY_SLOTS] == ["Home", "Garden", "Kitchen", "Toys", "Bags"]


def test_unset_values_become_empty_texts_and_no_time() -> None:
    row = record_from_proto(profile_pb2.Portrait(customer_id="c1"), NOW)
    assert row["computed_at"] is None and row["lifecycle"] == "" and row["preferred_payment"] == ""
    assert [row[s] for s in CATEGORY_SLOTS] == [""] * len(CATEGORY_SLOTS)
