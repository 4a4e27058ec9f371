"""`fedrollup chain up / status / down`: real background processes, URLs printed, a round on the real backend
that pays a trainer on L1, clear errors, clean stop."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from contracts_config.anvil import free_port, rpc_answers
from common import accounts
from common.accounts import claimer_address
from contracts_config.deployment import load
from node_fixtures import ECHO_BACKEND, REPO
from onchain_fixtures import a_round_pays_a_trainer_on_l1

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


@dataclass(frozen=True)
class ChainUp:
    """What `chain_up` started: its result, chain.json, where it lives, its ports."""

    up: subprocess.CompletedProcess
    state: dict               # chain.json, {} when `chain up` failed
    run_dir: Path
    deployment_file: Path
    l1_port: int
    node_port: int


@contextlib.contextmanager
def chain_up(tmp_path: Path, *options: str, echo: bool = True) -> Iterator[ChainUp]:
    """`fedrollup chain up` on free ports with the echo backend (`echo=False`: its default, `python -m dapp`);
    kills whatever it left running afterwards."""
    run_dir, deployment_file = tmp_path / "chain", tmp_path / "deployment.json"
    l1_port = free_port(4)  # L1, then the three Quorum members' nodes
    node_port = l1_port + 1
    backend = ("--backend-command", " ".join(ECHO_BACKEND)) if echo else ()
    up = fedrollup("chain", "up", *options, "--run-dir", str(run_dir), "--l1-port", str(l1_port), "--node-port",
                   str(node_port), "--block-time", "0.5", "--epoch-length", "4", "--deployment-file",
                   str(deployment_file), *backend)
    state = json.loads((run_dir / "chain.json").read_text()) if (run_dir / "chain.json").exists() else {}
    try:
        yield ChainUp(up, state, run_dir, deployment_file, l1_port, node_port)
    finally:
        for pid in (state.get("node_pid"), state.get("anvil_pid")):
            if pid and alive(pid):
                os.killpg(pid, 9)


def test_chain_up_serves_a_paid_round_and_chain_down_stops_everything(tmp_path):
    with chain_up(tmp_path, echo=False) as chain:
        up, state, run_dir, deployment_file = chain.up, chain.state, chain.run_dir, chain.deployment_file
        l1_port, node_port = chain.l1_port, chain.node_port
        assert up.returncode == 0, up.stderr
        assert f"http://127.0.0.1:{l1_port}" in up.stdout
        assert f"http://127.0.0.1:{node_port}/rpc" in up.stdout
        assert f"http://127.0.0.1:{node_port}/inspect/fedrollup" in up.stdout
        assert "0x1b51e2992A2755Ba4D6F7094032DF91991a0Cfac" in up.stdout
        deployment = load(deployment_file)
        assert deployment.rpc_url == f"http://127.0.0.1:{l1_port}"
        # a Quorum of 3 by default: the manager's and each validator's claim key, bound to the role's account,
        # each member's node on its own port, all healthy
        assert deployment.consensus_type == "QUORUM"
        assert [(m["address"], m["role"], m["role_address"]) for m in deployment.members] == [
            (claimer_address(1), "manager", accounts.address(accounts.MANAGER_INDEX)),
            (claimer_address(2), "validator of group 0", accounts.address(accounts.validator_index(0))),
            (claimer_address(3), "validator of group 1", accounts.address(accounts.validator_index(1)))]
        assert [n["url"] for n in state["nodes"]] == [f"http://127.0.0.1:{node_port + i}" for i in range(3)]

        status = fedrollup("chain", "status", "--run-dir", str(run_dir))
        assert status.returncode == 0 and status.stdout.count("healthy") == 3, status.stdout
        # the real backend behind the manager's node: a round played from each role's key pays a trainer on L1
        a_round_pays_a_trainer_on_l1(deployment, f"http://127.0.0.1:{node_port}")

        again = fedrollup("chain", "up", "--run-dir", str(run_dir), "--l1-port", str(l1_port))
        assert again.returncode == 2 and "already running" in again.stderr and "Traceback" not in again.stderr
        taken = fedrollup("chain", "up", "--run-dir", str(tmp_path / "other"), "--l1-port", str(l1_port),
                          "--node-port", str(free_port()))
        assert taken.returncode == 2 and f"port {l1_port} is already in use" in taken.stderr
        assert len(taken.stderr.strip().splitlines()) == 1

        down = fedrollup("chain", "down", "--run-dir", str(run_dir))
        assert down.returncode == 0
        assert not alive(state["anvil_pid"]) and not any(alive(n["pid"]) for n in state["nodes"])
        assert fedrollup("chain", "status", "--run-dir", str(run_dir)).returncode == 1
        assert "accepted" in (run_dir / "node.log").read_text()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_chain_up_host_serves_l1_and_the_node_on_that_address_only(tmp_path):
    with chain_up(tmp_path, "--host", "127.0.0.2") as chain:
        up, state, l1_port, node_port = chain.up, chain.state, chain.l1_port, chain.node_port
        assert up.returncode == 0, up.stderr
        assert f"starting anvil on 127.0.0.2:{l1_port}" in up.stdout
        assert f"http://127.0.0.2:{node_port}/rpc" in up.stdout
        assert load(chain.deployment_file).rpc_url == f"http://127.0.0.2:{l1_port}"
        assert state["host"] == "127.0.0.2" and state["node_url"] == f"http://127.0.0.2:{node_port}"
        status = fedrollup("chain", "status", "--run-dir", str(chain.run_dir))
        assert status.returncode == 0 and f"http://127.0.0.2:{l1_port}" in status.stdout
        assert rpc_answers(f"http://127.0.0.2:{l1_port}") and answers(f"http://127.0.0.2:{node_port}/livez")
        assert not rpc_answers(f"http://127.0.0.1:{l1_port}"), "anvil also listens on 127.0.0.1"
        assert not answers(f"http://127.0.0.1:{node_port}/livez"), "the node also listens on 127.0.0.1"
        taken = fedrollup("chain", "up", "--host", "127.0.0.2", "--run-dir", str(tmp_path / "other"),
                          "--l1-port", str(l1_port), "--node-port", str(free_port()))
        assert taken.returncode == 2 and f"port {l1_port} is already in use on 127.0.0.2" in taken.stderr
        assert fedrollup("chain", "down", "--run-dir", str(chain.run_dir)).returncode == 0


@pytest.mark.parametrize("address, message", [("not-an-ip", "is not an IPv4 address"),
                                              ("192.0.2.77", "is not an address of this machine")])
def test_a_bad_host_is_a_one_line_error(tmp_path, address, message):
    up = fedrollup("chain", "up", "--host", address, "--run-dir", str(tmp_path / "chain"))
    assert up.returncode == 2 and message in up.stderr and "Traceback" not in up.stderr
    assert len(up.stderr.strip().splitlines()) == 1 and not (tmp_path / "chain").exists()
