"""grpc_server.start() and MetricsInterceptor on a real server: error mapping, RED metrics, health,
reflection, the metrics endpoint and the graceful stop."""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from marksman.profile.v1 import profile_pb2, profile_pb2_grpc
from prometheus_client import REGISTRY

from services.common.errors import InvalidArgument, NotFound
from services.common.grpc_server import Registration, RunningServer, start

SERVICE = "marksman.profile.v1.ProfileService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class TinyProfile(profile_pb2_grpc.ProfileServiceServicer):
    """One behaviour per RPC: a domain error, a bug, a success, a broken stream, a slow call."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def GetPortrait(self, request: Any, context: Any) -> Any:
        if request.customer_id == "slow":
            self.entered.set()
            assert self.release.wait(10)
            return profile_pb2.GetPortraitResponse(portrait=profile_pb2.Portrait(customer_id="slow"))
        raise NotFound("x")

    def GetCustomer(self, request: Any, context: Any) -> Any:
        raise RuntimeError("secret detail")

    def UpsertCustomers(self, request: Any, context: Any) -> Any:
        return profile_pb2.UpsertCustomersResponse(
            results=[
                profile_pb2.UpsertResult(customer_id=c.customer_id, ok=True, created=True)
                for c in request.customers
            ]
        )

    def ExportPortraits(self, request: Any, context: Any) -> Iterator[Any]:
        yield profile_pb2.ExportPortraitsResponse(next_cursor="page-1")
        yield profile_pb2.ExportPortraitsResponse(next_cursor="page-2")
        raise InvalidArgument("bad cursor")

    def ExportInteractions(self, request: Any, context: Any) -> Iterator[Any]:
        yield profile_pb2.ExportInteractionsResponse(next_cursor="only")

    def StreamEvents(self, request_iterator: Any, context: Any) -> Any:
        return profile_pb2.IngestEventsResponse(accepted=sum(len(r.events) for r in request_iterator))

    def MergeIdentity(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "merging is off")


@dataclass
class Harness:
    name: str
    running: RunningServer
    servicer: TinyProfile
    channel: grpc.Channel
    stub: profile_pb2_grpc.ProfileServiceStub


def _start(metrics_port: int | None) -> Harness:
    name = f"common-test-{uuid.uuid4().hex[:12]}"
    servicer = TinyProfile()  # type: ignore[abstract]  # the base answers UNIMPLEMENTED
    running = start(
        name,
        [Registration(profile_pb2_grpc.add_ProfileServiceServicer_to_server, servicer, SERVICE)],
        metrics_port=metrics_port,
        workers=4,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    return Harness(name, running, servicer, channel, profile_pb2_grpc.ProfileServiceStub(channel))


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = _start(metrics_port=None)
    yield h
    h.servicer.release.set()
    h.channel.close()
    h.running.stop(0)


def handled(h: Harness, method: str, code: str) -> float | None:
    return REGISTRY.get_sample_value(
        "marksman_grpc_server_handled_total", {"service": h.name, "method": method, "code": code}
    )


def latency_count(h: Harness, method: str) -> float | None:
    return REGISTRY.get_sample_value(
        "marksman_grpc_server_handling_seconds_count", {"service": h.name, "method": method}
    )


def in_flight(h: Harness, method: str) -> float | None:
    return REGISTRY.get_sample_value("marksman_grpc_server_in_flight", {"service": h.name, "method": method})


def _error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


# --- error mapping -----------------------------------------------------------------------------


def test_domain_error_maps_to_its_status_with_its_message(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.RpcError) as raised:
        harness.stub.GetPortrait(profile_pb2.GetPortraitRequest(customer_id="17850"), timeout=5)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "x"
    # A caller's mistake is not a server error: nothing at ERROR (from us or from grpc itself).
    assert _error_records(caplog) == []


def test_unexpected_error_is_internal_and_does_not_leak(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.RpcError) as raised:
        harness.stub.GetCustomer(profile_pb2.GetCustomerRequest(customer_id="17850"), timeout=5)
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert raised.value.details() == "internal error; see the service log"
    assert "secret" not in str(raised.value.details())
    # The detail goes to the service log instead, once, with its traceback.
    errors = _error_records(caplog)
    assert [(r.name, r.getMessage()) for r in errors] == [
        ("services.common.grpc_metrics", "unhandled error in GetCustomer")
    ]
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "secret detail"


def test_servicer_abort_keeps_its_own_status(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.RpcError) as raised:
        harness.stub.MergeIdentity(profile_pb2.MergeIdentityRequest(), timeout=5)
    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert raised.value.details() == "merging is off"
    assert handled(harness, "MergeIdentity", "PERMISSION_DENIED") == 1.0
    assert _error_records(caplog) == []


def test_unary_success_passes_through(harness: Harness) -> None:
    request = profile_pb2.UpsertCustomersRequest(
        customers=[profile_pb2.Customer(customer_id="17850"), profile_pb2.Customer(customer_id="anon-1")]
    )
    response = harness.stub.UpsertCustomers(request, timeout=5)
    assert [(r.customer_id, r.ok, r.created) for r in response.results] == [
        ("17850", True, True),
        ("anon-1", True, True),
    ]


def test_streaming_error_after_two_pages_is_mapped(harness: Harness) -> None:
    pages: list[str] = []
    call = harness.stub.ExportPortraits(profile_pb2.ExportPortraitsRequest(page_size=10), timeout=5)
    with pytest.raises(grpc.RpcError) as raised:
        for page in call:
            pages.append(page.next_cursor)
    assert pages == ["page-1", "page-2"]
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "bad cursor"
    assert handled(harness, "ExportPortraits", "INVALID_ARGUMENT") == 1.0
    assert handled(harness, "ExportPortraits", "OK") is None
    assert latency_count(harness, "ExportPortraits") == 1.0
    assert in_flight(harness, "ExportPortraits") == 0.0


def test_streaming_success_and_client_streaming_are_counted_ok(harness: Harness) -> None:
    pages = list(harness.stub.ExportInteractions(profile_pb2.ExportInteractionsRequest(), timeout=5))
    assert [p.next_cursor for p in pages] == ["only"]
    batches = [profile_pb2.IngestEventsRequest(events=[profile_pb2.Event()] * n) for n in (2, 3)]
    response = harness.stub.StreamEvents(iter(batches), timeout=5)
    assert response.accepted == 5
    assert handled(harness, "ExportInteractions", "OK") == 1.0
    assert handled(harness, "StreamEvents", "OK") == 1.0
    assert in_flight(harness, "StreamEvents") == 0.0


# --- metrics -----------------------------------------------------------------------------------


def test_every_call_is_counted_by_method_and_code_and_timed(harness: Harness) -> None:
    assert handled(harness, "GetPortrait", "NOT_FOUND") is None
    for _ in range(3):
        with pytest.raises(grpc.RpcError):
            harness.stub.GetPortrait(profile_pb2.GetPortraitRequest(customer_id="1"), timeout=5)
    with pytest.raises(grpc.RpcError):
        harness.stub.GetCustomer(profile_pb2.GetCustomerRequest(customer_id="1"), timeout=5)
    harness.stub.UpsertCustomers(profile_pb2.UpsertCustomersRequest(), timeout=5)
    harness.stub.UpsertCustomers(profile_pb2.UpsertCustomersRequest(), timeout=5)

    assert handled(harness, "GetPortrait", "NOT_FOUND") == 3.0
    assert handled(harness, "GetPortrait", "OK") is None
    assert handled(harness, "GetCustomer", "INTERNAL") == 1.0
    assert handled(harness, "UpsertCustomers", "OK") == 2.0
    assert latency_count(harness, "GetPortrait") == 3.0
    assert latency_count(harness, "GetCustomer") == 1.0
    assert latency_count(harness, "UpsertCustomers") == 2.0
    for method in ("GetPortrait", "GetCustomer", "UpsertCustomers"):
        assert in_flight(harness, method) == 0.0
    # Health and reflection are not application calls the interceptor hides: they are counted too.
    health_pb2_grpc.HealthStub(harness.channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert handled(harness, "Check", "OK") == 1.0


def test_in_flight_gauge_counts_a_running_call(harness: Harness) -> None:
    future = harness.stub.GetPortrait.future(profile_pb2.GetPortraitRequest(customer_id="slow"), timeout=10)
    assert harness.servicer.entered.wait(5)
    assert in_flight(harness, "GetPortrait") == 1.0
    harness.servicer.release.set()
    assert future.result().portrait.customer_id == "slow"
    assert in_flight(harness, "GetPortrait") == 0.0
    assert handled(harness, "GetPortrait", "OK") == 1.0


def test_metrics_endpoint_serves_the_counters() -> None:
    h = _start(metrics_port=0)
    try:
        assert h.running.metrics_port > 0
        with pytest.raises(grpc.RpcError):
            h.stub.GetPortrait(profile_pb2.GetPortraitRequest(customer_id="1"), timeout=5)
        url = f"http://127.0.0.1:{h.running.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
        assert (
            f'marksman_grpc_server_handled_total{{code="NOT_FOUND",method="GetPortrait",service="{h.name}"}} 1.0'
            in text
        )
        assert (
            f'marksman_grpc_server_handling_seconds_count{{method="GetPortrait",service="{h.name}"}} 1.0'
            in text
        )
        assert f'marksman_grpc_server_in_flight{{method="GetPortrait",service="{h.name}"}} 0.0' in text
    finally:
        h.channel.close()
        h.running.stop(0)


def test_no_metrics_port_when_disabled(harness: Harness) -> None:
    assert harness.running.metrics_port == -1


# --- health, reflection, stop ------------------------------------------------------------------


def test_health_is_serving_for_the_server_and_each_service(harness: Harness) -> None:
    health = health_pb2_grpc.HealthStub(harness.channel)
    for service in ("", SERVICE):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == SERVING
    with pytest.raises(grpc.RpcError) as raised:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert harness.running.services == [SERVICE]
    assert harness.running.port > 0


def test_reflection_lists_the_services(harness: Harness) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(harness.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE),
    ]
    listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
    assert {s.name for s in listed.list_services_response.service} == {
        SERVICE,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert len(described.file_descriptor_response.file_descriptor_proto) >= 1
    assert not described.HasField("error_response")


def _health_status(running: RunningServer, service: str) -> int:
    # The servicer's own Check; a known service never touches the context.
    response = running.health.Check(health_pb2.HealthCheckRequest(service=service), cast(Any, None))
    return int(response.status)


def test_stop_turns_not_serving_first_and_lets_in_flight_calls_finish(harness: Harness) -> None:
    future = harness.stub.GetPortrait.future(profile_pb2.GetPortraitRequest(customer_id="slow"), timeout=10)
    assert harness.servicer.entered.wait(5)
    assert _health_status(harness.running, "") == SERVING

    stopper = threading.Thread(target=harness.running.stop, args=(5.0,))
    stopper.start()
    deadline = time.monotonic() + 5
    while _health_status(harness.running, "") != NOT_SERVING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _health_status(harness.running, "") == NOT_SERVING
    assert _health_status(harness.running, SERVICE) == NOT_SERVING
    # Draining: the call that was running still runs, and stop() waits for it.
    assert not future.done()
    assert stopper.is_alive()

    harness.servicer.release.set()
    assert future.result(timeout=5).portrait.customer_id == "slow"
    stopper.join(5)
    assert not stopper.is_alive()
    assert handled(harness, "GetPortrait", "OK") == 1.0
    # The server is gone: a new call cannot reach it.
    with pytest.raises(grpc.RpcError) as raised:
        harness.stub.UpsertCustomers(profile_pb2.UpsertCustomersRequest(), timeout=2)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE
    # A second stop is a no-op, and a later set() cannot bring it back to SERVING.
    harness.running.stop(5.0)
    harness.running.health.set("", SERVING)
    assert _health_status(harness.running, "") == NOT_SERVING
