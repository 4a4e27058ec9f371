"""The local rollup stack (anvil, the official contracts, the node and the backend) as a context manager,
for jobs that bring their own: `fedrollup demo`, the end-to-end benchmark, tests.

It starts the stack with `fedrollup chain up`'s own code on free loopback ports and stops every process on
exit, on Ctrl-C and on failure (unless asked to keep it).
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from contracts_config.anvil import free_port
from contracts_config.deployment import load
from rollups_node.config import ChainUpConfig


@dataclass(frozen=True)
class Stack:
    run_dir: Path
    deployment: object  # contracts_config.deployment.Deployment
    node: object  # rollups_client.node.NodeClient
    node_url: str

    @property
    def deployment_path(self) -> Path:
        return self.run_dir / "deployment.json"


@contextlib.contextmanager
def local_stack(run_dir: Path, block_time: float = 1.0, epoch_length: int = 10, l1_port: int = 0,
                node_port: int = 0, keep: bool = False, consensus: str = "authority",
                members: int = 3, broker: str | None = None, broker_fee_bps: int = 0) -> Iterator[Stack]:
    """Under `consensus="quorum"` every member runs its own node (ports from `node_port` up); `Stack.node`
    is member 1's (the manager's). `broker`: the market's, taking `broker_fee_bps` of every task (None: no fee)."""
    from rollups_client.node import NodeClient  # heavy: eth_abi (keeps --help instant)
    from rollups_node.chain import chain_down, chain_up  # heavy: web3

    nodes = members if consensus == "quorum" else 1
    if not l1_port and not node_port:  # one run of free ports: L1, then a node per member
        l1_port = free_port(1 + nodes)
        node_port = l1_port + 1
    chain_up(ChainUpConfig(run_dir=run_dir, host="127.0.0.1", l1_port=l1_port or free_port(),
                           node_port=node_port or free_port(nodes),
                           block_time=block_time, epoch_length=epoch_length,
                           name="stack", deployment_file=run_dir / "deployment.json", consensus=consensus,
                           members=members, broker=broker, broker_fee_bps=broker_fee_bps))
    try:
        deployment = load(run_dir / "deployment.json")
        node_url = json.loads((run_dir / "chain.json").read_text())["node_url"]
        node = NodeClient.at(node_url, deployment.application)
        yield Stack(run_dir, deployment, node, node_url)
    finally:
        if keep:
            print(f"the chain keeps running: `fedrollup chain down --run-dir {run_dir}` stops it; the console reads "
                  f"it with FEDROLLUP_DEPLOYMENT={run_dir}/deployment.json FEDROLLUP_NODE_URL={node_url}")
        else:
            chain_down(run_dir)
