"""Settings base: every service reads MARKSMAN_<SVC>_* variables into one of these."""

from __future__ import annotations

import importlib
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class ServiceSettings(BaseSettings):
    """Common settings; a subclass sets `model_config` with its own env prefix and defaults."""

    model_config = SettingsConfigDict(env_prefix="MARKSMAN_", extra="ignore")

    service_name: str = "service"
    host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # The data directory holds the SQLite file when database_url is empty.
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    log_level: str = "INFO"
    grpc_workers: int = Field(default=16, ge=1)
    # Seconds a stopping server lets in-flight calls finish.
    shutdown_grace_s: float = Field(default=5.0, ge=0)

    def resolved_database_url(self) -> str:
        """The configured SQLAlchemy URL, or a SQLite file named after the service."""
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / f'{self.service_name}.db').resolve()}"


def env_prefix(service: str) -> str:
    return f"MARKSMAN_{service.upper()}_"


def settings_of(service: str) -> ServiceSettings:
    """The settings `services.<service>` runs with: its config module's ServiceSettings subclass, read now.

    For probes and jobs that run beside a service in its container (same environment, same ports).
    """
    module = importlib.import_module(f"services.{service}.config")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.__module__ == module.__name__:
            return value()
    raise LookupError(f"services.{service}.config defines no ServiceSettings subclass")
