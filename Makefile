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

.PHONY: setup demo test bench clean topology-deps browser-deps riscv-rootfs riscv-replay

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

# The emulated edge network (topology/): Debian's Mininet 2.3.0 (mnexec, LinuxBridge via bridge-utils, TCLink
# via tc), ping and modprobe, installed with apt when missing (needs root). Debian's `mininet` Python
# package (the one matching its mnexec) is made importable from the venv through a .pth file that exposes
# that one package and nothing else of Debian's Python.
TOPOLOGY_APT := mininet bridge-utils iproute2 iputils-ping kmod net-tools
topology-deps: setup
	@missing=""; for p in $(TOPOLOGY_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing$$missing with apt (the emulated network; needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	mkdir -p $(VENV)/debian-mininet
	ln -sfn /usr/lib/python3/dist-packages/mininet $(VENV)/debian-mininet/mininet
	echo "$(CURDIR)/$(VENV)/debian-mininet" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/debian-mininet.pth"
	$(BIN)/python -c "import mininet.net, mininet.nodelib; print('== Mininet', mininet.net.VERSION, 'importable from $(VENV)')"

# The explorer's browser (`fedrollup console serve --screenshot`, tests/test_console_explorer.py): Debian's
# Chromium and its WebDriver, installed with apt when missing (needs root).
BROWSER_APT := chromium chromium-driver
browser-deps:
	@missing=""; for p in $(BROWSER_APT); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing$$missing with apt (the explorer's headless browser; needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: setup
	$(BIN)/fedrollup demo $(DEMO_ARGS)

# As root, the tests also get Mininet (topology-deps), Chromium (browser-deps) and the riscv64 root file system
# (riscv-rootfs: about 6.5 minutes the first time, then cached); without root the emulated-network, browser and
# riscv64 tests skip, saying so.
test: setup
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory topology-deps browser-deps riscv-rootfs; \
	else echo "== not root: the emulated-network, browser and riscv64 tests will be skipped (sudo make test runs them)"; fi
	$(BIN)/python -m pytest $(TEST_ARGS)

# The backend on riscv64 (QEMU user emulation, a Debian riscv64 root file system with dapp/requirements.txt):
# a whole demo run's inputs replayed through it and compared byte for byte with the host run. Needs root
# (binfmt_misc, chroot); the root file system is cached in build/riscv64 (first time: minutes; see
# docs/validators.md). RISCV_DB=<node.sqlite> replays another run (default: the newest demo run, or a new one).
RISCV_ROOTFS := build/riscv64/rootfs
riscv-rootfs: $(RISCV_ROOTFS)/.fedrollup-ready
$(RISCV_ROOTFS)/.fedrollup-ready: riscv64/rootfs.sh riscv64/trixie-riscv64.lock dapp/requirements.txt
	riscv64/rootfs.sh $(RISCV_ROOTFS)
	@touch $@

riscv-replay: setup riscv-rootfs
	riscv64/replay.sh $(RISCV_ROOTFS) $(RISCV_DB)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
