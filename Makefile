# Two commands: `make run` (set up, start the stack, load the demo) and `make test` (set up, check, test).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint proto bench-ingest bench-segment bench-predict bench-recommend-quality clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/marksman up --demo

test: setup
	$(BIN)/python tools/gen_protos.py --check
	$(BIN)/ruff check .
	$(BIN)/mypy
	bash deploy/ci/tools.sh
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

proto: setup
	$(BIN)/python tools/gen_protos.py

# Renders docker-compose.yml, Kubernetes, Prometheus and Grafana files from deploy/services.toml.
.PHONY: deploy
deploy: setup
	$(BIN)/python -m tools.deploygen

bench-ingest: setup
	$(BIN)/python bench/ingest.py

bench-segment: setup
	$(BIN)/python bench/segment.py

# bench/dispatch.py: deliveries/s from launch to the sample partner's acknowledgement (100,000 recipients,
# SQLite and PostgreSQL) beside the partner's own intake rate measured in the same run.
.PHONY: bench-dispatch
bench-dispatch: setup
	$(BIN)/python bench/dispatch.py

bench-predict: setup
	$(BIN)/python bench/predict.py

# bench/recommend.py: gRPC top-10 vs a bare echo of the same server, the gateway route at 50 clients (wrk if
# installed), LightFM training on 1M synthetic interactions.
.PHONY: bench-recommend
bench-recommend: setup
	$(BIN)/python bench/recommend.py

bench-recommend-quality: setup
	$(BIN)/python bench/recommend_quality.py

# bench/gateway.py: quotes/s and p50/p99 of a 5-line quote at 50 clients (wrk) beside a bare FastAPI route
# making one gRPC call, measured in the same run.
.PHONY: bench-gateway
bench-gateway: setup
	$(BIN)/python bench/gateway.py

# bench/resilience.py: client CPU per upstream call, bare stub vs the read retry policy vs Upstreams.call (breaker).
.PHONY: bench-resilience
bench-resilience: setup
	$(BIN)/python bench/resilience.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
