"""`python -m tools.deploygen` writes the rendered deployment files; `--check` fails when any is stale."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.deploygen import catalog, compose, dashboards, kube, prom

HEADER = "# Rendered by `make deploy` (python -m tools.deploygen) from deploy/services.toml: edit those, not this.\n"


class Dumper(yaml.SafeDumper):
    """Block style, no anchors for repeated values, long strings kept on one line."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(*docs: Any) -> str:
    texts = [yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000) for doc in docs]
    return HEADER + "---\n".join(texts)


def rendered() -> dict[Path, str]:
    """Repository path -> the file's full text."""
    services = catalog.load()
    root = catalog.ROOT
    files: dict[Path, str] = {
        root / "docker-compose.yml": dump_yaml(compose.render(services, catalog.load_samples())),
        root / "deploy/prometheus/prometheus.local.yml": dump_yaml(prom.local()),
        root / "deploy/prometheus/prometheus.compose.yml": dump_yaml(prom.compose(services)),
        root / "deploy/k8s/base/services/kustomization.yaml": dump_yaml(kube.services_kustomization(services)),
        root / "deploy/k8s/base/services/migrate-job.yaml": dump_yaml(kube.migrate_job(services)),
        root / "deploy/k8s/overlays/local/postgres/kustomization.yaml": dump_yaml(
            kube.local_postgres_kustomization(services)),
    }
    for service in services:
        files[root / f"deploy/k8s/base/services/{service.name}.yaml"] = dump_yaml(*kube.service_docs(service, services))
        files[root / f"deploy/k8s/overlays/local/postgres/{service.name}.yaml"] = dump_yaml(
            *kube.local_postgres_docs(service))
    for name, board in dashboards.render().items():
        files[root / "deploy/grafana/dashboards" / name] = json.dumps(board, indent=2, sort_keys=True) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.deploygen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(catalog.ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("stale (run `make deploy`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("stale: " if args.check else "written: ") + (", ".join(map(str, stale)) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
