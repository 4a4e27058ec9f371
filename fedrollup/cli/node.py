"""`fedrollup node`: the host-mode rollups node in the foreground (what `fedrollup chain up` starts)."""
from __future__ import annotations

import argparse
from pathlib import Path

from fedrollup.cli.args import config_from
from rollups_node.config import CLAIMER_KEY_ENV, CORS_ORIGINS_ENV, OWNER_KEY_ENV, NodeOptions


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    d = NodeOptions()
    parser = subparsers.add_parser("node", help="run the host-mode rollups node in the foreground",
                                   description="Run the host-mode Cartesi Rollups node v2 against a deployment.")
    parser.add_argument("--deployment", type=Path, default=d.deployment,
                        help="deployment file (default $FEDROLLUP_DEPLOYMENT, "
                             "else contracts-config/deployments/local.json)")
    parser.add_argument("--db", type=Path, default=d.db, help="the node's SQLite database")
    parser.add_argument("--key", default=d.key,
                        help=f"the claim key: a Quorum member's (env {CLAIMER_KEY_ENV}) or the Authority owner's "
                             f"(env {OWNER_KEY_ENV}; on the anvil dev chain the first dev account)")
    parser.add_argument("--no-claims", dest="claims", action="store_false",
                        help="reader mode: vote on no epoch, only record what L1 settled (any key, no key)")
    parser.add_argument("--no-late-votes", dest="late_votes", action="store_false",
                        help="a Quorum member does not vote on epochs a majority already settled without it")
    parser.add_argument("--host", default=d.host, help="address to serve /rpc and /inspect on")
    parser.add_argument("--port", type=int, default=d.port, help="port to serve /rpc and /inspect on (default 6751)")
    parser.add_argument("--rpc", default=d.rpc, help="L1 JSON-RPC URL (default: the deployment's)")
    parser.add_argument("--backend-command", default=d.backend_command,
                        help="the backend command (default: this Python's `-m dapp`)")
    parser.add_argument("--rollup-http-port", type=int, default=d.rollup_http_port,
                        help="port of the rollup HTTP API served to the backend (default: any free port)")
    parser.add_argument("--finish-timeout", type=float, default=d.finish_timeout,
                        help="seconds /finish waits before answering 202 (default 10)")
    parser.add_argument("--backend-log", type=Path, default=d.backend_log, help="file for the backend's output")
    parser.add_argument("--cors-origins", default=d.cors_origins,
                        help=f"comma-separated browser origins allowed to call /rpc and /inspect, e.g. "
                             f"http://localhost:5173 (env {CORS_ORIGINS_ENV}; default none)")
    parser.add_argument("--log-level", default=d.log_level, help="DEBUG, INFO or WARNING")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from rollups_node.run import run_node_foreground  # heavy: web3

    return run_node_foreground(config_from(NodeOptions, args))
