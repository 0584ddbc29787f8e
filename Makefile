# Floorwatch: two commands on a fresh machine.
#   make demo   creates .venv, installs, runs the whole system on embedded defaults, prints the URL
#   make test   creates .venv, installs (and the Debian test services when root), lints, runs every test
#   make unit   the inner loop: tests marked `unit` (the pure domain, contract, edge decoding; no service; under a minute)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck unit services clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# make demo PORT=8001 HOST=0.0.0.0 SCENARIO=fire-drill (each optional; FLOORWATCH_HTTP_PORT works too)
demo: $(STAMP)
	$(BIN)/floorwatch demo $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST)) \
		$(if $(SCENARIO),--scenario $(SCENARIO))

services:
	@bash scripts/system-packages.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy gateway server edge simulators dashboards

# The inner loop: tests marked `unit` (tests/server/domain and the pure modules tests/conftest.py lists; no
# service, network or subprocess, which a guard in tests/conftest.py enforces). `make test` before a commit.
unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -q -m unit

# Workers side by side (pytest-xdist): most tests wait on brokers, servers and timers, not on the CPU.
# TEST_WORKERS=0 runs everything in one process; tests/conftest.py gives each worker its own ports.
TEST_WORKERS ?= 2

test: $(STAMP) services lint typecheck
	$(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --durations=20

clean:
	rm -rf $(VENV) var artifacts .pytest_cache .mypy_cache .ruff_cache
