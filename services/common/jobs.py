"""One-shot operations jobs for containers: `migrate SERVICE` and `call METHOD PATH` (a gateway admin call)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from services.common.db import make_engine
from services.common.migrate import upgrade_to_head
from services.common.settings import settings_of

GATEWAY_URL_ENV = "MARKSMAN_JOB_GATEWAY_URL"
API_KEY_ENV = "MARKSMAN_JOB_API_KEY"
DEFAULT_GATEWAY_URL = "http://gateway:8080"


def migrate(service: str) -> str:
    """Brings the service's database (MARKSMAN_<SVC>_DATABASE_URL, as the service reads it) to its newest revision."""
    settings = settings_of(service)
    package_file = importlib.import_module(f"services.{service}").__file__
    assert package_file is not None
    engine = make_engine(settings.resolved_database_url())
    try:
        upgrade_to_head(Path(package_file).parent / "migrations", engine)
    finally:
        engine.dispose()
    return f"{service}: migrated to head"


def call(method: str, path: str, body: str, *, base_url: str, api_key: str, timeout: float) -> tuple[int, str]:
    """Sends one request to the gateway with the job's API key; returns the status and the start of the body."""
    request = urllib.request.Request(
        base_url.rstrip("/") + path, data=body.encode() if body else None, method=method.upper(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(4000).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(4000).decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.jobs", description=__doc__)
    sub = parser.add_subparsers(dest="job", required=True)
    migrating = sub.add_parser("migrate", help="apply a service's database migrations, then exit")
    migrating.add_argument("service")
    calling = sub.add_parser("call", help=f"one gateway request with the key in {API_KEY_ENV}")
    calling.add_argument("method")
    calling.add_argument("path", help="e.g. /v1/segments/rfm_champions/refresh")
    calling.add_argument("--json", default="", help="request body")
    calling.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.job == "migrate":
        print(migrate(args.service))
        return 0
    api_key = os.environ.get(API_KEY_ENV, "")
    if not api_key:
        print(f"{API_KEY_ENV} is not set", file=sys.stderr)
        return 2
    status, text = call(args.method, args.path, args.json, base_url=os.environ.get(GATEWAY_URL_ENV, DEFAULT_GATEWAY_URL),
                        api_key=api_key, timeout=args.timeout)
    print(f"{args.method.upper()} {args.path} -> {status}\n{text}")
    return 0 if status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
