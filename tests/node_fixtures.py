"""Helpers for the node and contracts tests: a real anvil, deployments, a running node, JSON-RPC calls."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

import requests

from contracts_config.anvil import free_port, start_anvil
from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.deployment import Deployment
from contracts_config.transactions import call_function, connect

REPO = Path(__file__).resolve().parents[1]
ECHO_BACKEND = [sys.executable, str(REPO / "tests" / "node_echo_backend.py")]
DAPP_BACKEND = [sys.executable, "-m", "dapp"]
# anvil's well-known dev keys (mnemonic "test test … junk"); account 0 owns the contracts and claims.
DEV_KEYS = [ANVIL_KEY_0,
            "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
            "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"]
# Seconds per anvil block in the tests whose chain mines on a clock: every input waits for its block and every
# claim for its epoch's end, so the clock sets their pace (a recorded history: 33 s at 0.5 s, 16 s at 0.2 s on the
# loaded 2-core machine). The roles' windows are hundreds of blocks or waits, never a race against it; the node
# polls L1 every 0.05 s.
BLOCK_TIME = 0.2


@contextlib.contextmanager
def running_anvil(block_time: float | None = BLOCK_TIME) -> Iterator[str]:
    process = start_anvil(free_port(), block_time=block_time)
    try:
        yield f"http://127.0.0.1:{process.args[process.args.index('--port') + 1]}"
    finally:
        process.kill()
        process.wait()


_apps = iter(range(1, 1 << 30))


def fresh_deployment(rpc_url: str, epoch_length: int = 4) -> Deployment:
    """A new Application (a distinct template hash) on the shared test chain."""
    return deploy(rpc_url, ANVIL_KEY_0, epoch_length=epoch_length,
                  template_hash="0x" + next(_apps).to_bytes(32, "big").hex(), name="test")


def node_command(deployment_path: Path, db: Path, port: int, backend: list[str],
                 rollup_http_port: int = 0, key: str = ANVIL_KEY_0) -> list[str]:
    return [sys.executable, "-m", "fedrollup", "node", "--deployment", str(deployment_path), "--db", str(db),
            "--port", str(port), "--backend-command", " ".join(backend), "--finish-timeout", "2",
            "--key", key, "--rollup-http-port", str(rollup_http_port)]


@dataclass
class _Started:
    url: str
    process: subprocess.Popen
    log: IO[bytes]
    folder: Path


def _spawn(deployment: Deployment, folder: Path, backend: list[str] = ECHO_BACKEND, port: int | None = None,
           rollup_http_port: int = 0, key: str = ANVIL_KEY_0, extra: tuple[str, ...] = ()) -> _Started:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deployment.json"
    path.write_text(deployment.to_json())
    port = port or free_port()
    log = open(folder / "node.log", "ab")
    command = [*node_command(path, folder / "node.sqlite", port, backend, rollup_http_port, key), *extra]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    return _Started(f"http://127.0.0.1:{port}", process, log, folder)


@contextlib.contextmanager
def node_processes(deployment: Deployment, *nodes: dict) -> Iterator[list[tuple[str, subprocess.Popen]]]:
    """Several nodes, each `nodes` item `node_process`'s keyword arguments (`folder` among them), started at once
    and stopped at once: their start-ups (a Python process each, importing web3) overlap, as do their stops."""
    started: list[_Started] = []
    try:
        for options in nodes:
            started.append(_spawn(deployment, **options))
        for node in started:
            wait_until(lambda: _healthy(node.url) or node.process.poll() is not None, 60,
                       "the node to become healthy")
            if node.process.poll() is not None:
                raise RuntimeError(f"node exited: {(node.folder / 'node.log').read_text()[-2000:]}")
        yield [(node.url, node.process) for node in started]
    finally:
        for node in started:
            if node.process.poll() is None:
                node.process.terminate()
        for node in started:
            node.process.wait(timeout=20)
            node.log.close()


@contextlib.contextmanager
def node_process(deployment: Deployment, folder: Path, backend: list[str] = ECHO_BACKEND,
                 port: int | None = None, rollup_http_port: int = 0, key: str = ANVIL_KEY_0,
                 extra: tuple[str, ...] = ()) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `python -m fedrollup node` as its own process (it can be killed like a real node); yield its URL.
    `rollup_http_port`: where the backend's rollup HTTP API listens (0: any free port); `key`: its claim key."""
    with node_processes(deployment, dict(folder=folder, backend=backend, port=port, rollup_http_port=rollup_http_port,
                                         key=key, extra=extra)) as ((url, process),):
        yield url, process


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/livez", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def rpc(url: str, method: str, **params) -> dict:
    reply = requests.post(url + "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                          timeout=10).json()
    if "error" in reply:
        raise AssertionError(f"{method}: {reply['error']}")
    return reply["result"]


def add_input(deployment: Deployment, payload: bytes, key: str = DEV_KEYS[1]) -> dict:
    w3 = connect(deployment.rpc_url)
    box = w3.eth.contract(address=deployment.input_box, abi=deployment.abi("InputBox"))
    return call_function(w3, key, box.functions.addInput(deployment.application, payload))


def deposit_ether(deployment: Deployment, value: int, key: str = DEV_KEYS[2]) -> dict:
    """`EtherPortal.depositEther(app, b"")` from `key`: an input that brings `value` wei to the Application."""
    w3 = connect(deployment.rpc_url)
    portal = w3.eth.contract(address=deployment.ether_portal, abi=deployment.abi("EtherPortal"))
    return call_function(w3, key, portal.functions.depositEther(deployment.application, b""), value=value)


def outputs_of(url: str, app: str, **filters) -> list[dict]:
    return rpc(url, "cartesi_listOutputs", application=app, limit=1000, **filters)["data"]


def processed(url: str, app: str) -> int:
    return int(rpc(url, "cartesi_getProcessedInputCount", application=app)["data"], 16)


def proof_of(output: dict) -> tuple[int, list[bytes]]:
    return int(output["index"], 16), [bytes.fromhex(s[2:]) for s in output["output_hashes_siblings"]]


def claimed(url: str, app: str, count: int) -> list[dict]:
    """The first `count` outputs, once each has a proof and its epoch's claim was accepted on L1."""
    outs = outputs_of(url, app)[:count]
    if len(outs) < count or not all(o["output_hashes_siblings"] for o in outs):
        return []
    accepted = {e["index"] for e in rpc(url, "cartesi_listEpochs", application=app, status="CLAIM_ACCEPTED")["data"]}
    return outs if all(o["epoch_index"] in accepted for o in outs) else []
