"""`fedrollup chain up/down/status/deploy`: anvil, the contracts, and the nodes as background processes.

State lives in the run folder: `chain.json` (pids, bind address, URLs, paths), `anvil.log`, and per node its
`node.log`, `backend.log` and `node.sqlite`. Under a Quorum every member runs its own node with its own claim
key, database and backend: member 1 (the manager) in the run folder itself, member i in `member-i/`, on
`--node-port + i - 1`. The top-level URLs of `chain.json` are member 1's. `--host` is the address anvil and
the nodes listen on (loopback by default; an emulated host's own address on the topology).
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from contracts_config.anvil import check_bind_address, port_is_free, start_anvil, url_host
from common import accounts
from common.accounts import claimer_address, claimer_key
from contracts_config.deploy import ANVIL_KEY_0, CONSENSUS_KINDS, deploy
from contracts_config.deployment import Deployment, default_path, save
from contracts_config.transactions import connect, send_transaction
from common.errors import ConfigError
from dapp.market import Market
from rollups_node.config import CLAIMER_KEY_ENV, OWNER_KEY_ENV, ChainDeployConfig, ChainUpConfig, member_role

STATE_FILE = "chain.json"
NODE_COMMAND = [sys.executable, "-m", "fedrollup", "node"]  # the node in the foreground (`fedrollup node`)
OTHER_MEMBERS_NICENESS = 10
CLAIM_KEY_FUNDING = 10 ** 18  # wei per member claim key on the dev chain (a vote costs < 0.2 M gas)


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


def _start_node(deployment_path: Path, folder: Path, host: str, port: int, key: str,
                backend_command: str | None, niceness: int = 0) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "node.sqlite"
    for stale in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
        stale.unlink(missing_ok=True)  # a fresh chain starts a fresh node database
    command = [*NODE_COMMAND, "--deployment", str(deployment_path), "--db", str(database),
               "--host", host, "--port", str(port), "--backend-log", str(folder / "backend.log")]
    if backend_command:
        command += ["--backend-command", backend_command]
    with open(folder / "node.log", "ab") as out:  # the key travels by environment, never on the command line
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **{CLAIMER_KEY_ENV: key, OWNER_KEY_ENV: key}),
                                start_new_session=True, preexec_fn=(lambda: os.nice(niceness)) if niceness else None)


def _member_folder(run_dir: Path, member: int) -> Path:
    return run_dir if member == 1 else run_dir / f"member-{member}"


def _deploy_local(config: ChainUpConfig, rpc_url: str, key: str) -> Deployment:
    if config.consensus not in CONSENSUS_KINDS:
        raise ConfigError(f"unknown consensus {config.consensus!r}: choose one of {', '.join(CONSENSUS_KINDS)}")
    if config.consensus == "authority":
        print("deploying InputBox, EtherPortal, Authority and Application (@cartesi/rollups 2.2.0)", flush=True)
        return deploy(rpc_url, key, name=config.name, epoch_length=config.epoch_length,
                      template_hash=config.template_hash)
    print(f"deploying InputBox, EtherPortal, QuorumFactory, a Quorum of {config.members} members and Application "
          "(@cartesi/rollups 2.2.0); the Application renounces its owner", flush=True)
    w3 = connect(rpc_url)
    members = [claimer_address(i) for i in range(1, config.members + 1)]
    for address in members:  # each member votes from its own claim key, funded from the deployer's
        if w3.eth.get_balance(address) < CLAIM_KEY_FUNDING // 2:
            send_transaction(w3, key, {"to": address, "value": CLAIM_KEY_FUNDING})
    roles = [accounts.address(accounts.MANAGER_INDEX)] + [accounts.address(accounts.validator_index(g))
                                                          for g in range(config.members - 1)]
    return deploy(rpc_url, key, name=config.name, epoch_length=config.epoch_length, template_hash=config.template_hash,
                  consensus="quorum", members=members, member_accounts=roles,
                  member_roles=[member_role(i) for i in range(1, config.members + 1)])


def with_market(deployment: Deployment, broker: str | None, fee_bps: int) -> Deployment:
    """The deployment with the market's terms its backend runs with for good (no broker: no fee)."""
    try:
        market = Market.of(broker, fee_bps)
    except ValueError as err:
        raise ConfigError(f"--broker/--broker-fee-bps: {err}") from None
    return dataclasses.replace(deployment, broker=market.broker, broker_fee_bps=market.fee_bps)


def chain_up(config: ChainUpConfig) -> int:
    run_dir = config.run_dir
    state = _read_state(run_dir)
    if state and (_alive(state.get("anvil_pid")) or any(_alive(n.get("pid")) for n in _nodes(state))):
        raise ConfigError(f"a chain is already running from {run_dir} (run `fedrollup chain down` first)")
    if config.consensus == "quorum" and config.members < 1:
        raise ConfigError("a Quorum needs at least one member (--members)")
    if config.nodes not in ("local", "none"):
        raise ConfigError(f"--nodes is 'local' or 'none', not {config.nodes!r}")
    if config.consensus == "quorum" and config.members % 2 == 0:
        print(f"note: {config.members} members tolerate no more faults than {config.members - 1}", flush=True)
    host = config.host
    check_bind_address(host)
    node_count = 0 if config.nodes == "none" else config.members if config.consensus == "quorum" else 1
    ports = [(config.l1_port, "--l1-port")] + [(config.node_port + i, "--node-port") for i in range(node_count)]
    for port, what in ports:
        if not port_is_free(port, host):
            raise ConfigError(f"port {port} is already in use on {host} (choose another {what})")
    run_dir.mkdir(parents=True, exist_ok=True)
    key = os.environ.get(OWNER_KEY_ENV) or ANVIL_KEY_0
    anvil_log = run_dir / "anvil.log"
    where = f"every address (0.0.0.0), port {config.l1_port}" if host == "0.0.0.0" else f"{host}:{config.l1_port}"
    print(f"starting anvil on {where} (a block every {config.block_time:g} s)", flush=True)
    anvil = start_anvil(config.l1_port, block_time=config.block_time, log_path=anvil_log, host=host)
    processes: list[subprocess.Popen] = []
    try:
        rpc_url = f"http://{url_host(host)}:{config.l1_port}"
        deployment = with_market(_deploy_local(config, rpc_url, key), config.broker, config.broker_fee_bps)
        deployment_path = save(deployment, config.deployment_file or default_path(config.name))
        nodes = []
        for member in range(1, node_count + 1):
            folder = _member_folder(run_dir, member)
            member_key = claimer_key(member) if deployment.is_quorum else key
            # On one machine the other members' nodes yield the CPU to the manager's (which the roles read) and to
            # the FL run: a majority settles all the same, a little later; in a deployment each has its own machine.
            processes.append(_start_node(deployment_path, folder, host, config.node_port + member - 1, member_key,
                                         config.backend_command, niceness=OTHER_MEMBERS_NICENESS if member > 1 else 0))
            url = f"http://{url_host(host)}:{config.node_port + member - 1}"
            nodes.append({"member": member, "role": member_role(member) if deployment.is_quorum else "authority",
                          "address": claimer_address(member) if deployment.is_quorum else deployment.owner,
                          "pid": processes[-1].pid, "url": url, "database": str(folder / "node.sqlite"),
                          "log": str(folder / "node.log")})
        if nodes:
            print(f"starting {len(nodes)} node{'s' if len(nodes) > 1 else ''} and their backends; waiting until "
                  "each backend asks for its first input", flush=True)
        for process, node in zip(processes, nodes):
            _wait_healthy(node["url"], process, Path(node["log"]), timeout=180)
    except BaseException:
        for process in processes:
            _stop(process.pid, "node")
        _stop(anvil.pid, "anvil")
        raise
    first = nodes[0] if nodes else {"pid": None, "url": "", "database": ""}
    state = {"anvil_pid": anvil.pid, "node_pid": first["pid"], "host": host, "l1_rpc_url": rpc_url,
             "node_url": first["url"], "rpc_url": first["url"] + "/rpc" if nodes else "",
             "inspect_url": f"{first['url']}/inspect/{deployment.application_name}" if nodes else "",
             "deployment": str(deployment_path), "database": first["database"], "log_dir": str(run_dir),
             "block_time": config.block_time, "epoch_length": config.epoch_length,
             "consensus_type": deployment.consensus_type, "nodes": nodes}
    (run_dir / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
    print(f"fedrollup chain is up (chain id {deployment.chain_id}, block every {config.block_time:g} s, "
          f"epoch of {deployment.epoch_length} blocks, {deployment.consensus_type.lower()} consensus)")
    for name, address in deployment.contracts.items():
        print(f"  {name:<13} {address}")
    print(f"  L1 RPC        {rpc_url}")
    for node in nodes:
        print(f"  node {node['member']} /rpc  {node['url']}/rpc  ({node['role']}, claims from {node['address']})")
    if nodes:
        print(f"  inspect       {state['inspect_url']}  (POST, raw body)")
    else:
        print("  no node started (--nodes none): each member runs `fedrollup node --key <its claim key>`")
    if deployment.broker:
        print(f"  broker        {deployment.broker} takes {deployment.broker_fee_bps} bps of each task's budget")
    print(f"  deployment    {deployment_path}")
    print(f"  logs          {run_dir}/ (anvil.log; node.log and backend.log per node"
          f"{', member-i/ for member i > 1' if len(nodes) > 1 else ''})")
    if host == "0.0.0.0":
        print("  anvil and the nodes listen on every address of this machine; the URLs above use loopback")
    return 0


def _nodes(state: dict) -> list[dict]:
    """The nodes a state file records (files written before the Quorum have one, at the top level)."""
    if "nodes" in state:
        return state["nodes"]
    return [{"member": 1, "pid": state.get("node_pid"), "url": state.get("node_url", ""),
                                   "role": "authority"}]


def chain_down(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if not state:
        print(f"no chain recorded in {run_dir}; nothing to stop")
        return 0
    for node in _nodes(state):
        _stop(node.get("pid"), f"node {node.get('member', 1)}")  # a node stops its backend
    _stop(state.get("anvil_pid"), "anvil")
    (run_dir / STATE_FILE).unlink(missing_ok=True)
    print(f"fedrollup chain stopped (logs kept in {run_dir})")
    return 0


def chain_status(run_dir: Path) -> int:
    state = _read_state(run_dir)
    if not state:
        print(f"no chain recorded in {run_dir}")
        return 1
    anvil_up = _alive(state.get("anvil_pid"))
    print(f"anvil  {'running' if anvil_up else 'stopped'} (pid {state['anvil_pid']}) at {state['l1_rpc_url']}")
    all_healthy = True
    for node in _nodes(state):
        up, healthy = _alive(node.get("pid")), False
        if up:
            try:
                healthy = requests.get(node["url"] + "/livez", timeout=2).status_code == 200
            except requests.RequestException:
                pass
        all_healthy &= healthy
        print(f"node {node.get('member', 1)} ({node.get('role', 'authority')}) "
              f"{'healthy' if healthy else 'running, not healthy' if up else 'stopped'} (pid {node.get('pid')}): "
              f"{node['url']}/rpc")
    if state.get("host") == "0.0.0.0":
        print("anvil and the nodes listen on every address of this machine (the URLs use loopback)")
    print(f"{state.get('consensus_type', 'AUTHORITY').lower()} consensus; deployment {state['deployment']}; "
          f"logs in {state['log_dir']}")
    return 0 if anvil_up and all_healthy else 1


def chain_deploy(config: ChainDeployConfig) -> int:
    if not config.key:
        raise ConfigError(f"pass --key (a funded private key) or set {OWNER_KEY_ENV}")
    if config.consensus == "quorum" and not config.member:
        raise ConfigError("a Quorum needs its members: pass --member ADDRESS once per member, in ID order")
    deployment = deploy(config.rpc, config.key, name=config.name, epoch_length=config.epoch_length,
                        template_hash=config.template_hash, consensus=config.consensus,
                        members=list(config.member) or None)
    deployment = with_market(deployment, config.broker, config.broker_fee_bps)
    path = save(deployment, config.out)
    for name, address in deployment.contracts.items():
        print(f"{name:<12} {address}")
    print(f"deployment written to {path}")
    return 0
