"""The rendered deployment files: current, covering every service, valid for docker-compose and Kubernetes 1.30."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from services.stack import DEFAULT_PORTS, GRPC_SERVICES
from tools.deploygen import catalog
from tools.deploygen.__main__ import main as deploygen

ROOT = catalog.ROOT
OVERLAYS = sorted(p.name for p in (ROOT / "deploy/k8s/overlays").iterdir() if p.is_dir())
COMPOSE_ENV = {"POSTGRES_PASSWORD": "only-for-the-test", "GRAFANA_ADMIN_PASSWORD": "only-for-the-test",
               "MARKSMAN_PARTNER_SAMPLE_SECRET": "only-for-the-test"}


def test_rendered_files_are_current(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploygen(["--check"]) == 0, capsys.readouterr().err + " (run `make deploy`)"


def test_catalog_covers_every_process_of_the_stack() -> None:
    services = {s.name: s for s in catalog.load()}
    assert set(GRPC_SERVICES) | {"gateway"} <= set(services), "a service of services/stack.py is not deployed"
    for name in GRPC_SERVICES:
        assert (services[name].grpc_port, services[name].metrics_port) == DEFAULT_PORTS[name], name
    assert services["gateway"].port == DEFAULT_PORTS["gateway"][0]
    for service in services.values():
        assert service.extra in extras(), f"{service.name}: no pyproject extra {service.extra!r}"


def extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_production_overlay_names_an_image_for_every_service() -> None:
    overlay = yaml.safe_load((ROOT / "deploy/k8s/overlays/production/kustomization.yaml").read_text())
    assert {image["name"] for image in overlay["images"]} == {f"marksman/{s.name}" for s in catalog.load()}


def test_compose_runs_the_sample_partner_from_the_campaign_image_with_a_health_check() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    partner = compose["partner-sample"]
    assert partner["image"] == compose["campaign"]["image"] and "build" not in partner
    assert partner["command"][:3] == ["python", "-m", "services.partner_sample"]
    assert "http://127.0.0.1:8095/healthz" in partner["healthcheck"]["test"][-1]
    assert "MARKSMAN_PARTNER_SAMPLE_SECRET" in partner["environment"]
    # Compose only: no database for it, nothing in Kubernetes, not scraped.
    assert "partner-sample" not in compose["postgres"]["environment"]["MARKSMAN_DATABASES"]
    assert "partner-sample" not in {s.name for s in catalog.load()}
    assert "partner-sample" not in (ROOT / "deploy/prometheus/prometheus.compose.yml").read_text()


def test_catalog_rejects_a_sample_without_a_service_image(tmp_path: Path) -> None:
    bad = tmp_path / "services.toml"
    bad.write_text('[a]\nkind = "grpc"\nextra = "a"\n[sample.b]\nimage_of = "c"\nmodule = "m"\nport = 1\n'
                   'secret_env = "S"\n')
    assert [s.name for s in catalog.load(bad)] == ["a"]
    with pytest.raises(ValueError, match="image_of 'c' is not a service"):
        catalog.load_samples(bad)


def test_catalog_rejects_unknown_upstreams(tmp_path: Path) -> None:
    bad = tmp_path / "services.toml"
    bad.write_text('[a]\nkind = "grpc"\nextra = "a"\nupstreams = ["b"]\n')
    with pytest.raises(ValueError, match="unknown upstreams"):
        catalog.load(bad)


def test_compose_file_is_valid() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose is not installed (deploy/ci/tools.sh installs Debian's)")
    done = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], cwd=ROOT,
                          env={**os.environ, **COMPOSE_ENV}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    missing = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], cwd=ROOT,
                             env={k: v for k, v in os.environ.items() if k not in COMPOSE_ENV},
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr


def kubernetes_validate() -> str:
    """The dev extra's kubernetes-validate, beside this interpreter (the venv need not be on PATH)."""
    beside = Path(sys.executable).parent / "kubernetes-validate"
    return str(beside) if beside.exists() else shutil.which("kubernetes-validate") or "kubernetes-validate"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubernetes_overlay_validates_against_1_30(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay)],
                           capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    validator = kubernetes_validate()
    checked = subprocess.run([validator, "--strict", "-k", "1.30.0", "-"], input=built.stdout,
                             capture_output=True, text=True, timeout=300)
    output = checked.stdout + checked.stderr
    # kubernetes-validate only warns about a kind it has no schema for: that is a failure here.
    assert checked.returncode == 0 and "Couldn't find schema" not in output and "WARN" not in output, output
    resources = list(yaml.safe_load_all(built.stdout))
    kinds = {doc["kind"] for doc in resources}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "HorizontalPodAutoscaler",
            "Job", "CronJob", "Ingress", "Namespace"} <= kinds
    assert output.count("passed for resource") == len(resources)
    for doc in resources:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
            for container in pod["containers"]:
                assert container["securityContext"]["readOnlyRootFilesystem"] is True
                assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
                assert "readinessProbe" in container and "livenessProbe" in container
    if overlay == "local":
        assert {doc["metadata"]["name"] for doc in resources if doc["kind"] == "StatefulSet"} == {
            f"postgres-{s.name}" for s in catalog.load()}
    else:
        assert not [doc for doc in resources if doc["kind"] in ("StatefulSet", "Secret")]


def test_kubernetes_validate_fails_on_unknown_fields() -> None:
    validator = kubernetes_validate()
    bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  bogus: 1\n"
    done = subprocess.run([validator, "--strict", "-k", "1.30.0", "-"], input=bad, capture_output=True, text=True)
    assert done.returncode != 0


def rendered_base() -> dict[tuple[str, str], dict]:  # type: ignore[type-arg]
    services = catalog.load()
    from tools.deploygen import kube

    return {(doc["kind"], doc["metadata"]["name"]): doc for s in services for doc in kube.service_docs(s, services)}


def test_one_background_worker_beside_the_scaled_servers() -> None:
    docs = rendered_base()
    servers, worker = docs[("Deployment", "profile")], docs[("Deployment", "profile-worker")]
    env = {e["name"]: e.get("value") for e in servers["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MARKSMAN_PROFILE_BACKGROUND_WORK"] == "false" and servers["spec"]["replicas"] == 2
    env = {e["name"]: e.get("value") for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MARKSMAN_PROFILE_BACKGROUND_WORK"] == "true" and worker["spec"]["replicas"] == 1
    assert worker["spec"]["strategy"] == {"type": "Recreate"}
    # Both serve: the Service selects every profile pod; the budget guards the scaled servers.
    assert docs[("Service", "profile")]["spec"]["selector"] == {"app.kubernetes.io/name": "profile"}
    assert docs[("Service", "profile")]["spec"]["clusterIP"] == "None"


def test_network_policies_follow_the_upstreams() -> None:
    docs = rendered_base()

    def callers(name: str, port: int) -> set[str]:
        """The pods that may open the given port of the service."""
        rules = docs[("NetworkPolicy", name)]["spec"]["ingress"]
        return {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                for rule in rules if rule["ports"] == [{"protocol": "TCP", "port": port}]
                for peer in rule.get("from", []) if "podSelector" in peer}

    assert callers("profile", 50051) == {"segment", "recommend", "campaign", "gateway"}
    assert callers("segment", 50052) == {"campaign", "gateway"}
    assert callers("segment", 9102) == {"prometheus"}  # and namespace monitoring
    gateway = docs[("NetworkPolicy", "gateway")]["spec"]["ingress"]
    assert gateway == [{"ports": [{"protocol": "TCP", "port": 8080}]}]  # the only service open to all
    campaign = docs[("NetworkPolicy", "campaign")]["spec"]["ingress"]
    assert {"ports": [{"protocol": "TCP", "port": 8090}]} in campaign  # partners, through their Ingress
    assert docs[("Ingress", "campaign-partner-api")]["spec"]["rules"][0]["http"]["paths"][0]["backend"] == {
        "service": {"name": "campaign", "port": {"name": "partner"}}}
    assert ("HorizontalPodAutoscaler", "gateway") in docs and ("HorizontalPodAutoscaler", "campaign") in docs
    assert "replicas" not in docs[("Deployment", "gateway")]["spec"]  # the autoscaler owns it


def test_recommend_scales_out_on_a_shared_volume() -> None:
    docs = rendered_base()
    assert docs[("PersistentVolumeClaim", "recommend-data")]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert docs[("HorizontalPodAutoscaler", "recommend")]["spec"]["minReplicas"] == 2
    deployment = docs[("Deployment", "recommend")]["spec"]
    assert "replicas" not in deployment and "strategy" not in deployment  # rolled, both pods mount the volume


def test_catalog_refuses_replicas_on_a_read_write_once_volume(tmp_path: Path) -> None:
    bad = tmp_path / "services.toml"
    bad.write_text('[a]\nkind = "grpc"\nextra = "a"\nreplicas = 2\nvolume = "1Gi"\n')
    with pytest.raises(ValueError, match="ReadWriteMany"):
        catalog.load(bad)
