"""The gateway's settings, read from MARKSMAN_GATEWAY_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings, env_prefix

MIB = 1024 * 1024


class GatewaySettings(ServiceSettings):
    """HTTP listener, upstream addresses and limits; an empty upstream address means "not deployed"."""

    model_config = SettingsConfigDict(env_prefix=env_prefix("gateway"), extra="ignore")

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port of the public API.")
    profile_addr: str = "127.0.0.1:50051"
    segment_addr: str = ""
    recommend_addr: str = ""
    campaign_addr: str = ""
    # Every upstream call carries a deadline; ingesting a batch of 5,000 events may take longer.
    upstream_timeout_s: float = Field(default=5.0, gt=0)
    ingest_timeout_s: float = Field(default=30.0, gt=0)
    # A predictive model's training (the segment service reads every order line the first time).
    training_timeout_s: float = Field(default=300.0, gt=0)
    # /readyz must answer quickly even when an upstream hangs.
    health_timeout_s: float = Field(default=1.0, gt=0)
    # /readyz is 503 while one of these is not ready; the others are reported as degraded but optional.
    required_upstreams: list[str] = Field(default_factory=lambda: ["profile"])
    # Circuit breaker per upstream: open after this many failures in a row, or this share of failures among
    # the last `breaker_window` calls; calls then fail at once until a probe is let through after the cool-down.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_window: int = Field(default=20, ge=2)
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    breaker_cooldown_s: float = Field(default=10.0, gt=0)
    # Idempotent reads are retried this often on UNAVAILABLE (gRPC caps attempts at 5), backoff from this.
    read_retries: int = Field(default=2, ge=0, le=4)
    retry_backoff_s: float = Field(default=0.05, gt=0)
    # How old the popular items the recommendations fall back to may get before they are asked again.
    popular_refresh_s: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=10 * MIB, ge=0)
    # Where the first start writes the admin and platform keys (`name=key` lines); empty: <data_dir>/api-keys.txt.
    bootstrap_keys_file: Path | None = None
    # Seconds a verified (or refused) API key stays in the in-memory cache.
    key_cache_ttl_s: float = Field(default=30.0, ge=0)
    # Pricing: how long a quote holds; how long a quote waits for profile and segment before it is
    # priced without their data (degraded); how soon a rule set saved by another process is used.
    quote_ttl_s: float = Field(default=900.0, gt=0)
    pricing_timeout_s: float = Field(default=0.25, gt=0)
    rule_set_cache_s: float = Field(default=1.0, ge=0)

    def resolved_bootstrap_keys_file(self) -> Path:
        return self.bootstrap_keys_file or self.data_dir / "api-keys.txt"

    def other_upstreams(self) -> dict[str, str]:
        """The services erasure must reach besides profile, name -> address ("" when not deployed)."""
        return {"segment": self.segment_addr, "recommend": self.recommend_addr, "campaign": self.campaign_addr}
