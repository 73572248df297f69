"""deploy/services.toml read into typed entries, with the names every renderer derives from them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "deploy" / "services.toml"
DATA_DIR = "/var/lib/marksman"
KINDS = ("grpc", "http")
# The table of compose-only stand-ins ([sample.<name>]), apart from the services.
SAMPLES = "sample"


@dataclass(frozen=True)
class Autoscale:
    min: int
    max: int
    cpu: int


@dataclass(frozen=True)
class Service:
    name: str
    kind: str
    extra: str
    grpc_port: int = 0
    metrics_port: int = 0
    port: int = 0
    upstreams: tuple[str, ...] = ()
    public: bool = False
    partner_port: int = 0
    replicas: int = 1
    singleton: str = ""
    autoscale: Autoscale | None = None
    volume: str = ""
    # ReadWriteMany lets every replica mount it (a shared file system); ReadWriteOnce means one pod at a time.
    volume_access: str = "ReadWriteOnce"
    system_packages: str = ""
    cpu: str = "250m"
    memory: str = "256Mi"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"MARKSMAN_{self.name.upper()}_"

    @property
    def serving_port(self) -> int:
        """The port clients call: gRPC, or the HTTP API."""
        return self.grpc_port if self.kind == "grpc" else self.port

    @property
    def scrape_port(self) -> int:
        return self.metrics_port if self.kind == "grpc" else self.port

    @property
    def database(self) -> str:
        return self.name

    def settings(self, addresses: dict[str, str]) -> dict[str, str]:
        """The service's own MARKSMAN_* settings (not its database URL), upstreams at `addresses`."""
        values = {self.prefix + "HOST": "0.0.0.0", self.prefix + "DATA_DIR": DATA_DIR}
        if self.kind == "grpc":
            values[self.prefix + "GRPC_PORT"] = str(self.grpc_port)
            values[self.prefix + "METRICS_PORT"] = str(self.metrics_port)
        else:
            values[self.prefix + "PORT"] = str(self.port)
        if self.partner_port:
            values[self.prefix + "PARTNER_PORT"] = str(self.partner_port)
        for upstream in self.upstreams:
            values[f"{self.prefix}{upstream.upper()}_ADDR"] = addresses[upstream]
        values.update(self.env)
        return values


@dataclass(frozen=True)
class Sample:
    """A stand-in process for compose only (not Kubernetes): no database, no metrics, another service's image."""

    name: str
    image_of: str
    module: str
    port: int
    secret_env: str

    @property
    def publish_env(self) -> str:
        return f"MARKSMAN_{self.name.upper().replace('-', '_')}_PUBLISH"


def load_samples(path: Path = CATALOG) -> list[Sample]:
    """The [sample.<name>] tables; each runs from the image of a service in the catalog."""
    samples = [Sample(name=name, **table) for name, table in tomllib.loads(path.read_text()).get(SAMPLES, {}).items()]
    names = {s.name for s in load(path)}
    for sample in samples:
        if sample.image_of not in names:
            raise ValueError(f"{path}: sample {sample.name}: image_of {sample.image_of!r} is not a service")
    return samples


def load(path: Path = CATALOG) -> list[Service]:
    raw = tomllib.loads(path.read_text())
    raw.pop(SAMPLES, None)
    services = []
    for name, table in raw.items():
        table = dict(table)
        autoscale = table.pop("autoscale", None)
        service = Service(
            name=name, upstreams=tuple(table.pop("upstreams", ())),
            autoscale=Autoscale(**autoscale) if autoscale else None, **table,
        )
        if service.kind not in KINDS:
            raise ValueError(f"{path}: {name}: kind must be one of {KINDS}")
        if service.volume and service.volume_access == "ReadWriteOnce" and (service.replicas > 1 or service.autoscale):
            raise ValueError(f"{path}: {name}: more than one replica needs volume_access = \"ReadWriteMany\"")
        services.append(service)
    names = {s.name for s in services}
    for service in services:
        unknown = set(service.upstreams) - names
        if unknown:
            raise ValueError(f"{path}: {service.name}: unknown upstreams {sorted(unknown)}")
    return services
