"""Runs the gateway: settings -> logs -> key store (migrated) -> app -> uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from services.common import gctune, logs
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.requestid import install_log_filter
from services.gateway.store import KeyStore

log = logging.getLogger("services.gateway")


def main() -> None:
    settings = GatewaySettings()
    logs.configure(settings.service_name, settings.log_level)
    install_log_filter()
    keys = KeyStore.open(settings.resolved_database_url(), cache_ttl_s=settings.key_cache_ttl_s)
    path = settings.resolved_bootstrap_keys_file()
    created = keys.ensure_bootstrap_keys(path)
    if created is not None:
        # Plaintext keys go to a terminal only, never into a log file (the file is readable by its owner only).
        if sys.stderr.isatty():
            print(f"Created API keys (also written to {path}, mode 0600):", file=sys.stderr)
            for name, key in created.items():
                print(f"  {name}: {key}", file=sys.stderr)
        log.info("bootstrap API keys created", extra={"path": str(path), "keys": sorted(created)})
    app = create_app(settings, keys=keys)
    log.info("starting", extra={"host": settings.host, "port": settings.port, "profile": settings.profile_addr})
    gctune.tune()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
    )
    keys.close()


if __name__ == "__main__":
    main()
