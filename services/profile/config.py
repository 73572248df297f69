"""The profile service's settings (env prefix MARKSMAN_PROFILE_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MARKSMAN_PROFILE_", extra="ignore")

    service_name: str = "profile"
    grpc_port: int = 50051
    metrics_port: int = 9101
    # How often the updater looks for customers whose portrait is stale, in seconds.
    update_interval_s: float = Field(default=0.2, gt=0)
    update_batch_size: int = Field(default=2000, ge=1)
    # False on extra replicas: one process per database keeps portraits current.
    background_work: bool = True
    # Under a steady stream of writes, portraits may trail their events by about this much.
    update_max_lag_s: float = Field(default=5.0, gt=0)
    # With nothing to do the updater polls less often, up to this; another replica's writes wait at most this.
    update_max_idle_s: float = Field(default=2.0, gt=0)
    # Full recompute of base-relative values (RFM edges, price percentiles); 0 disables the schedule.
    recompute_interval_s: float = Field(default=3600.0, ge=0)
