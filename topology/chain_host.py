"""The chain host: `fedrollup chain up --host <its emulated address>` (anvil, the Cartesi contracts, the rollups
node and backend) in its own namespace, reachable from every other host.

anvil and the node's /rpc and /inspect listen on the chain host's address on the emulated network, so other
hosts reach L1 at http://<chain ip>:8545 and the node at http://<chain ip>:6751 across the emulated links,
and the deployment file `chain up` writes already names the L1 URL they can reach.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from topology.processes import VENV_BIN, HostProcesses

L1_PORT = 8545
NODE_PORT = 6751


@dataclass(frozen=True)
class ChainEndpoints:
    """Where the other hosts reach the chain host's services."""

    host: str
    l1_rpc_url: str
    node_url: str
    deployment: Path          # deployment file; its rpc_url is on the chain host's address
    run_dir: Path             # `fedrollup chain` state and logs (anvil.log, node.log, backend.log)


def start_chain(processes: HostProcesses, host: str = "chain", block_time_s: float = 1.0,
                timeout_s: float = 240.0) -> ChainEndpoints:
    """Bring the rollup stack up on `host`, listening on the host's emulated address."""
    address = processes.network.topo.address(host)
    folder = processes.host_dir(host) / "chain"
    deployment = folder / "deployment.json"
    fedrollup = str(VENV_BIN / "fedrollup")
    processes.network.on_stop(lambda: processes.run(host, "chain-down", [fedrollup, "chain", "down", "--run-dir",
                                                                         str(folder)], timeout_s=60))
    processes.run(host, "chain-up", [fedrollup, "chain", "up", "--host", address, "--run-dir", str(folder),
                                     "--deployment-file", str(deployment), "--block-time", f"{block_time_s:g}",
                                     "--l1-port", str(L1_PORT), "--node-port", str(NODE_PORT)], timeout_s)
    rpc_url = json.loads(deployment.read_text())["rpc_url"]
    return ChainEndpoints(host, rpc_url, f"http://{address}:{NODE_PORT}", deployment, folder)


def chain_id_from(processes: HostProcesses, host: str, endpoints: ChainEndpoints, timeout_s: float = 30.0) -> int:
    """Ask L1 for its chain id from another host (JSON-RPC eth_chainId across the emulated links)."""
    code = ("import requests, sys; r = requests.post(sys.argv[1], json={'jsonrpc': '2.0', 'id': 1, "
            "'method': 'eth_chainId', 'params': []}, timeout=10); print(int(r.json()['result'], 16))")
    probe = processes.run(host, "l1-probe", [sys.executable, "-c", code, endpoints.l1_rpc_url], timeout_s)
    return int(probe.log_tail(1).strip())


def node_alive_from(processes: HostProcesses, host: str, endpoints: ChainEndpoints, timeout_s: float = 30.0) -> bool:
    """The rollups node answers /livez from another host."""
    code = "import requests, sys; print(requests.get(sys.argv[1] + '/livez', timeout=10).status_code)"
    probe = processes.run(host, "node-probe", [sys.executable, "-c", code, endpoints.node_url], timeout_s)
    return probe.log_tail(1).strip() == "200"
