"""Alembic environment of the profile service."""

from services.common.alembic_env import run
from services.profile.models import metadata

run(metadata)
