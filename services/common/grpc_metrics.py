"""Prometheus RED metrics and the domain-error mapping for every gRPC call, as one interceptor.

Written here rather than taken from py-grpc-prometheus: that package is unmaintained since 2022,
has no in-flight gauge, and the same wrapper must also map domain errors to status codes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram

from services.common.errors import status_for

log = logging.getLogger(__name__)

# Measured on the local stack (2 cores): health Check < 0.5 ms, GetPortrait and ListCustomerSegments
# 1-2.5 ms (p99 5-10 ms), IngestEvents of 500 orders 25-100 ms, RecomputePortraits 1-6 s on the demo,
# ExportPortraits streams and trainings up to minutes: 0.25 ms to 2 minutes, about 2.5x per step.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                   30.0, 60.0, 120.0)

REQUESTS = Counter(
    "marksman_grpc_server_handled_total",
    "gRPC calls completed, by method and status code.",
    ["service", "method", "code"],
)
LATENCY = Histogram(
    "marksman_grpc_server_handling_seconds",
    "Time to complete a gRPC call (streams: until the last message).",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("marksman_grpc_server_in_flight", "gRPC calls being handled now.", ["service", "method"])


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts, times and error-maps every call; the method label is the RPC name (a bounded set)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(handler.stream_stream, method),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return handler

    def _finish(self, method: str, started: float, code: grpc.StatusCode) -> None:
        IN_FLIGHT.labels(self.service, method).dec()
        LATENCY.labels(self.service, method).observe(time.perf_counter() - started)
        REQUESTS.labels(self.service, method, code.name).inc()

    def _fail(
        self, error: Exception, context: grpc.ServicerContext, method: str
    ) -> tuple[grpc.StatusCode, str | None]:
        """The call's status code, and the message set for it (None: the servicer set its own)."""
        already = _code_of(context)
        if already is not grpc.StatusCode.OK:  # the servicer aborted with its own status
            return already, None
        code, message = status_for(error)
        if code is grpc.StatusCode.INTERNAL:
            log.exception("unhandled error in %s", method)
        context.set_code(code)
        context.set_details(message)
        return code, message

    def _unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
            IN_FLIGHT.labels(self.service, method).inc()
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                response = behavior(request, context)
                code = _code_of(context)
                return response
            except Exception as error:
                code, message = self._fail(error, context, method)
                if message is None:
                    raise  # context.abort() by the servicer: grpc sends the status it set
                # Abort, not return None: grpc would log a failed serialisation of None at ERROR.
                context.abort(code, message)
            finally:
                self._finish(method, started, code)

        return wrapper

    def _streaming(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        def wrapper(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            IN_FLIGHT.labels(self.service, method).inc()
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                yield from behavior(request, context)
                code = _code_of(context)
            except Exception as error:
                code, _message = self._fail(error, context, method)
            finally:
                self._finish(method, started, code)

        return wrapper


def _code_of(context: grpc.ServicerContext) -> grpc.StatusCode:
    code = context.code() if hasattr(context, "code") else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.OK
