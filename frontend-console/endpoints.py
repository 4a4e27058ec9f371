"""Where the console talks to: the L1 RPC, the rollups node, the application — defaults from local files.

Defaults, in order: the command-line option, the environment, the local deployment file written by
`fedrollup chain up` (`contracts-config/deployments/local.json`) and the chain's run folder
(`runs/chain/chain.json`), then the Cartesi CLI's conventional node URL. Against a real Cartesi node, give
`--node http://127.0.0.1:6751 --app <address> --rpc <L1 URL>` (or a deployment file).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from contracts_config import deployment as deployments

DEFAULT_NODE_URL = "http://127.0.0.1:6751"  # the Cartesi CLI's proxy port, also `fedrollup chain up`'s
CHAIN_STATE = Path("runs/chain/chain.json")
NODE_ENV, RPC_ENV, APP_ENV = "FEDROLLUP_NODE_URL", "FEDROLLUP_RPC_URL", "FEDROLLUP_APP"


@dataclass(frozen=True)
class Endpoints:
    node_url: str  # base URL: <node_url>/rpc and <node_url>/inspect/<app>
    rpc_url: str | None  # the L1 JSON-RPC URL
    app: str  # the application's address (or name, for the node only)
    deployment_path: str | None  # the deployment file these came from, if any


def _chain_state_node_url() -> str | None:
    try:
        return json.loads(CHAIN_STATE.read_text()).get("node_url")
    except (OSError, ValueError):
        return None


def resolve(node: str | None, rpc: str | None, app: str | None, deployment: str | None):
    """Fill the endpoints from options, environment and local files; returns (Endpoints, Deployment|None)."""
    dep = None
    try:
        dep = deployments.load(deployment)
    except ConfigError:
        if deployment:  # a file the user named must exist
            raise
    node_url = node or os.environ.get(NODE_ENV) or _chain_state_node_url() or DEFAULT_NODE_URL
    rpc_url = rpc or os.environ.get(RPC_ENV) or (dep.rpc_url if dep else None)
    app_id = app or os.environ.get(APP_ENV) or (dep.application if dep else None)
    if not app_id:
        raise ConfigError("no application: pass --app ADDRESS (or run `fedrollup chain up` for a local deployment)")
    path = str(deployment or os.environ.get(deployments.ENV_DEPLOYMENT) or deployments.default_path()) if dep else None
    return Endpoints(node_url=node_url, rpc_url=rpc_url, app=app_id, deployment_path=path), dep
