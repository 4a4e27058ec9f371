"""The chain host and the Quorum members' nodes on the emulated network.

The chain host runs `fedrollup chain up --host <its emulated address> --nodes none` in its own namespace: anvil
and the Cartesi contracts, with a Quorum whose members are the manager and the validators. Each member then
runs its own rollups node and backend on its own host (`fedrollup node --key <its claim key> --host <its
address>`): the manager's on `mgr`, validator g's on its validator host, each reading L1 across the emulated
links and voting from its own key. Other hosts reach L1 at http://<chain ip>:8545 and a member's node at
http://<member ip>:6751; the roles and the audit use the manager's node. The deployment file `chain up` writes
already names the L1 URL every host can reach.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from common.accounts import claimer_key
from rollups_node.config import CLAIMER_KEY_ENV
from topology.processes import VENV_BIN, HostProcess, HostProcesses, wait_until

L1_PORT = 8545
NODE_PORT = 6751


@dataclass(frozen=True)
class ChainEndpoints:
    """Where the other hosts reach the chain host's services."""

    host: str
    l1_rpc_url: str
    node_url: str
    deployment: Path          # deployment file; its rpc_url is on the chain host's address
    run_dir: Path             # `fedrollup chain` state and logs (anvil.log); each node's in its member's host dir
    members: tuple[tuple[str, str], ...] = ()  # (host, node URL) of Quorum members 1..n: the manager's first


def member_hosts(topo) -> list[str]:
    """The hosts of Quorum members 1..n: the manager, then the validators by group."""
    return ["mgr"] + [v.name for v in sorted(topo.validators, key=lambda v: v.group)]


def start_chain(processes: HostProcesses, host: str = "chain", block_time_s: float = 1.0,
                timeout_s: float = 240.0) -> ChainEndpoints:
    """Bring L1 and the contracts up on `host`, then every Quorum member's node on its own host."""
    topo = processes.network.topo
    address = topo.address(host)
    folder = processes.host_dir(host) / "chain"
    deployment = folder / "deployment.json"
    fedrollup = str(VENV_BIN / "fedrollup")
    members = member_hosts(topo)
    processes.network.on_stop(lambda: processes.run(host, "chain-down", [fedrollup, "chain", "down", "--run-dir",
                                                                         str(folder)], timeout_s=60))
    processes.run(host, "chain-up", [fedrollup, "chain", "up", "--host", address, "--run-dir", str(folder),
                                     "--deployment-file", str(deployment), "--block-time", f"{block_time_s:g}",
                                     "--l1-port", str(L1_PORT), "--node-port", str(NODE_PORT), "--nodes", "none",
                                     "--members", str(len(members))], timeout_s)
    rpc_url = json.loads(deployment.read_text())["rpc_url"]
    nodes = [(member_host, start_member_node(processes, member_host, member, deployment))
             for member, member_host in enumerate(members, 1)]
    urls = []
    for member_host, process in nodes:
        url = f"http://{topo.address(member_host)}:{NODE_PORT}"
        wait_until(lambda: node_answers(processes, member_host, url), timeout_s,
                   f"the rollups node of {member_host} to become healthy", process=process, interval_s=1.0)
        urls.append((member_host, url))
    return ChainEndpoints(host, rpc_url, urls[0][1], deployment, folder, tuple(urls))


def start_member_node(processes: HostProcesses, host: str, member: int, deployment: Path) -> HostProcess:
    """Quorum member `member`'s node and backend on `host`, listening on the host's address, voting with its
    claim key (given by environment, never on the command line)."""
    folder = processes.host_dir(host) / "node"
    folder.mkdir(parents=True, exist_ok=True)
    argv = [str(VENV_BIN / "fedrollup"), "node", "--deployment", str(deployment), "--db", str(folder / "node.sqlite"),
            "--host", processes.network.topo.address(host), "--port", str(NODE_PORT),
            "--backend-log", str(folder / "backend.log")]
    return processes.start(host, "rollups-node", argv, env={CLAIMER_KEY_ENV: claimer_key(member)})


def node_answers(processes: HostProcesses, host: str, url: str) -> bool:
    """GET <url>/livez from `host` answers 200 (a probe process in that host's namespace)."""
    code = ("import requests, sys\ntry: print(requests.get(sys.argv[1] + '/livez', timeout=5).status_code)\n"
            "except requests.RequestException: print(0)")
    probe = processes.run(host, "node-probe", [sys.executable, "-c", code, url], timeout_s=30)
    return probe.log_tail(1).strip() == "200"


def chain_id_from(processes: HostProcesses, host: str, endpoints: ChainEndpoints, timeout_s: float = 30.0) -> int:
    """Ask L1 for its chain id from another host (JSON-RPC eth_chainId across the emulated links)."""
    code = ("import requests, sys; r = requests.post(sys.argv[1], json={'jsonrpc': '2.0', 'id': 1, "
            "'method': 'eth_chainId', 'params': []}, timeout=10); print(int(r.json()['result'], 16))")
    probe = processes.run(host, "l1-probe", [sys.executable, "-c", code, endpoints.l1_rpc_url], timeout_s)
    return int(probe.log_tail(1).strip())


def node_alive_from(processes: HostProcesses, host: str, endpoints: ChainEndpoints) -> bool:
    """The manager's rollups node answers /livez from another host."""
    return node_answers(processes, host, endpoints.node_url)
