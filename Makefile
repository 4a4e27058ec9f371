# fedrollup: `make demo` sets everything up and runs the main job; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: setup demo test bench clean

setup: $(STAMP)

# The virtual environment with every Python package pinned in requirements.txt, and fedrollup itself.
$(STAMP): requirements.txt pyproject.toml
	@echo "== setting up the Python environment in $(VENV) (first time: about 2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

demo: setup
	$(BIN)/fedrollup simulate $(DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest $(TEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
