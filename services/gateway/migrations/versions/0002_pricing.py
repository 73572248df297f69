"""Pricing: rule-set versions, quotes, redemptions and per-rule spend.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pricing_rule_sets",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "pricing_quotes",
        sa.Column("quote_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("rule_set_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("discounts", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("quote_id"),
    )
    op.create_index("ix_pricing_quotes_customer_id", "pricing_quotes", ["customer_id"])
    op.create_table(
        "pricing_redemptions",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("quote_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("rule_set_version", sa.Integer(), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("quote_id"),
    )
    op.create_index("ix_pricing_redemptions_customer_id", "pricing_redemptions", ["customer_id"])
    op.create_table(
        "pricing_redemption_rules",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "rule_id"),
    )
    op.create_index("ix_pricing_redemption_rules_customer_rule", "pricing_redemption_rules",
                    ["customer_id", "rule_id"])
    op.create_table(
        "pricing_rule_spend",
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("discount_minor", sa.BigInteger(), nullable=False),
        sa.Column("redemptions", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id"),
    )


def downgrade() -> None:
    op.drop_table("pricing_rule_spend")
    op.drop_index("ix_pricing_redemption_rules_customer_rule", table_name="pricing_redemption_rules")
    op.drop_table("pricing_redemption_rules")
    op.drop_index("ix_pricing_redemptions_customer_id", table_name="pricing_redemptions")
    op.drop_table("pricing_redemptions")
    op.drop_index("ix_pricing_quotes_customer_id", table_name="pricing_quotes")
    op.drop_table("pricing_quotes")
    op.drop_table("pricing_rule_sets")
