"""Alembic environment of the recommend service."""

from services.common.alembic_env import run
from services.recommend.models import metadata

run(metadata)
