# Thin, documented entry points; CI calls them too (.ci/run runs `make test`, then `make e2e`).
# `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
# Extra pip arguments for `make venv`, e.g. where PyPI's torch is a multi-GB CUDA build:
#   make venv PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
PIP_ARGS ?=
PYTEST_ARGS ?=
COMPOSE ?= docker compose
# Production shape; compose.override.yml (development) is only used by `make dev`.
COMPOSE_PROD := $(COMPOSE) -f compose.yaml
COMPOSE_CPU := $(COMPOSE) -f compose.yaml -f compose.cpu.yaml
# `make lock` writes here; point it elsewhere to compare without touching the pins.
LOCK_DIR ?= requirements
# Exactly the flags the pins were compiled with. Add index options with UV_ARGS, e.g.
#   make lock UV_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
UV ?= uv
UV_ARGS ?=
UV_COMPILE := $(UV) pip compile pyproject.toml --python-version 3.11 --index-strategy unsafe-best-match \
	--no-header --no-annotate --no-emit-find-links --no-emit-index-url $(UV_ARGS)

STAMP := $(VENV)/.amulet-installed

.PHONY: help system-packages venv test e2e bench-deps bench bench-gpu lint lock up up-cpu down dev dev-cpu download-models clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

system-packages: ## Install the Debian packages the tests need when missing (as root or with sudo; else prints the apt-get line)
	deploy/system-packages.sh test

venv: $(STAMP) ## Create .venv with the pinned dev requirements and the project (editable); only reinstalls when the pins change

# The stamp records a finished install: an interrupted one leaves no stamp and is redone.
$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_ARGS) -r requirements/dev.txt
	$(VENV)/bin/python -m pip install --no-deps --no-build-isolation -e .
	touch $@

test: system-packages venv ## Set up what is missing (Debian packages, .venv), then run the test suite; no tests collected counts as a failure
	@rc=0; $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

e2e: venv ## Prove the compose stack for real (root on Debian: installs Docker, builds offline, up --wait, jobs over HTTP, watch); see README
	deploy/ci/e2e.sh

bench-deps: ## Install what `make bench` needs: the Debian packages (wrk included), .venv and requirements/bench.txt
	deploy/system-packages.sh bench
	@$(MAKE) --no-print-directory venv
	$(VENV)/bin/python -m pip install -q -r requirements/bench.txt

bench: bench-deps ## Benchmark the real stack against bare baselines (~10 min on 2 cores); writes bench/results/<time>.md and .png
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

bench-gpu: bench-deps ## Workload 4 on CUDA: whisper-large-v3-turbo architecture (random fp16 weights), batch-size sweep
	$(VENV)/bin/python -m bench.run --gpu $(BENCH_ARGS)

lint: venv ## Check the code: ruff check, ruff format --check, mypy (strict for shared/ and api/); CI runs it too
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

lock: ## Recompile requirements/*.txt from pyproject.toml (uv pip compile); torch.txt is edited by hand
	$(UV_COMPILE) --extra api -o $(LOCK_DIR)/api.txt
	$(UV_COMPILE) --extra worker -c requirements/torch.txt --no-emit-package torch -o $(LOCK_DIR)/worker.txt
	$(UV_COMPILE) --extra api --extra worker --extra dev -c requirements/torch.txt -o $(LOCK_DIR)/dev.txt
	$(UV_COMPILE) --extra bench -c requirements/dev.txt -o $(LOCK_DIR)/bench.txt
	@# The dev lock resolves the CPU build of torch; pin the plain version like torch.txt does.
	sed -i -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/' $(LOCK_DIR)/dev.txt

up: ## Start the stack, production shape (compose.yaml only; needs an NVIDIA GPU)
	$(COMPOSE_PROD) up -d --build

up-cpu: ## Start the stack without a GPU (compose.yaml + compose.cpu.yaml)
	$(COMPOSE_CPU) up -d --build

down: ## Stop the stack (volumes, i.e. Redis data and the model cache, are kept)
	$(COMPOSE) -f compose.yaml -f compose.cpu.yaml --profile tools down --remove-orphans

dev: ## Development: compose.yaml + compose.override.yml, sources synced into the containers (docker compose watch)
	$(COMPOSE) watch

dev-cpu: ## Development without a GPU (adds compose.cpu.yaml)
	$(COMPOSE) -f compose.yaml -f compose.cpu.yaml -f compose.override.yml watch

download-models: ## Fill the hf-cache volume with the configured models (add CPU=1 for the CPU image)
	$(if $(CPU),$(COMPOSE_CPU),$(COMPOSE_PROD)) --profile tools run --rm --build download-models

clean: ## Remove .venv and Python/tool caches (Docker images and volumes are left alone)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
