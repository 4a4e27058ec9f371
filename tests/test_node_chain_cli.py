"""`fedrollup chain up / status / down`: real background processes, URLs printed, clear errors, clean stop."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from contracts_config.anvil import free_port
from contracts_config.deployment import load
from node_fixtures import ECHO_BACKEND, REPO, add_input, outputs_of, wait_until

pytestmark = pytest.mark.slow


def fedrollup(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedrollup", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=240)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_chain_up_serves_inputs_and_chain_down_stops_everything(tmp_path):
    run_dir, deployment_file = tmp_path / "chain", tmp_path / "deployment.json"
    l1_port, node_port = free_port(), free_port()
    up = fedrollup("chain", "up", "--run-dir", str(run_dir), "--l1-port", str(l1_port), "--node-port", str(node_port),
                   "--block-time", "0.5", "--epoch-length", "4", "--deployment-file", str(deployment_file),
                   "--backend-command", " ".join(ECHO_BACKEND))
    state = json.loads((run_dir / "chain.json").read_text()) if (run_dir / "chain.json").exists() else {}
    try:
        assert up.returncode == 0, up.stderr
        assert f"http://127.0.0.1:{l1_port}" in up.stdout
        assert f"http://127.0.0.1:{node_port}/rpc" in up.stdout
        assert f"http://127.0.0.1:{node_port}/inspect/fedrollup" in up.stdout
        assert "0x1b51e2992A2755Ba4D6F7094032DF91991a0Cfac" in up.stdout
        deployment = load(deployment_file)
        assert deployment.rpc_url == f"http://127.0.0.1:{l1_port}"

        assert fedrollup("chain", "status", "--run-dir", str(run_dir)).returncode == 0
        add_input(deployment, b"through the stack")
        url = f"http://127.0.0.1:{node_port}"
        outs = wait_until(lambda: outputs_of(url, "fedrollup"), 20, "the notice")
        assert outs[0]["decoded_data"]["payload"] == "0x" + b"through the stack".hex()

        again = fedrollup("chain", "up", "--run-dir", str(run_dir), "--l1-port", str(l1_port))
        assert again.returncode == 2 and "already running" in again.stderr and "Traceback" not in again.stderr
        taken = fedrollup("chain", "up", "--run-dir", str(tmp_path / "other"), "--l1-port", str(l1_port),
                          "--node-port", str(free_port()))
        assert taken.returncode == 2 and f"port {l1_port} is already in use" in taken.stderr
        assert len(taken.stderr.strip().splitlines()) == 1

        down = fedrollup("chain", "down", "--run-dir", str(run_dir))
        assert down.returncode == 0
        assert not alive(state["anvil_pid"]) and not alive(state["node_pid"])
        assert fedrollup("chain", "status", "--run-dir", str(run_dir)).returncode == 1
        assert "accepted" in (run_dir / "node.log").read_text()
    finally:
        for pid in (state.get("node_pid"), state.get("anvil_pid")):
            if pid and alive(pid):
                os.killpg(pid, 9)
