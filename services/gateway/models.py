"""The gateway's own tables: API keys (hashes only), on a metadata separate from other services'."""

from __future__ import annotations

from datetime import datetime

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


metadata = GatewayModel.metadata
