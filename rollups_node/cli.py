"""`fedrollup chain up|down|status|deploy` and `fedrollup node`: the local rollup stack from the command line."""
from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

DEFAULT_RUN_DIR = Path("runs/chain")
OWNER_KEY_ENV = "FEDROLLUP_OWNER_KEY"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    chain = subparsers.add_parser("chain", help="the local rollup stack: anvil L1, Cartesi contracts, node, backend",
                                  description="Start, stop, inspect or deploy the local Cartesi Rollups v2 stack.")
    actions = chain.add_subparsers(dest="chain_command", metavar="ACTION")
    actions.required = True

    up = actions.add_parser("up", help="start anvil, deploy the contracts, start the node and the backend")
    _add_run_dir(up)
    up.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                    help="the address anvil and the node's /rpc and /inspect listen on (default 127.0.0.1; "
                         "0.0.0.0: every address)")
    up.add_argument("--l1-port", type=int, default=8545, help="anvil's port on --host (default 8545)")
    up.add_argument("--block-time", type=float, default=1.0, help="seconds per L1 block (default 1)")
    up.add_argument("--node-port", type=int, default=6751, help="the node's /rpc and /inspect port (default 6751)")
    _add_contract_options(up)
    up.add_argument("--backend-command", default=None,
                    help="the backend the node runs (default: this Python's `-m dapp`)")
    up.add_argument("--deployment-file", type=Path, default=None,
                    help="where to write the deployment (default contracts-config/deployments/<name>.json)")
    up.set_defaults(func=_chain_up)

    down = actions.add_parser("down", help="stop the node, the backend and anvil")
    _add_run_dir(down)
    down.set_defaults(func=_chain_down)

    status = actions.add_parser("status", help="say what runs and where")
    _add_run_dir(status)
    status.set_defaults(func=_chain_status)

    deploy = actions.add_parser("deploy", help="deploy the contracts to a running chain and write the deployment file")
    deploy.add_argument("--rpc", required=True, help="the L1 JSON-RPC URL")
    deploy.add_argument("--key", default=os.environ.get(OWNER_KEY_ENV),
                        help=f"a funded private key, the owner of Authority and Application (env {OWNER_KEY_ENV})")
    _add_contract_options(deploy)
    deploy.add_argument("--out", type=Path, default=None, help="deployment file (default deployments/<name>.json)")
    deploy.set_defaults(func=_chain_deploy)

    node = subparsers.add_parser("node", help="run the host-mode rollups node in the foreground",
                                 description="Run the host-mode Cartesi Rollups node v2 against a deployment.")
    add_node_arguments(node)
    node.set_defaults(func=run_node)


def _add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
                        help=f"where pids, logs and the node database live (default {DEFAULT_RUN_DIR})")


def _add_contract_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="local",
                        help="deployment name (file contracts-config/deployments/<name>.json)")
    parser.add_argument("--epoch-length", type=int, default=10, help="blocks per epoch (default 10)")
    parser.add_argument("--template-hash", default="0x" + "00" * 32,
                        help="the machine template hash recorded in the Application (32 bytes hex)")


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deployment", type=Path, default=None,
                        help="deployment file (default $FEDROLLUP_DEPLOYMENT, "
                             "else contracts-config/deployments/local.json)")
    parser.add_argument("--db", type=Path, default=DEFAULT_RUN_DIR / "node.sqlite", help="the node's SQLite database")
    parser.add_argument("--key", default=None,
                        help=f"the Authority owner's private key, for claims (env {OWNER_KEY_ENV}; "
                             "on the anvil dev chain the first dev account)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve /rpc and /inspect on")
    parser.add_argument("--port", type=int, default=6751, help="port to serve /rpc and /inspect on (default 6751)")
    parser.add_argument("--rpc", default=None, help="L1 JSON-RPC URL (default: the deployment's)")
    parser.add_argument("--backend-command", default=None,
                        help="the backend command (default: this Python's `-m dapp`)")
    parser.add_argument("--rollup-http-port", type=int, default=0,
                        help="port of the rollup HTTP API served to the backend (default: any free port)")
    parser.add_argument("--finish-timeout", type=float, default=10.0,
                        help="seconds /finish waits before answering 202 (default 10)")
    parser.add_argument("--backend-log", type=Path, default=None, help="file for the backend's output")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO or WARNING")


def backend_command(text: str | None) -> list[str] | None:
    return shlex.split(text) if text else None


def run_node(args: argparse.Namespace) -> int:
    from rollups_node.run import run_node_foreground
    return run_node_foreground(args)


def _chain_up(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_up
    return chain_up(args)


def _chain_down(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_down
    return chain_down(args.run_dir)


def _chain_status(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_status
    return chain_status(args.run_dir)


def _chain_deploy(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_deploy
    return chain_deploy(args)
