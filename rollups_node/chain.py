"""`fedrollup chain up/down/status/deploy`: anvil, the contracts, and the node as background processes.

State lives in the run folder: `chain.json` (pids, bind address, URLs, paths), `anvil.log`, `node.log`,
`backend.log` and the node's `node.sqlite`. `--host` is the address anvil and the node's /rpc and /inspect
listen on (loopback by default; an emulated host's own address on the topology, so other hosts reach them).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from contracts_config.anvil import check_bind_address, port_is_free, start_anvil, url_host
from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.deployment import default_path, save
from common.errors import ConfigError
from rollups_node.config import OWNER_KEY_ENV, ChainDeployConfig, ChainUpConfig

STATE_FILE = "chain.json"
NODE_COMMAND = [sys.executable, "-m", "fedrollup", "node"]  # the node in the foreground (`fedrollup node`)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not running
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _read_state(run_dir: Path) -> dict | None:
    path = run_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else None


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"the node exited with code {process.returncode} while starting: "
                             f"{_tail(log_path, 1) or 'see ' + str(log_path)}")
        try:
            if requests.get(url + "/livez", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise ConfigError(f"the node did not become healthy within {timeout:g} s (see {log_path})")


def _stop(pid: int | None, what: str, timeout: float = 20.0) -> None:
    if not _alive(pid):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        print(f"{what} (pid {pid}) did not stop in {timeout:g} s and was killed")


def chain_up(config: ChainUpConfig) -> int:
    run_dir = config.run_dir
    state = _read_state(run_dir)
    if state and (_alive(state.get("anvil_pid")) or _alive(state.get("node_pid"))):
        raise ConfigError(f"a chain is already running from {run_dir} (run `fedrollup chain down` first)")
    host = config.host
    check_bind_address(host)
    for port, what in ((config.l1_port, "--l1-port"), (config.node_port, "--node-port")):
        if not port_is_free(port, host):
            raise ConfigError(f"port {port} is already in use on {host} (choose another {what})")
    run_dir.mkdir(parents=True, exist_ok=True)
    key = os.environ.get(OWNER_KEY_ENV) or ANVIL_KEY_0
    anvil_log, node_log, backend_log = run_dir / "anvil.log", run_dir / "node.log", run_dir / "backend.log"
    where = f"every address (0.0.0.0), port {config.l1_port}" if host == "0.0.0.0" else f"{host}:{config.l1_port}"
    print(f"starting anvil on {where} (a block every {config.block_time:g} s)", flush=True)
    anvil = start_anvil(config.l1_port, block_time=config.block_time, log_path=anvil_log, host=host)
    node = None
    try:
        rpc_url = f"http://{url_host(host)}:{config.l1_port}"
        print("deploying InputBox, EtherPortal, Authority and Application (@cartesi/rollups 2.2.0)", flush=True)
        deployment = deploy(rpc_url, key, name=config.name, epoch_length=config.epoch_length,
                            template_hash=config.template_hash)
        deployment_path = save(deployment, config.deployment_file or default_path(config.name))
        database = run_dir / "node.sqlite"
        for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            stale.unlink(missing_ok=True)  # a fresh chain starts a fresh node database
        command = [*NODE_COMMAND, "--deployment", str(deployment_path), "--db", str(database),
                   "--host", host, "--port", str(config.node_port), "--backend-log", str(backend_log)]
        if config.backend_command:
            command += ["--backend-command", config.backend_command]
        with open(node_log, "ab") as out:
            node = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=dict(os.environ, **{OWNER_KEY_ENV: key}), start_new_session=True)
        node_url = f"http://{url_host(host)}:{config.node_port}"
        print("starting the node and its backend; waiting until the backend asks for its first input", flush=True)
        _wait_healthy(node_url, node, node_log, timeout=180)
    except BaseException:
        _stop(node.pid if node else None, "node")
        _stop(anvil.pid, "anvil")
        raise
    state = {"anvil_pid": anvil.pid, "node_pid": node.pid, "host": host, "l1_rpc_url": rpc_url, "node_url": node_url,
             "rpc_url": node_url + "/rpc", "inspect_url": f"{node_url}/inspect/{deployment.application_name}",
             "deployment": str(deployment_path), "database": str(database), "log_dir": str(run_dir),
             "block_time": config.block_time, "epoch_length": config.epoch_length}
    (run_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    print(f"fedrollup chain is up (chain id {deployment.chain_id}, block every {config.block_time:g} s, "
          f"epoch of {deployment.epoch_length} blocks)")
    for name, address in deployment.contracts.items():
        print(f"  {name:<12} {address}")
    print(f"  L1 RPC       {rpc_url}")
    print(f"  node /rpc    {state['rpc_url']}")
    print(f"  inspect      {state['inspect_url']}  (POST, raw body)")
    print(f"  deployment   {deployment_path}")
    print(f"  logs         {run_dir}/ (anvil.log, node.log, backend.log)")
    if host == "0.0.0.0":
        print("  anvil and the node listen on every address of this machine; the URLs above use loopback")
    return 0


def chain_down(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if not state:
        print(f"no chain recorded in {run_dir}; nothing to stop")
        return 0
    _stop(state.get("node_pid"), "node")  # the node stops its backend
    _stop(state.get("anvil_pid"), "anvil")
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    print(f"fedrollup chain stopped (logs kept in {run_dir})")
    return 0


def chain_status(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if not state:
        print(f"no chain recorded in {run_dir}")
        return 1
    anvil_up, node_up = _alive(state.get("anvil_pid")), _alive(state.get("node_pid"))
    healthy = False
    if node_up:
        try:
            healthy = requests.get(state["node_url"] + "/livez", timeout=2).status_code == 200
        except requests.RequestException:
            pass
    print(f"anvil  {'running' if anvil_up else 'stopped'} (pid {state['anvil_pid']}) at {state['l1_rpc_url']}")
    print(f"node   {'healthy' if healthy else 'running, not healthy' if node_up else 'stopped'} "
          f"(pid {state['node_pid']}): {state['rpc_url']}, {state['inspect_url']}")
    if state.get("host") == "0.0.0.0":
        print("anvil and the node listen on every address of this machine (the URLs use loopback)")
    print(f"deployment {state['deployment']}; logs in {state['log_dir']}")
    return 0 if anvil_up and healthy else 1


def chain_deploy(config: ChainDeployConfig) -> int:
    if not config.key:
        raise ConfigError(f"pass --key (a funded private key) or set {OWNER_KEY_ENV}")
    deployment = deploy(config.rpc, config.key, name=config.name, epoch_length=config.epoch_length,
                        template_hash=config.template_hash)
    path = save(deployment, config.out)
    for name, address in deployment.contracts.items():
        print(f"{name:<12} {address}")
    print(f"deployment written to {path}")
    return 0
