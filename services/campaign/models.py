"""The campaign service's tables (SQLModel); its migrations live in services/campaign/migrations/."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class CampaignModel(SQLModel, registry=registry()):
    """Base of the campaign tables; its metadata holds only them (other services have their own)."""


class CampaignRow(CampaignModel, table=True):
    """One campaign: its definition (the spec, as JSON) and where it stands."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    # draft, scheduled, running, paused, completed, cancelled
    state: str = Field(max_length=16, index=True)
    # The CampaignSpec as JSON (services/campaign/spec.py reads and writes it).
    spec: str = Field(sa_column=Column(Text, nullable=False))
    currency: str = Field(default="", max_length=3)
    # -1: no budget.
    budget_minor: int = Field(default=-1, sa_column=Column(BigInteger, nullable=False, default=-1))
    spent_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    segment: str = Field(max_length=64)
    audience_version: int = 0
    start_at: datetime | None = None
    created_at: datetime
    launched_at: datetime | None = None
    finished_at: datetime | None = None


class PartnerRow(CampaignModel, table=True):
    """A partner channel; only the hash of its API key is kept."""

    __tablename__ = "partners"
    __table_args__ = (
        UniqueConstraint("name", name="uq_partners_name"),
        UniqueConstraint("api_key_hash", name="uq_partners_api_key_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    endpoint: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The HMAC signing secret: it must be readable to sign, so it is stored as given.
    secret: str = Field(sa_column=Column(Text, nullable=False))
    api_key_hash: str = Field(max_length=64)
    rate_limit_per_s: int
    batch_size: int
    mode: str = Field(max_length=8)
    channel: str = Field(max_length=16)
    created_at: datetime


class DeliveryRow(CampaignModel, table=True):
    """One message to one customer of one campaign: the outbox row a launch writes and workers claim.

    The unique (campaign, customer) pair makes a second launch or a replayed crash unable to add a
    second message; the idempotency key travels with the message to the partner.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id", name="uq_deliveries_campaign_customer"),
        UniqueConstraint("idempotency_key", name="uq_deliveries_idempotency_key"),
        # The claim: due rows of a state, oldest first.
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        # Frequency caps and erasure look a customer's messages up.
        Index("ix_deliveries_customer_sent", "customer_id", "sent_at"),
        # Pull partners lease their queued rows.
        Index("ix_deliveries_partner_state", "partner_id", "state"),
        Index("ix_deliveries_campaign_state", "campaign_id", "state"),
    )

    # BIGINT on PostgreSQL; INTEGER on SQLite, where only that type makes the rowid the key.
    id: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"),
                                                         primary_key=True, autoincrement=True))
    campaign_id: int = Field(foreign_key="campaigns.id")
    customer_id: str = Field(max_length=128)
    idempotency_key: str = Field(max_length=64)
    # pending, queued, sent, failed, dead, skipped, holdout
    state: str = Field(max_length=8)
    channel: str = Field(default="", max_length=16)
    partner_id: int | None = Field(default=None, foreign_key="partners.id")
    attempts: int = 0
    next_attempt_at: datetime
    # Who holds the row and until when (a worker while sending, a pull partner while leased).
    lease_owner: str = Field(default="", max_length=64)
    lease_until: datetime | None = None
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The rendered message (JSON) while a pull partner has yet to take it; cleared once acknowledged.
    payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cost_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    unsubscribed_at: datetime | None = None


class AttributionRow(CampaignModel, table=True):
    """A targeted customer's response counted once: the first report that attributes it records it (and counts
    it in the metrics), later reports and other replicas find it here."""

    __tablename__ = "attributions"
    __table_args__ = (UniqueConstraint("campaign_id", "customer_id", name="uq_attributions_campaign_customer"),
                      Index("ix_attributions_customer", "customer_id"))

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaigns.id")
    customer_id: str = Field(max_length=128)
    revenue_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    attributed_at: datetime


class TombstoneRow(CampaignModel, table=True):
    """Salted hash of an erased customer id: a launch never targets it again."""

    __tablename__ = "tombstones"

    id_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime


class MetaRow(CampaignModel, table=True):
    """Service state: the tombstone salt."""

    __tablename__ = "service_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


metadata = CampaignModel.metadata
