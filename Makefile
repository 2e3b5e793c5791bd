# trackio_flask tasks. `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= .demo-data

.PHONY: help demo test lint bench clean

help: ## list the tasks
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

# The demo needs only what the dashboard runs on; tests, lint and benchmarks add the dev set.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.runtime ## write a demo project with a live run and serve it on http://127.0.0.1:7860
	TRACKIO_DIR=$(DEMO_DIR) $(VENV)/bin/trackio-flask demo --dir $(DEMO_DIR) --port 7860

test: $(VENV)/.installed ## run the whole test suite
	$(PY) -m pytest

lint: $(VENV)/.installed ## ruff over the package, tests and benchmarks
	$(VENV)/bin/ruff check trackio_flask tests bench

bench: $(VENV)/.installed ## side-by-side benchmarks against the trackio package; writes BENCHMARKS.md
	$(PY) -m bench.run

clean: ## remove the venv, demo data and build output
	rm -rf $(VENV) $(DEMO_DIR) build dist .pytest_cache test-artifacts

.PHONY: e2e-under-load
e2e-under-load: $(VENV)/.installed ## browser tests three times in a row, both cores kept busy by tests/cpu_hog.py
	@for run in 1 2 3; do \
	  echo "== e2e under load: run $$run of 3"; \
	  $(PY) tests/cpu_hog.py 2 -- $(PY) -m pytest tests/e2e -p no:randomly || exit 1; \
	done

.PHONY: fuzz
fuzz: $(VENV)/.installed ## long fuzz: FUZZ_EXAMPLES (10000) requests per route and API name; FUZZ_JOBS processes
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(PY) tests/fuzz_run.py

.PHONY: screenshots
screenshots: $(VENV)/.installed ## photograph every page (light, dark, phone) into docs/screenshots/, optimised (pngquant)
	$(PY) docs/screenshots.py
