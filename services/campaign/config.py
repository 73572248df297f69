"""The campaign service's settings (env prefix MARKSMAN_CAMPAIGN_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings, env_prefix


class CampaignSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=env_prefix("campaign"), extra="ignore")

    service_name: str = "campaign"
    grpc_port: int = 50054
    metrics_port: int = 9104
    # The partner HTTP API (/partner/v1/...); 0 picks a free port, -1 turns it off.
    partner_port: int = Field(default=8090, ge=-1, le=65535)
    # Contacts and consent at send time, and UpdateConsent on an unsubscribe.
    profile_addr: str = "127.0.0.1:50051"
    # The audience at launch (StreamMembers of the segment's current version).
    segment_addr: str = "127.0.0.1:50052"
    # {recommended_items}; empty or unreachable: the field renders empty and the message still goes.
    recommend_addr: str = ""
    upstream_timeout_s: float = Field(default=5.0, gt=0)
    # Deadline of a long stream: a launch's audience, a report's orders (a million take a while).
    stream_timeout_s: float = Field(default=600.0, gt=0)
    # Dispatch workers in this process (SQLite allows one: its single writer would only queue more).
    workers: int = Field(default=2, ge=0)
    # Deliveries one worker claims at a time (one profile GetCustomers call; sent in partner-sized requests).
    # 1,000 against 500: 10-15% less CPU per delivery in the campaign process and in PostgreSQL (per-batch costs).
    claim_size: int = Field(default=1000, ge=1, le=5000)
    # Partner requests one worker has out at once while it prepares its next batch (pipelined dispatch).
    in_flight: int = Field(default=4, ge=1, le=64)
    # How long a claim holds a delivery; a killed worker's rows are due again after it.
    lease_s: float = Field(default=60.0, gt=0)
    # Seconds an idle worker waits before looking for due deliveries again.
    poll_s: float = Field(default=0.5, gt=0)
    # Attempts before a message is dead-lettered.
    max_attempts: int = Field(default=6, ge=1)
    # Retry delays: base * 2^(attempt-1), at most max, jittered.
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=300.0, gt=0)
    # Deadline of one push request to a partner.
    partner_timeout_s: float = Field(default=10.0, gt=0)
    # How long a pull partner's lease lasts unless it asks for less.
    pull_lease_s: float = Field(default=300.0, gt=0)
    # Concurrent recommend lookups while a batch is prepared (profile answers a batch in one GetCustomers).
    lookup_concurrency: int = Field(default=64, ge=1)
