"""Alembic environment of the gateway: its own history, on the engine the gateway gives."""

from services.common.alembic_env import run
from services.gateway.models import metadata

run(metadata)
