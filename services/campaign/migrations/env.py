"""Alembic environment of the campaign service."""

from services.campaign.models import metadata
from services.common.alembic_env import run

run(metadata)
