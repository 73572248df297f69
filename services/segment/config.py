"""The segment service's settings (env prefix MARKSMAN_SEGMENT_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings, env_prefix


class SegmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("segment"), extra="ignore")

    service_name: str = "segment"
    grpc_port: int = 50052
    metrics_port: int = 9102
    # Where profile's ExportPortraits is served; empty: no sync (the cache keeps what it has).
    profile_addr: str = "127.0.0.1:50051"
    # Deadline of one portrait sync (a first sync of a million portraits takes minutes).
    profile_timeout_s: float = Field(default=1800.0, gt=0)
    # Seconds between background syncs; 0 syncs once at start only.
    sync_interval_s: float = Field(default=60.0, ge=0)
    sync_page_size: int = Field(default=5000, ge=1, le=5000)
    # Versions kept per segment; older ones are deleted after each refresh.
    versions_kept: int = Field(default=10, ge=1)
    # Trained models kept per goal; older ones are deleted after each training.
    models_kept: int = Field(default=10, ge=1)
    # Events per page of profile's ExportInteractions (profile's limit is 5000).
    interactions_page_size: int = Field(default=5000, ge=1, le=5000)
    # The interaction lines in memory are pulled whole again when older than this (in between, only
    # what profile exported since the last pull): an identity merge shows up within this time.
    interactions_max_age_s: float = Field(default=900.0, ge=0)
    # OpenMP threads of a model fit (trainings run one at a time on their own thread).
    training_threads: int = Field(default=1, ge=1)
