"""The chain host: `fedrollup chain up` (anvil, the Cartesi contracts, the rollups node and backend) in its
own namespace, reachable from every other host.

`fedrollup chain up` binds anvil and the node to 127.0.0.1 only (it takes no bind address), which inside a
namespace is the chain host's own loopback. So the chain host also runs two `socat` relays that listen on
its emulated address and forward to its loopback: other hosts reach L1 at http://<chain ip>:8545 and the
node's /rpc and /inspect at http://<chain ip>:6751, across the emulated links. A copy of the deployment
file with the reachable L1 URL is written for the other hosts.
"""
from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from topology.processes import VENV_BIN, HostProcesses, wait_until

L1_PORT = 8545
NODE_PORT = 6751


@dataclass(frozen=True)
class ChainEndpoints:
    """Where the other hosts reach the chain host's services."""

    host: str
    l1_rpc_url: str
    node_url: str
    deployment: Path          # deployment file whose rpc_url is the reachable one
    run_dir: Path             # `fedrollup chain` state and logs (anvil.log, node.log, backend.log)


def start_chain(processes: HostProcesses, host: str = "chain", block_time_s: float = 1.0,
                timeout_s: float = 240.0) -> ChainEndpoints:
    """Bring the rollup stack up on `host`, relay it onto the host's address, and check it from there."""
    if not shutil.which("socat"):
        raise RuntimeError("socat is missing (run `make topology-deps`)")
    network = processes.network
    address = network.topo.address(host)
    folder = processes.host_dir(host) / "chain"
    local_deployment = folder / "deployment.json"
    fedrollup = str(VENV_BIN / "fedrollup")
    network.on_stop(lambda: processes.run(host, "chain-down", [fedrollup, "chain", "down", "--run-dir", str(folder)],
                                          timeout_s=60))
    processes.run(host, "chain-up", [fedrollup, "chain", "up", "--run-dir", str(folder), "--deployment-file",
                                     str(local_deployment), "--block-time", f"{block_time_s:g}",
                                     "--l1-port", str(L1_PORT), "--node-port", str(NODE_PORT)], timeout_s)
    for port in (L1_PORT, NODE_PORT):
        relay = processes.start(host, f"relay-{port}", ["socat", f"TCP-LISTEN:{port},bind={address},fork,reuseaddr",
                                                        f"TCP:127.0.0.1:{port}"])
        wait_until(lambda: network.reachable(host, address, port), 15, f"relay of port {port} on {host}", relay)
    data = json.loads(local_deployment.read_text())
    data["rpc_url"] = f"http://{address}:{L1_PORT}"
    shared = folder / "deployment.topology.json"
    shared.write_text(json.dumps(data, indent=2) + "\n")
    return ChainEndpoints(host, data["rpc_url"], f"http://{address}:{NODE_PORT}", shared, folder)


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
