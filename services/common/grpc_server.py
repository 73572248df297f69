"""serve(): a gRPC server with health, reflection, metrics, error mapping and a graceful stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from services.common.grpc_metrics import MetricsInterceptor

log = logging.getLogger(__name__)

# Messages up to 64 MiB: a batch of 5,000 events with many lines is well under that.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


@dataclass
class Registration:
    """One servicer: the function that adds it to a server and its full proto service name."""

    add_to_server: Callable[[Any, grpc.Server], None]
    servicer: Any
    service_name: str


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    metrics_port: int
    health: health.HealthServicer
    services: list[str] = field(default_factory=list)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def stop(self, grace: float) -> None:
        """NOT_SERVING first, so balancers drain us, then let in-flight calls finish."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()

    def wait(self) -> None:
        self.server.wait_for_termination()


def start(
    name: str,
    registrations: Sequence[Registration],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    metrics_port: int | None = 0,
    workers: int = 16,
) -> RunningServer:
    """Starts serving and marks every service SERVING; port 0 picks a free port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-grpc"),
        interceptors=[MetricsInterceptor(name)],
        options=SERVER_OPTIONS,
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [r.service_name for r in registrations]
    for registration in registrations:
        registration.add_to_server(registration.servicer, server)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"{name}: cannot bind gRPC port {host}:{port}")
    bound_metrics = -1
    if metrics_port is not None:
        http_server, _thread = start_http_server(metrics_port, addr=host)
        bound_metrics = http_server.server_port
    server.start()
    for service_name in [*names, ""]:
        health_servicer.set(service_name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving", extra={"grpc_port": bound, "metrics_port": bound_metrics, "services": names})
    return RunningServer(server, bound, bound_metrics, health_servicer, names)


def serve(
    name: str,
    registrations: Sequence[Registration],
    *,
    host: str,
    port: int,
    metrics_port: int,
    workers: int = 16,
    grace: float = 5.0,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Runs until SIGTERM or SIGINT, then stops gracefully and calls on_stop (close stores, workers)."""
    running = start(name, registrations, host=host, port=port, metrics_port=metrics_port, workers=workers)

    def handle(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        threading.Thread(target=running.stop, args=(grace,), daemon=True).start()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    running.wait()
    if on_stop is not None:
        on_stop()
    log.info("stopped")
