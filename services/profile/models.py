"""The profile service's tables (SQLModel); its migrations live in services/profile/migrations/."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class ProfileModel(SQLModel, registry=registry()):
    """Base of the profile tables; its metadata holds only them (other services have their own)."""


class CustomerRow(ProfileModel, table=True):
    __tablename__ = "customers"

    key: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=128, unique=True, index=True)
    name: str = ""
    email: str = ""
    phone: str = ""
    push_token: str = ""
    region: str = ""
    time_zone: str = ""
    signup_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ConsentRow(ProfileModel, table=True):
    __tablename__ = "consents"

    customer_key: int = Field(primary_key=True, foreign_key="customers.key")
    channel: str = Field(primary_key=True, max_length=16)
    granted: bool
    changed_at: datetime


class IdentityLinkRow(ProfileModel, table=True):
    __tablename__ = "identity_links"

    anonymous_id: str = Field(primary_key=True, max_length=128)
    customer_key: int = Field(foreign_key="customers.key", index=True)
    merged_at: datetime


class EventRow(ProfileModel, table=True):
    """Raw events, kept so a full recompute is always possible; lines are JSON."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_events_event_id"),
        Index("ix_events_customer_key", "customer_key"),
        # Partial: most events name their customer, and an index entry per event would tax ingest.
        Index("ix_events_anonymous_id", "anonymous_id", sqlite_where=text("anonymous_id IS NOT NULL"),
              postgresql_where=text("anonymous_id IS NOT NULL")),
    )

    seq: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    event_id: str = Field(max_length=128)
    # The foreign key is the safety net of the store's in-memory id cache (see ProfileStore).
    customer_key: int | None = Field(default=None, foreign_key="customers.key")
    anonymous_id: str | None = Field(default=None, max_length=128)
    type: str = Field(max_length=16)
    occurred_at: datetime
    sales_channel: str = Field(default="", max_length=16)
    payment_channel: str = Field(default="", max_length=24)
    currency: str = Field(default="", max_length=3)
    order_id: str = Field(default="", max_length=128)
    quote_id: str = Field(default="", max_length=128)
    query: str = Field(default="", max_length=500)
    lines: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    paid_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    stored_at: datetime


class PortraitRow(ProfileModel, table=True):
    """The latest portrait of each customer; `revision` orders changes for the export cursor."""

    __tablename__ = "portraits"

    customer_key: int = Field(primary_key=True, foreign_key="customers.key")
    revision: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    computed_at: datetime
    # Every trait, as the domain Portrait holds it, JSON-encoded (the store is the only reader).
    body: str = Field(sa_column=Column(Text, nullable=False))
    rfm_segment: str = Field(default="", max_length=32, index=True)
    lifecycle_stage: str = Field(default="", max_length=16)
    monetary_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    frequency: int = 0
    currency: str = Field(default="", max_length=3)


class DirtyCustomerRow(ProfileModel, table=True):
    """Customers whose portrait trails their events; the updater drains this table."""

    __tablename__ = "dirty_customers"
    # The updater asks for the oldest mark several times a second.
    __table_args__ = (Index("ix_dirty_customers_marked", "marked"),)

    # Append-only marks (no upsert on the hot ingest path); the updater reads them per customer.
    customer_key: int = Field(primary_key=True)
    marked: int = Field(sa_column=Column(BigInteger, primary_key=True))


class BaseStatsRow(ProfileModel, table=True):
    __tablename__ = "base_stats"

    id: int | None = Field(default=None, primary_key=True)
    computed_at: datetime
    body: str = Field(sa_column=Column(Text, nullable=False))


class TombstoneRow(ProfileModel, table=True):
    """Salted hash of an erased customer id: late events for it are dropped."""

    __tablename__ = "tombstones"

    id_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime


class MetaRow(ProfileModel, table=True):
    __tablename__ = "service_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str


metadata = ProfileModel.metadata
