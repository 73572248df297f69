"""The recommend service's tables (SQLModel); its migrations live in services/recommend/migrations/."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text, false
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class RecommendModel(SQLModel, registry=registry()):
    """Base of the recommend tables; its metadata holds only them (other services have their own)."""


class ItemRow(RecommendModel, table=True):
    """One catalogue item, sent by the platform or seen first in an event."""

    __tablename__ = "items"

    sku: str = Field(primary_key=True, max_length=128)
    category: str = Field(default="", max_length=128)
    brand: str = Field(default="", max_length=128)
    price_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    currency: str = Field(default="", max_length=3)
    # The price quintile within the category ("p1".."p5"; "" until a training run has computed it).
    price_band: str = Field(default="", max_length=8)
    in_stock: bool = True
    # A JSON array of strings.
    tags: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    # "catalogue" (UpsertItems) or "events" (created at training from interactions); a catalogue
    # upsert takes over an item seen in events, never the other way round.
    source: str = Field(max_length=16, index=True)
    updated_at: datetime
    # Not merchandise: never recommended, its interactions not trained on (migration 0002).
    hidden: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class CustomerFeaturesRow(RecommendModel, table=True):
    """What training read about one customer from their portrait: the user features of the model, and
    what serving needs of them (the segment for cold start, the price band for purchasing power)."""

    __tablename__ = "customer_features"

    customer_id: str = Field(primary_key=True, max_length=128)
    rfm_segment: str = Field(default="", max_length=32)
    region: str = Field(default="", max_length=128)
    # "p1".."p5" from the portrait's purchasing power; "" without orders.
    price_band: str = Field(default="", max_length=8)
    updated_at: datetime


class ModelVersionRow(RecommendModel, table=True):
    """One training run: its parameters, data sizes, time, offline metrics and where it stands."""

    __tablename__ = "model_versions"

    version: int | None = Field(default=None, primary_key=True)
    # training, serving, rejected, failed, superseded
    state: str = Field(max_length=16, index=True)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    forced: bool = False
    # JSON: the training parameters as used (defaults filled in).
    params: str = Field(sa_column=Column(Text, nullable=False))
    cutoff: datetime | None = None
    train_until_cutoff: bool = False
    interactions: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    customers: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    items: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float = 0.0
    # JSON: the offline reports of the candidate, popularity, and the serving version on the same split.
    metrics: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))


class TombstoneRow(RecommendModel, table=True):
    """Salted hash of an erased customer id: a training run that read them before the erasure drops them."""

    __tablename__ = "tombstones"

    id_hash: str = Field(primary_key=True, max_length=64)
    erased_at: datetime


class MetaRow(RecommendModel, table=True):
    """Service state: the serving version pointer, the tombstone salt."""

    __tablename__ = "service_meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_column=Column(Text, nullable=False))


metadata = RecommendModel.metadata
