"""Renders the deployment files (compose, Kubernetes, Prometheus, Grafana) from deploy/services.toml."""
