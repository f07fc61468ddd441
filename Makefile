# Real-time market pipeline: every target is backed by the project's Python tools.
# `make help` lists them; `make run` and `make test` are the two that matter.

SHELL := /bin/bash
PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with its dev tools
	@true

# Validation tools of the deployment files, in their own virtualenv (their
# dependencies clash with the project's pins) and kustomize from the Go proxy.
TOOLS := .work/tools
KUSTOMIZE_VERSION := v5.8.2
TOOLS_STAMP := $(TOOLS)/.installed-$(shell cat tests/deploy/requirements.txt | sha256sum | cut -c1-12)-$(KUSTOMIZE_VERSION)

$(TOOLS_STAMP): tests/deploy/requirements.txt
	@test -x $(TOOLS)/venv/bin/python || $(PYTHON_BOOT) -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/venv/bin/python -m pip install --quiet -r tests/deploy/requirements.txt
	GOBIN=$(abspath $(TOOLS))/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@rm -f $(TOOLS)/.installed-* && touch $@

.PHONY: deploy-tools
deploy-tools: $(TOOLS_STAMP) ## Install kustomize, kubernetes-validate, checkov, ansible-lint, hadolint under .work/tools
	@true

.PHONY: jars
jars: install ## Resolve the Kafka, Cassandra and Spark connector jars from Maven Central (once)
	$(PY) -m stack jars

.PHONY: stack-up
stack-up: install ## Start Kafka and Cassandra on 127.0.0.1, apply cql/, create topics (idempotent)
	$(PY) -m stack up

.PHONY: spark-up
spark-up: jars stack-up ## Also start the Spark standalone cluster: a master and 2 workers on 127.0.0.1
	$(PY) -m stack up --on-cluster

.PHONY: stack-down
stack-down: ## Stop the Spark cluster if running, Kafka and Cassandra (data is kept under .work/)
	@if [ -x $(PY) ]; then $(PY) -m stack down; else echo "nothing to stop (no .venv)"; fi

.PHONY: stack-status
stack-status: install ## Show whether Kafka and Cassandra are running and ready
	$(PY) -m stack status

.PHONY: class-archive
class-archive: jars stack-up ## Record the local Spark driver's class-data archive for faster starts (once per JDK and jars)
	$(PY) -m stack class-archive

.PHONY: run
run: jars stack-up class-archive ## Run the whole pipeline (live with FINNHUB_TOKEN, synthetic trades without)
	$(PY) -m stack run

.PHONY: lint
lint: install ## Check the code with ruff
	$(VENV)/bin/ruff check .

.PHONY: test
test: lint jars deploy-tools ## Run the full test suite (starts the stack if needed)
	$(PY) -m pytest

.PHONY: test-cluster
test-cluster: lint jars ## Only the tests that spark-submit the jobs to a private Spark cluster
	$(PY) -m pytest -m cluster

# Tests are marked integration by the fixtures they use (tests/conftest.py), so this
# selection starts no Kafka or Cassandra. The Spark tests stay in: they run a local
# session, which needs the connector jars but no server.
.PHONY: test-unit
test-unit: jars ## Run only the tests that need no running stack (no server is started)
	$(PY) -m pytest -m "not integration and not faults"

.PHONY: bench
bench: jars stack-up class-archive ## Benchmarks: producer throughput; stream job drain, latency, RSS (docs/benchmarks.md)
	$(PY) -m bench.producer_throughput
	$(PY) -m bench.stream_job

.PHONY: bench-storage
bench-storage: jars stack-up class-archive ## Disk taken per symbol and day by each table (restarts the stack to flush)
	$(PY) -m bench.storage

.PHONY: soak
soak: jars stack-up class-archive ## One-hour soak at 1,000 trades/s: RSS, live heap, latency (docs/benchmarks.md)
	$(PY) -m bench.soak

.PHONY: dashboards
dashboards: jars stack-up ## Refresh docs/img/*.png: the dashboards rendered after a short real pipeline run
	DASHBOARDS_README_DIR=docs/img $(PY) -m pytest tests/grafana/test_render_pipeline.py -q

.PHONY: grafana
grafana: stack-up ## Grafana with the project's dashboards on the local Cassandra (grafana, docker or podman)
	$(PY) -m grafana.local

.PHONY: clean
clean: stack-down ## Stop the stack and delete its data, checkpoints and test output (keeps jars)
	rm -rf .work/stack .work/checkpoints .work/tests .work/run

.PHONY: distclean
distclean: clean ## Also delete the jars and the virtualenv
	rm -rf .work $(VENV)
