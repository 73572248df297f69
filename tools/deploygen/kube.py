"""Kubernetes manifests per service (base), the migrations Job, and the local overlay's PostgreSQL servers."""

from __future__ import annotations

from typing import Any

from tools.deploygen.catalog import DATA_DIR, Service

PART_OF = "marksman"
APP_UID = 10001
POSTGRES_UID = 999  # the official postgres image's user
POSTGRES_IMAGE = "postgres:16-bookworm"
LOCAL_DB_USER = "marksman"
# The local overlay's databases live in a throw-away cluster; production reads its URLs from secrets.
LOCAL_DB_PASSWORD = "local-only-not-a-secret"
MIGRATE_JOB = "marksman-migrate"
MONITORING = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
    {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
]

Doc = dict[str, Any]


def labels(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": PART_OF}


def k8s_addresses(services: list[Service]) -> dict[str, str]:
    """gRPC upstreams through headless Services: DNS gives every pod, the client balances over them."""
    return {s.name: (f"dns:///{s.name}:{s.grpc_port}" if s.kind == "grpc" else f"http://{s.name}:{s.port}")
            for s in services}


def database_secret(service: Service) -> str:
    return f"{service.name}-database"


def app_container_security() -> Doc:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def pod_security(uid: int = APP_UID) -> Doc:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def database_env(service: Service) -> Doc:
    return {"name": service.prefix + "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": database_secret(service), "key": "url"}}}


def config_map(service: Service, addresses: dict[str, str]) -> Doc:
    data = service.settings(addresses)
    # getaddrinfo follows the pod's DNS search path, so "profile" finds the Service in this namespace.
    data["GRPC_DNS_RESOLVER"] = "native"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{service.name}-settings",
            "labels": labels(service.name, "settings")}, "data": data}


def probes(service: Service) -> Doc:
    if service.kind == "grpc":
        check: Doc = {"grpc": {"port": service.grpc_port}}
    else:
        check = {"httpGet": {"path": "/healthz", "port": "http"}}
    return {
        # Migrations run at start: give a first start time before liveness counts.
        "startupProbe": {**check, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {**check, "periodSeconds": 10, "timeoutSeconds": 3},
        "livenessProbe": {**check, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 3},
    }


def ports(service: Service) -> list[Doc]:
    if service.kind == "grpc":
        found = [{"name": "grpc", "containerPort": service.grpc_port},
                 {"name": "metrics", "containerPort": service.metrics_port}]
    else:
        found = [{"name": "http", "containerPort": service.port}]
    if service.partner_port:
        found.append({"name": "partner", "containerPort": service.partner_port})
    return found


def resources(service: Service) -> Doc:
    cpu = service.cpu
    doubled = f"{int(cpu[:-1]) * 2}m" if cpu.endswith("m") else str(float(cpu) * 2)
    return {"requests": {"cpu": cpu, "memory": service.memory}, "limits": {"cpu": doubled, "memory": service.memory}}


def data_volume(service: Service) -> Doc:
    if service.volume:
        return {"name": "data", "persistentVolumeClaim": {"claimName": f"{service.name}-data"}}
    return {"name": "data", "emptyDir": {}}


def volume_claim(service: Service) -> Doc:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{service.name}-data", "labels": labels(service.name, "server")},
            "spec": {"accessModes": [service.volume_access], "resources": {"requests": {"storage": service.volume}}}}


def deployment(service: Service, component: str, replicas: int | None, env: list[Doc]) -> Doc:
    name = service.name if component == "server" else f"{service.name}-{component}"
    pod_labels = labels(service.name, component)
    spec: Doc = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": service.name, "app.kubernetes.io/component": component}},
        "template": {
            "metadata": {
                "labels": pod_labels,
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(service.scrape_port),
                                "prometheus.io/path": "/metrics"},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": pod_security(),
                "terminationGracePeriodSeconds": 30,
                "containers": [{
                    "name": service.name,
                    "image": f"marksman/{service.name}",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-m", f"services.{service.name}"],
                    "envFrom": [{"configMapRef": {"name": f"{service.name}-settings"}}],
                    "env": [database_env(service), *env],
                    "ports": ports(service),
                    **probes(service),
                    "resources": resources(service),
                    "securityContext": app_container_security(),
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "data", "mountPath": DATA_DIR}],
                }],
                "volumes": [{"name": "tmp", "emptyDir": {}}, data_volume(service)],
            },
        },
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    if component == "worker" or (service.volume and service.volume_access == "ReadWriteOnce"):
        # Never two background workers at once; a ReadWriteOnce volume cannot be in two pods during a rollout.
        spec["strategy"] = {"type": "Recreate"}
    else:
        spec["template"]["spec"]["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": service.name,
                                              "app.kubernetes.io/component": component}},
        }]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": pod_labels}, "spec": spec}


def k8s_service(service: Service) -> Doc:
    if service.kind == "grpc":
        # Headless: gRPC keeps one connection per address, so clients must see every pod to spread calls.
        spec: Doc = {"clusterIP": "None", "ports": [
            {"name": "grpc", "port": service.grpc_port, "targetPort": "grpc"},
            {"name": "metrics", "port": service.metrics_port, "targetPort": "metrics"},
        ]}
        if service.partner_port:
            spec["ports"].append({"name": "partner", "port": service.partner_port, "targetPort": "partner"})
    else:
        spec = {"type": "ClusterIP", "ports": [{"name": "http", "port": service.port, "targetPort": "http"}]}
    spec["selector"] = {"app.kubernetes.io/name": service.name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service.name,
            "labels": labels(service.name, "server")}, "spec": spec}


def disruption_budget(service: Service) -> Doc:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": service.name, "labels": labels(service.name, "server")},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {
                "app.kubernetes.io/name": service.name, "app.kubernetes.io/component": "server"}}}}


def network_policy(service: Service, clients: list[str]) -> Doc:
    """Who may open a connection to the service: its callers on the serving port, Prometheus on metrics."""
    rules: list[Doc]
    if service.public:
        rules = [{"ports": [{"protocol": "TCP", "port": service.port}]}]
    else:
        rules = [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": client}}} for client in clients],
                  "ports": [{"protocol": "TCP", "port": service.grpc_port}]}] if clients else []
        rules.append({"from": MONITORING, "ports": [{"protocol": "TCP", "port": service.metrics_port}]})
    if service.partner_port:
        # Partners come in through their own Ingress (the controller's pods), never through the gateway.
        rules.append({"ports": [{"protocol": "TCP", "port": service.partner_port}]})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": service.name, "labels": labels(service.name, "server")},
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": service.name}},
                     "policyTypes": ["Ingress"], "ingress": rules}}


def autoscaler(service: Service) -> Doc:
    assert service.autoscale is not None
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": service.name, "labels": labels(service.name, "server")},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
                "minReplicas": service.autoscale.min, "maxReplicas": service.autoscale.max,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": service.autoscale.cpu}}}],
            }}


def partner_ingress(service: Service) -> Doc:
    """The partner API's own entry, on its own host: partner traffic never shares the platform's."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": f"{service.name}-partner-api", "labels": labels(service.name, "ingress")},
            "spec": {"rules": [{"host": "partner-api.marksman.example", "http": {"paths": [{
                "path": "/partner/", "pathType": "Prefix",
                "backend": {"service": {"name": service.name, "port": {"name": "partner"}}}}]}}]}}


def service_docs(service: Service, services: list[Service]) -> list[Doc]:
    """Everything one service runs as in the base: settings, Deployment(s), Service, PDB, policy, HPA."""
    clients = [s.name for s in services if service.name in s.upstreams]
    replicas = None if service.autoscale else service.replicas
    docs = [config_map(service, k8s_addresses(services))]
    if service.singleton:
        docs.append(deployment(service, "server", replicas, [{"name": service.singleton, "value": "false"}]))
        docs.append(deployment(service, "worker", 1, [{"name": service.singleton, "value": "true"}]))
    else:
        docs.append(deployment(service, "server", replicas, []))
    if service.volume:
        docs.append(volume_claim(service))
    docs += [k8s_service(service), disruption_budget(service), network_policy(service, clients)]
    if service.autoscale:
        docs.append(autoscaler(service))
    if service.partner_port:
        docs.append(partner_ingress(service))
    return docs


def migrate_job(services: list[Service]) -> Doc:
    """One Job, one container per service in that service's own image: `jobs migrate <service>`."""
    containers = [{
        "name": s.name,
        "image": f"marksman/{s.name}",
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "services.common.jobs", "migrate", s.name],
        "envFrom": [{"configMapRef": {"name": f"{s.name}-settings"}}],
        "env": [database_env(s)],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": app_container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    } for s in services]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": MIGRATE_JOB, "labels": labels(MIGRATE_JOB, "job")},
            "spec": {
                "backoffLimit": 6,
                # Gone a while after it finished, so the next release can apply a new one (a Job is immutable).
                "ttlSecondsAfterFinished": 600,
                "template": {"metadata": {"labels": labels(MIGRATE_JOB, "job")}, "spec": {
                    "restartPolicy": "OnFailure", "automountServiceAccountToken": False,
                    "securityContext": pod_security(), "containers": containers,
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                }},
            }}


def local_postgres_docs(service: Service) -> list[Doc]:
    """A PostgreSQL StatefulSet, its headless Service and who may reach it, for one service's database."""
    name = f"postgres-{service.name}"
    pod_labels = labels(name, "database")
    selector = {"app.kubernetes.io/name": name}
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "labels": pod_labels},
        "spec": {
            "serviceName": name, "replicas": 1, "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": pod_labels}, "spec": {
                "automountServiceAccountToken": False,
                "securityContext": pod_security(POSTGRES_UID),
                "containers": [{
                    "name": "postgres", "image": POSTGRES_IMAGE,
                    "env": [
                        {"name": "POSTGRES_DB", "value": service.database},
                        {"name": "POSTGRES_USER", "value": LOCAL_DB_USER},
                        {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": name, "key": "password"}}},
                        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                    ],
                    "ports": [{"name": "postgres", "containerPort": 5432}],
                    "readinessProbe": {"exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-U", LOCAL_DB_USER,
                                                            "-d", service.database]},
                                       "periodSeconds": 5},
                    "livenessProbe": {"tcpSocket": {"port": "postgres"}, "periodSeconds": 20},
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
                    "securityContext": app_container_security(),
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"},
                                     {"name": "run", "mountPath": "/var/run/postgresql"},
                                     {"name": "tmp", "mountPath": "/tmp"}],
                }],
                "volumes": [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
            }},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}],
        },
    }
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": pod_labels},
           "spec": {"clusterIP": "None", "selector": selector,
                    "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres"}]}}
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "labels": pod_labels},
              "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"], "ingress": [{
                  "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": service.name}}},
                           {"podSelector": {"matchLabels": {"app.kubernetes.io/name": MIGRATE_JOB}}}],
                  "ports": [{"protocol": "TCP", "port": 5432}]}]}}
    return [statefulset, svc, policy]


def local_database_url(service: Service) -> str:
    return (f"postgresql://{LOCAL_DB_USER}:{LOCAL_DB_PASSWORD}@postgres-{service.name}:5432/{service.database}")


def local_postgres_kustomization(services: list[Service]) -> Doc:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"{s.name}.yaml" for s in services],
        "generatorOptions": {"disableNameSuffixHash": True},
        "secretGenerator": [
            entry
            for s in services
            for entry in (
                {"name": f"postgres-{s.name}", "literals": [f"password={LOCAL_DB_PASSWORD}"]},
                {"name": database_secret(s), "literals": [f"url={local_database_url(s)}"]},
            )
        ],
    }


def services_kustomization(services: list[Service]) -> Doc:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [*(f"{s.name}.yaml" for s in services), "migrate-job.yaml"]}
