# trackio_flask tasks. `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= .demo-data

.PHONY: help demo test lint bench clean

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed ## write a demo project with a live run and serve it on http://127.0.0.1:7860
	TRACKIO_DIR=$(DEMO_DIR) $(VENV)/bin/trackio-flask demo --dir $(DEMO_DIR) --port 7860

test: $(VENV)/.installed ## run the whole test suite
	$(PY) -m pytest

lint: $(VENV)/.installed ## ruff over the package, tests and benchmarks
	$(VENV)/bin/ruff check trackio_flask tests bench

bench: $(VENV)/.installed ## side-by-side benchmarks against the trackio package; writes BENCHMARKS.md
	$(PY) -m bench.run

clean: ## remove the venv, demo data and build output
	rm -rf $(VENV) $(DEMO_DIR) build dist .pytest_cache test-artifacts
