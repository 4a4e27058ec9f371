# fedrollup: `make demo` sets everything up and runs the main job; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := contracts-config/node_modules/.installed
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: setup demo test bench clean

setup: $(STAMP) $(NPM_STAMP)

# The virtual environment with every Python package pinned in requirements.txt, and fedrollup itself.
$(STAMP): requirements.txt pyproject.toml
	@echo "== setting up the Python environment in $(VENV) (first time: about 2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

# The official Cartesi Rollups 2.2.0 contract artifacts and the anvil dev chain, exactly as locked.
$(NPM_STAMP): contracts-config/package.json contracts-config/package-lock.json
	@echo "== installing the Cartesi contracts and anvil (npm ci in contracts-config/)"
	cd contracts-config && npm ci --no-audit --no-fund
	@touch $@

demo: setup
	$(BIN)/fedrollup simulate $(DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest $(TEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
