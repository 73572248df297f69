"""The segment service's tables (SQLModel); its migrations live in services/segment/migrations/."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Float, LargeBinary, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class SegmentModel(SQLModel, registry=registry()):
    """Base of the segment tables; its metadata holds only them (other services have their own)."""


class PortraitRow(SegmentModel, table=True):
    """The cached copy of one profile portrait: the traits rules can name, one column each."""

    __tablename__ = "portraits"
    __table_args__ = (UniqueConstraint("customer_id", name="uq_portraits_customer_id"),)

    key: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=128)
    computed_at: datetime | None = None
    synced_at: datetime
    has_orders: bool = False
    recency_days: int = -1
    frequency: int = 0
    monetary_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    average_order_value_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    currency: str = Field(default="", max_length=3)
    r_score: int = 0
    f_score: int = 0
    m_score: int = 0
    rfm_segment: str = Field(default="", max_length=32)
    lifecycle: str = Field(default="", max_length=16)
    purchasing_power: float = 0.0
    price_sensitivity: float = 0.0
    brand_loyalty: float = 0.0
    category_loyalty: float = 0.0
    top_category_1: str = Field(default="", max_length=128)
    top_category_2: str = Field(default="", max_length=128)
    top_category_3: str = Field(default="", max_length=128)
    top_category_4: str = Field(default="", max_length=128)
    top_category_5: str = Field(default="", max_length=128)
    preferred_payment: str = Field(default="", max_length=24)
    preferred_sales_channel: str = Field(default="", max_length=16)
    region: str = Field(default="", max_length=128)
    views: int = 0
    carts: int = 0
    searches: int = 0
    refunds: int = 0
    purchase_interval_days: float = 0.0
    consent_email: bool = False
    consent_sms: bool = False
    consent_push: bool = False


class SegmentRow(SegmentModel, table=True):
    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("name", name="uq_segments_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    rule: str = Field(sa_column=Column(Text, nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    built_in: bool = False
    created_at: datetime
    # A model audience (kind "model"): the goal and exactly one of top_k and threshold; rule is "".
    goal: str | None = Field(default=None, max_length=32)
    top_k: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    threshold: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class VersionRow(SegmentModel, table=True):
    """One refresh of a segment; with its members it never changes, except by erasure."""

    __tablename__ = "segment_versions"
    __table_args__ = (UniqueConstraint("segment_id", "number", name="uq_segment_versions_number"),)

    id: int | None = Field(default=None, primary_key=True)
    segment_id: int = Field(foreign_key="segments.id", index=True)
    number: int
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    portraits: int = Field(sa_column=Column(BigInteger, nullable=False))
    seconds: float
    rule: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    # The model version a model audience was scored with (None for a rule segment).
    model_version: int | None = None


class MemberRow(SegmentModel, table=True):
    """One customer in one version. No foreign keys: a refresh writes a million of these, and checks
    per row would double its time; erasure and retention remove members with their owners."""

    __tablename__ = "segment_members"
    # On SQLite the primary key is the table (no rowid b-tree beside it): half the writes.
    __table_args__ = {"sqlite_with_rowid": False}

    version_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    customer_key: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # A model audience member's score (None for a rule segment): kept because it costs one column.
    score: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class ModelVersionRow(SegmentModel, table=True):
    """One trained model of a goal with its held-out quality; never changed once written.

    The fitted estimator is a skops file in `model` (a BLOB, not a file in the data dir): it commits in
    the same transaction as its quality, every replica on the same database sees it, and a backup of
    the database holds it. `digest` is its SHA-256, checked before it is loaded.
    """

    __tablename__ = "predictive_models"
    __table_args__ = (UniqueConstraint("goal", "version", name="uq_predictive_models_version"),)

    id: int | None = Field(default=None, primary_key=True)
    goal: str = Field(max_length=32)
    version: int
    trained_at: datetime
    horizon_days: int
    seed_segment: str = Field(default="", max_length=64)
    seed_version: int = 0
    parameters: str = Field(sa_column=Column(Text, nullable=False))
    lines: int = Field(sa_column=Column(BigInteger, nullable=False))
    customers: int = Field(sa_column=Column(BigInteger, nullable=False))
    train_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    train_base_rate: float
    fit_seconds: float
    seconds: float
    # NaN is stored as NULL (PostgreSQL and SQLite disagree on NaN in REAL columns).
    auc: float | None = None
    auc_se: float | None = None
    top_decile_lift: float | None = None
    base_rate: float | None = None
    positives: int = Field(sa_column=Column(BigInteger, nullable=False))
    held_out: int = Field(sa_column=Column(BigInteger, nullable=False))
    better_than_chance: bool
    evaluation: str = Field(sa_column=Column(Text, nullable=False))
    features: str = Field(sa_column=Column(Text, nullable=False))
    digest: str = Field(max_length=64)
    model: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TombstoneRow(SegmentModel, table=True):
    """Salted hash of an erased customer id: a portrait computed before the erasure is not cached again."""

    __tablename__ = "tombstones"

    id_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime


class MetaRow(SegmentModel, table=True):
    """Service state: the portrait sync cursor, the tombstone salt."""

    __tablename__ = "service_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


metadata = SegmentModel.metadata
