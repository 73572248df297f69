"""The local stack: every service and the gateway as separate processes, started, health-checked and stopped."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The gRPC services that exist today, in start order; each issue that adds a service adds it here.
GRPC_SERVICES = ("profile", "segment", "recommend", "campaign")
# Extra processes of a service: they serve the same database, and the gateway spreads calls over
# all of them (round robin). Profile's ingest is CPU-bound in one interpreter; a second process
# lets both cores work (bench/ingest.py measures it).
REPLICAS = {"profile": 2}
DEFAULT_PORTS = {"profile": (50051, 9101), "profile-2": (50061, 9111), "segment": (50052, 9102),
                 "recommend": (50053, 9103), "campaign": (50054, 9104),
                 "gateway": (8080, 8080)}
KEYS_FILE = "api-keys.txt"
# The campaign process also serves the partner HTTP API (/partner/v1/) on this port.
PARTNER_API_PORT = 8090


# Free ports are drawn below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel
# handed out by bind(0) was free, but until our child process binds it, any outgoing connection on
# the machine may take it as its source port (seen as "Address already in use" under a busy suite).
_PORT_RANGE = (20000, 32767)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now and that this process has not handed out before."""
    for _ in range(1000):
        port = random.randint(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE[0]}-{_PORT_RANGE[1]}")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Stack:
    """Starts `python -m services.<name>` for each service; ports 0 mean free ports (tests, benchmarks)."""

    data_dir: Path
    host: str = "127.0.0.1"
    ephemeral_ports: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    # Settings of one service's processes only, over `env` (the demo pins campaign's clock apart).
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    ports: dict[str, tuple[int, int]] = field(default_factory=dict)
    partner_port: int = 0
    # Processes per service, the first included (the scaling test runs two campaign and two recommend).
    replicas: Mapping[str, int] = field(default_factory=lambda: dict(REPLICAS))

    def _ports(self, name: str) -> tuple[int, int]:
        if self.ephemeral_ports:
            return free_port(), free_port()
        return DEFAULT_PORTS[name]

    def _environment(self) -> dict[str, str]:
        environ = {**os.environ, **self.env}
        environ.setdefault("PYTHONUNBUFFERED", "1")
        for name in GRPC_SERVICES:
            grpc_port, metrics_port = self.ports[name]
            prefix = f"MARKSMAN_{name.upper()}_"
            environ[prefix + "HOST"] = self.host
            environ[prefix + "GRPC_PORT"] = str(grpc_port)
            environ[prefix + "METRICS_PORT"] = str(metrics_port)
            environ[prefix + "DATA_DIR"] = str(self.data_dir)
            environ["MARKSMAN_GATEWAY_" + name.upper() + "_ADDR"] = self.target(name)
        environ["MARKSMAN_SEGMENT_PROFILE_ADDR"] = self.grpc_address("profile")
        environ["MARKSMAN_RECOMMEND_PROFILE_ADDR"] = self.grpc_address("profile")
        environ["MARKSMAN_CAMPAIGN_PROFILE_ADDR"] = self.target("profile")
        environ["MARKSMAN_CAMPAIGN_SEGMENT_ADDR"] = self.grpc_address("segment")
        environ["MARKSMAN_CAMPAIGN_RECOMMEND_ADDR"] = self.grpc_address("recommend")
        environ["MARKSMAN_CAMPAIGN_PARTNER_PORT"] = str(self.partner_port)
        environ["MARKSMAN_GATEWAY_HOST"] = self.host
        environ["MARKSMAN_GATEWAY_PORT"] = str(self.ports["gateway"][0])
        environ["MARKSMAN_GATEWAY_DATA_DIR"] = str(self.data_dir)
        environ["MARKSMAN_GATEWAY_BOOTSTRAP_KEYS_FILE"] = str(self.data_dir / KEYS_FILE)
        return environ

    @property
    def partner_api_url(self) -> str:
        return f"http://{self.host}:{self.partner_port}/partner/v1"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.ports['gateway'][0]}"

    def grpc_address(self, name: str) -> str:
        return f"{self.host}:{self.ports[name][0]}"

    def replica_names(self, name: str) -> list[str]:
        return [name] + [f"{name}-{n}" for n in range(2, self.replicas.get(name, 1) + 1)]

    def target(self, name: str) -> str:
        """The gRPC target of every process of a service ("ipv4:h:p1,h:p2" when there are several)."""
        addresses = [self.grpc_address(replica) for replica in self.replica_names(name)]
        return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)

    def metrics_url(self, name: str) -> str:
        if name == "gateway":
            return self.gateway_url + "/metrics"
        return f"http://{self.host}:{self.ports[name][1]}/metrics"

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        for name in (*GRPC_SERVICES, "gateway"):
            for replica in self.replica_names(name):
                self.ports[replica] = self._ports(replica)
        self.partner_port = free_port() if self.ephemeral_ports else PARTNER_API_PORT
        environ = self._environment()
        try:
            for name in GRPC_SERVICES:
                self._spawn(name, environ)
            for name in GRPC_SERVICES:
                # Replicas start once the first process has applied the migrations.
                self._wait_grpc(name, timeout)
                for replica in self.replica_names(name)[1:]:
                    self._spawn(replica, self._replica_environment(environ, name, replica), module=name)
                    self._wait_grpc(replica, timeout)
            self._spawn("gateway", environ)
            self._wait_http(timeout)
        except BaseException:
            self.stop()
            raise

    def _replica_environment(self, environ: dict[str, str], name: str, replica: str) -> dict[str, str]:
        prefix = f"MARKSMAN_{name.upper()}_"
        grpc_port, metrics_port = self.ports[replica]
        # One process per service runs the background work (profile's portrait updater); a second campaign
        # process serves its partner API on a free port (partners are given the first one's).
        return {**environ, prefix + "GRPC_PORT": str(grpc_port), prefix + "METRICS_PORT": str(metrics_port),
                prefix + "BACKGROUND_WORK": "false", prefix + "PARTNER_PORT": "0"}

    def respawn(self, name: str, timeout: float = 60.0) -> None:
        """Starts a service's first process again with the environment it had (after a test killed it)."""
        self.processes = [p for p in self.processes if p.name != name or p.popen.poll() is None]
        self._spawn(name, self._environment())
        self._wait_grpc(name, timeout)

    def _spawn(self, name: str, environ: dict[str, str], module: str | None = None) -> None:
        log_path = self.data_dir / "logs" / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", f"services.{module or name}"],
                env={**environ, **self.service_env.get(module or name, {})},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.processes.append(Process(name, popen, log_path))

    def _check_alive(self, name: str) -> None:
        for process in self.processes:
            if process.name == name and process.popen.poll() is not None:
                tail = process.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with code {process.popen.returncode}; its log ends:\n{tail}")

    def _wait_grpc(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.grpc_address(name)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._check_alive(name)
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} did not become healthy within {timeout:.0f} s")
                time.sleep(0.1)

    def _wait_http(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            self._check_alive("gateway")
            try:
                if httpx.get(self.gateway_url + "/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway did not become ready within {timeout:.0f} s")
            time.sleep(0.1)

    def api_keys(self) -> dict[str, str]:
        """The bootstrap keys by name ("admin", "platform"), as the gateway wrote them on first start."""
        keys: dict[str, str] = {}
        path = self.data_dir / KEYS_FILE
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                keys[name.strip()] = value.strip()
        return keys

    def stop(self, grace: float = 10.0) -> dict[str, int]:
        """SIGTERM in reverse start order (gateway first), SIGKILL what is still running after `grace`.

        Returns each process's exit code (0 for a clean stop).
        """
        codes: dict[str, int] = {}
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in reversed(self.processes):
            try:
                process.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            codes[process.name] = process.popen.returncode
        self.processes.clear()
        return codes

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
