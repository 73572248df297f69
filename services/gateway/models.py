"""The gateway's own tables: API keys (hashes only) and pricing (rule sets, quotes, redemptions), on its own metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class GatewayModel(SQLModel, registry=registry()):
    """Base of the gateway's tables; its `metadata` holds only them (Alembic's target)."""


class ApiKey(GatewayModel, table=True):
    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    # sha256 hex of the plaintext key; the plaintext is shown once and never stored.
    key_hash: str = Field(max_length=64, unique=True, index=True)
    # Comma-separated scope names, e.g. "platform" or "admin".
    scopes: str = Field(max_length=200)
    created_at: datetime
    revoked_at: datetime | None = None



class RuleSetRow(GatewayModel, table=True):
    """One version of the pricing rule set; never changed once written."""

    __tablename__ = "pricing_rule_sets"

    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # The validated RuleSetIn as JSON (services/gateway/pricing_rules.py).
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class QuoteRow(GatewayModel, table=True):
    """A quote as given: its request and answer (JSON), kept for GET /v1/quotes/{id} and redemption."""

    __tablename__ = "pricing_quotes"

    quote_id: str = Field(primary_key=True, max_length=40)
    customer_id: str | None = Field(default=None, max_length=128, index=True)
    rule_set_version: int
    created_at: datetime
    expires_at: datetime
    # [[rule id, discount minor], ...]: what a redemption records, without parsing the whole body.
    discounts: str = Field(sa_column=Column(Text, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))


class RedemptionRow(GatewayModel, table=True):
    """An order event that redeemed a quote: one per event id, and a quote is redeemed once."""

    __tablename__ = "pricing_redemptions"

    event_id: str = Field(primary_key=True, max_length=128)
    quote_id: str = Field(max_length=40, unique=True)
    # The quote's customer (whose limits it uses); null once the customer is erased.
    customer_id: str | None = Field(default=None, max_length=128, index=True)
    rule_set_version: int
    redeemed_at: datetime


class RedemptionRuleRow(GatewayModel, table=True):
    """The discount one rule gave in one redemption: per-customer use limits count these rows."""

    __tablename__ = "pricing_redemption_rules"
    __table_args__ = (Index("ix_pricing_redemption_rules_customer_rule", "customer_id", "rule_id"),)

    event_id: str = Field(primary_key=True, max_length=128)
    rule_id: str = Field(primary_key=True, max_length=64)
    customer_id: str | None = Field(default=None, max_length=128)
    discount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))


class RuleSpendRow(GatewayModel, table=True):
    """Running totals per rule id over every redemption (offer budgets read one row, not a sum)."""

    __tablename__ = "pricing_rule_spend"

    rule_id: str = Field(primary_key=True, max_length=64)
    discount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    redemptions: int = Field(sa_column=Column(BigInteger, nullable=False))


metadata = GatewayModel.metadata
