# rollback-rehearsal entry points. Every target does the set-up it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export TESTCONTAINERS_RYUK_DISABLED ?= true
export TESTCONTAINERS_CONNECTION_MODE ?= docker_host
export TC_HOST ?= 127.0.0.1

.PHONY: env venv test unit e2e demo bench clean-clusters help
# Scenarios rehearsed side by side on the one cluster (`rehearse run -j`, pytest `--jobs`); measured:
# the demo suite in 0.43x the serial time on 2 cores (docs/performance.md).
JOBS ?= 3

help:
	@echo "make env    build the offline test environment (Docker, kind node image, Postgres, registry)"
	@echo "make test   env + venv + the whole test suite (unit and e2e on the real environment)"
	@echo "make demo   env + venv + rehearse the demo scenarios, reports in reports/demo/"
	@echo "make bench  env + venv + on one warm cluster: bad-migration by hand vs the harness, the demo at -j 1, 2, 4"

env:
	env/bootstrap.sh

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: env venv
	JOBS=$(JOBS) PYTEST=$(VENV)/bin/pytest tools/test.sh

unit: venv
	$(VENV)/bin/pytest tests/unit

demo: env venv
	$(VENV)/bin/rehearse run scenarios/ --report-dir reports/demo --against-expect -j $(JOBS)
	$(VENV)/bin/rehearse report trend --report-dir reports/demo

# Figures, not a test: about 90 min on 2 cores (5+5 bad-migration runs, 3 rounds of the demo at -j 1, 2, 4).
# Quick check: $(PY) tools/bench.py --mode hand --rounds 1 --warmup 0
bench: env venv
	$(PY) tools/bench.py

# Dead runs' leftovers only (never a live run's); `rehearse cleanup --all` for everything.
clean-clusters: venv
	$(VENV)/bin/rehearse cleanup
