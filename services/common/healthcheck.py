"""Container health probe: `python -m services.common.healthcheck [service]` asks this container's own server."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.settings import ServiceSettings, settings_of

# The image sets it, so one HEALTHCHECK line serves every service's image.
SERVICE_ENV = "MARKSMAN_SERVICE"
TIMEOUT_S = 3.0
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


def reachable_host(host: str) -> str:
    """Where a server bound to `host` answers from inside its own container."""
    return "127.0.0.1" if host in WILDCARDS else host


def grpc_status(address: str, timeout: float = TIMEOUT_S) -> str:
    """The overall health the server at `address` reports (SERVING, NOT_SERVING ...), or the call's error code."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                               timeout=timeout)
        except grpc.RpcError as error:
            return str(error.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def http_status(url: str, timeout: float = TIMEOUT_S) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as error:
        return str(error.code)
    except urllib.error.URLError as error:
        reason = error.reason
        return type(reason).__name__ if isinstance(reason, BaseException) else str(reason)
    except OSError as error:
        return type(error).__name__


def probe(settings: ServiceSettings, timeout: float = TIMEOUT_S) -> tuple[bool, str]:
    """(healthy, what was asked and what it said); HTTP settings (a `port`) mean /healthz, others gRPC health."""
    host = reachable_host(settings.host)
    http_port = getattr(settings, "port", None)
    if isinstance(http_port, int):
        url = f"http://{host}:{http_port}/healthz"
        status = http_status(url, timeout)
        return status == "200", f"{url} -> {status}"
    address = f"{host}:{settings.grpc_port}"
    status = grpc_status(address, timeout)
    return status == "SERVING", f"grpc health {address} -> {status}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    service = args[0] if args else os.environ.get(SERVICE_ENV, "")
    if not service:
        print(f"usage: python -m services.common.healthcheck SERVICE (or set {SERVICE_ENV})", file=sys.stderr)
        return 2
    healthy, detail = probe(settings_of(service))
    print(detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
