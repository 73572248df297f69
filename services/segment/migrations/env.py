"""Alembic environment of the segment service."""

from services.common.alembic_env import run
from services.segment.models import metadata

run(metadata)
