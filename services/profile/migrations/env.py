"""Alembic environment of the profile service."""

from sqlmodel import SQLModel

import services.profile.models  # noqa: F401  (registers the tables on the metadata)
from services.common.alembic_env import run

run(SQLModel.metadata)
