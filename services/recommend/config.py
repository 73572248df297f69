"""The recommend service's settings (env prefix MARKSMAN_RECOMMEND_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings, env_prefix


class RecommendSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("recommend"), extra="ignore")

    service_name: str = "recommend"
    grpc_port: int = 50053
    metrics_port: int = 9103
    # Where profile's ExportInteractions and ExportPortraits are served; empty: training is refused.
    profile_addr: str = "127.0.0.1:50051"
    # Deadline of one export from profile (a million interactions take a minute or two).
    profile_timeout_s: float = Field(default=1800.0, gt=0)
    export_page_size: int = Field(default=5000, ge=1, le=5000)
    # The currency of items created from events: profile's interactions carry prices, not currencies.
    default_currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")
    # Model versions whose files are kept on disk (the serving one is always kept).
    versions_kept: int = Field(default=5, ge=1)
    # Seconds popular items computed before any model is trained are reused.
    popular_ttl_s: float = Field(default=300.0, ge=0)
    # Seconds between a replica's polls for a version promoted (or a customer erased) by another process;
    # 0: never (one process serves).
    follow_interval_s: float = Field(default=5.0, ge=0)
    # Threads LightFM trains with; 0: every core.
    train_threads: int = Field(default=0, ge=0)

    def models_dir(self) -> Path:
        return self.data_dir / "models"
