"""docker-compose.yml: one PostgreSQL (a database per service), the services, the gateway, the sample partner,
Prometheus, Grafana."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tools.deploygen.catalog import DATA_DIR, Sample, Service

PROBE = ["CMD", "python", "-m", "services.common.healthcheck"]
DB_USER = "${POSTGRES_USER:-marksman}"
DB_PASSWORD = "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (copy .env.example)}"
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.2"
GRAFANA_IMAGE = "grafana/grafana:11.3.0"
POSTGRES_IMAGE = "postgres:16-bookworm"


def database_url(service: Service) -> str:
    return f"postgresql://{DB_USER}:{DB_PASSWORD}@postgres:5432/{service.database}"


def postgres(services: list[Service]) -> dict[str, Any]:
    return {
        "image": f"${{MARKSMAN_POSTGRES_IMAGE:-{POSTGRES_IMAGE}}}",
        "environment": {
            "POSTGRES_USER": DB_USER,
            "POSTGRES_PASSWORD": DB_PASSWORD,
            "MARKSMAN_DATABASES": " ".join(s.database for s in services),
        },
        "volumes": [
            "postgres-data:/var/lib/postgresql/data",
            "./deploy/compose/postgres-init.sh:/docker-entrypoint-initdb.d/10-marksman-databases.sh:ro",
        ],
        # The official image's first start runs the init scripts on a socket-only server: TCP answers after.
        "healthcheck": {
            "test": ["CMD-SHELL", 'pg_isready -h 127.0.0.1 -U "$${POSTGRES_USER}" -d postgres'],
            "interval": "5s", "timeout": "5s", "retries": 30,
        },
        "restart": "unless-stopped",
    }


def app(service: Service, addresses: dict[str, str]) -> dict[str, Any]:
    environment = {
        **service.settings(addresses),
        service.prefix + "DATABASE_URL": database_url(service),
        service.prefix + "LOG_LEVEL": "${MARKSMAN_LOG_LEVEL:-INFO}",
        "MARKSMAN_AS_OF": "${MARKSMAN_AS_OF:-}",
    }
    depends = {"postgres": {"condition": "service_healthy"}}
    depends.update({upstream: {"condition": "service_healthy"} for upstream in service.upstreams})
    entry: dict[str, Any] = {
        "image": image(service.name),
        "build": {
            "context": ".",
            "args": {
                "SERVICE": service.name,
                "EXTRA": service.extra,
                "SYSTEM_PACKAGES": service.system_packages,
                "BASE": "${MARKSMAN_BASE_IMAGE:-python:3.11-slim}",
                "WHEELS": "${MARKSMAN_WHEELS:-deploy/docker/wheels}",
            },
        },
        "environment": environment,
        "volumes": [f"{service.name}-data:{DATA_DIR}"],
        "read_only": True,
        "tmpfs": ["/tmp"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "depends_on": depends,
        # Generous: a probe is a Python start, and a loaded 2-core host may take seconds for it.
        "healthcheck": {"test": PROBE, "interval": "10s", "timeout": "15s", "retries": 12, "start_period": "120s"},
        "stop_grace_period": "20s",
        "restart": "unless-stopped",
    }
    if service.public:
        entry["ports"] = [f"${{MARKSMAN_{service.name.upper()}_PUBLISH:-127.0.0.1:{service.port}}}:{service.port}"]
    if service.partner_port:
        port = service.partner_port
        entry["ports"] = [f"${{MARKSMAN_{service.name.upper()}_PARTNER_PUBLISH:-127.0.0.1:{port}}}:{port}"]
    return entry


def prometheus() -> dict[str, Any]:
    return {
        "image": f"${{MARKSMAN_PROMETHEUS_IMAGE:-{PROMETHEUS_IMAGE}}}",
        "command": [
            "--config.file=/etc/prometheus/prometheus.compose.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.enable-lifecycle",
        ],
        "volumes": ["./deploy/prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"],
        "ports": ["${MARKSMAN_PROMETHEUS_PUBLISH:-127.0.0.1:9090}:9090"],
        "healthcheck": {
            "test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"],
            "interval": "10s", "timeout": "5s", "retries": 12,
        },
        "restart": "unless-stopped",
    }


def grafana() -> dict[str, Any]:
    return {
        "image": f"${{MARKSMAN_GRAFANA_IMAGE:-{GRAFANA_IMAGE}}}",
        # Optional (`docker-compose --profile grafana up`): CI has no Grafana image and checks the JSON instead.
        "profiles": ["grafana"],
        "environment": {
            "GF_SECURITY_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD in .env (copy .env.example)}",
            "GF_AUTH_ANONYMOUS_ENABLED": "false",
        },
        "volumes": [
            "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
            "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": ["${MARKSMAN_GRAFANA_PUBLISH:-127.0.0.1:3000}:3000"],
        "depends_on": {"prometheus": {"condition": "service_healthy"}},
        "restart": "unless-stopped",
    }


def image(service_name: str) -> str:
    return f"${{MARKSMAN_REGISTRY:-marksman}}/{service_name}:${{MARKSMAN_TAG:-latest}}"


def sample(entry: Sample) -> dict[str, Any]:
    """A stand-in (the sample partner) from another service's image: nothing to build, its own command and probe."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{entry.port}/healthz', timeout=3)"
    return {
        "image": image(entry.image_of),
        "command": ["python", "-m", entry.module, "--host", "0.0.0.0", "--port", str(entry.port)],
        "environment": {entry.secret_env: f"${{{entry.secret_env}:?set {entry.secret_env} in .env (copy .env.example)}}"},
        "read_only": True,
        "tmpfs": ["/tmp"],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "ports": [f"${{{entry.publish_env}:-127.0.0.1:{entry.port}}}:{entry.port}"],
        "healthcheck": {"test": ["CMD", "python", "-c", probe], "interval": "10s", "timeout": "15s", "retries": 12,
                        "start_period": "60s"},
        "stop_grace_period": "10s",
        "restart": "unless-stopped",
    }


def render(services: list[Service], samples: Sequence[Sample] = ()) -> dict[str, Any]:
    addresses = {s.name: f"{s.name}:{s.serving_port}" for s in services}
    body: dict[str, Any] = {"postgres": postgres(services)}
    body.update({s.name: app(s, addresses) for s in services})
    body.update({s.name: sample(s) for s in samples})
    body["prometheus"] = prometheus()
    body["grafana"] = grafana()
    volumes = ["postgres-data", *(f"{s.name}-data" for s in services), "prometheus-data", "grafana-data"]
    return {"services": body, "volumes": {name: {} for name in volumes}}
