"""`fedrollup chain up|down|status|deploy|replay`: the local rollup stack from the command line."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from fedrollup.cli.args import config_from
from contracts_config.deployment import DEFAULT_NAME
from rollups_node.config import (DEFAULT_BROKER_FEE_BPS, DEFAULT_EPOCH_LENGTH, DEFAULT_RUN_DIR, OWNER_KEY_ENV,
                                 ZERO_TEMPLATE_HASH, ChainDeployConfig, ChainUpConfig, backend_command)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    d = ChainUpConfig()
    chain = subparsers.add_parser("chain", help="the local rollup stack: anvil L1, Cartesi contracts, node, backend",
                                  description="Start, stop, inspect or deploy the local Cartesi Rollups v2 stack.")
    actions = chain.add_subparsers(dest="chain_command", metavar="ACTION")
    actions.required = True

    up = actions.add_parser("up", help="start anvil, deploy the contracts, start the node and the backend")
    _add_run_dir(up)
    up.add_argument("--host", default=d.host, metavar="ADDRESS",
                    help="the address anvil and the node's /rpc and /inspect listen on (default 127.0.0.1; "
                         "0.0.0.0: every address)")
    up.add_argument("--l1-port", type=int, default=d.l1_port, help="anvil's port on --host (default 8545)")
    up.add_argument("--block-time", type=float, default=d.block_time, help="seconds per L1 block (default 1)")
    up.add_argument("--node-port", type=int, default=d.node_port,
                    help="the node's /rpc and /inspect port (default 6751)")
    _add_contract_options(up)
    up.add_argument("--backend-command", default=d.backend_command,
                    help="the backend the node runs (default: this Python's `-m dapp`)")
    up.add_argument("--deployment-file", type=Path, default=d.deployment_file,
                    help="where to write the deployment (default contracts-config/deployments/<name>.json)")
    up.add_argument("--consensus", choices=("quorum", "authority"), default=d.consensus,
                    help="quorum (default): a majority of --members settles each epoch, each member with its own "
                         "node and claim key; authority: one key settles alone (one-party dev runs)")
    up.add_argument("--members", type=int, default=d.members,
                    help=f"Quorum members: the manager, then one per validator (default {d.members})")
    up.add_argument("--nodes", choices=("local", "none"), default=d.nodes,
                    help="local (default): start every member's node here; none: deploy only")
    up.set_defaults(func=_up)

    down = actions.add_parser("down", help="stop the node, the backend and anvil")
    _add_run_dir(down)
    down.set_defaults(func=_down)

    status = actions.add_parser("status", help="say what runs and where")
    _add_run_dir(status)
    status.set_defaults(func=_status)

    deploy = actions.add_parser("deploy", help="deploy the contracts to a running chain and write the deployment file")
    deploy.add_argument("--rpc", required=True, help="the L1 JSON-RPC URL")
    deploy.add_argument("--key", default=os.environ.get(OWNER_KEY_ENV),
                        help=f"a funded private key, the owner of Authority and Application (env {OWNER_KEY_ENV})")
    _add_contract_options(deploy)
    deploy.add_argument("--consensus", choices=("quorum", "authority"), default="authority",
                        help="authority (default: --key's account settles) or quorum (the --member addresses)")
    deploy.add_argument("--member", action="append", default=[], metavar="ADDRESS",
                        help="a Quorum member's claim address, once per member in ID order (--consensus quorum)")
    deploy.add_argument("--out", type=Path, default=None, help="deployment file (default deployments/<name>.json)")
    deploy.set_defaults(func=_deploy)

    replay = actions.add_parser("replay", help="replay a node database's inputs through a backend and compare "
                                               "every status, output and report byte for byte")
    replay.add_argument("--db", type=Path, required=True,
                        help="the recorded node database, e.g. runs/<demo run>/chain/node.sqlite (only read)")
    replay.add_argument("--backend-command", default=None,
                        help="the backend to replay through (default: this Python's `-m dapp`)")
    replay.add_argument("--work-dir", type=Path, default=None,
                        help="where the replay's database and the backend's log go (default: a temporary folder)")
    replay.add_argument("--deployment", type=Path, default=None,
                        help="the recorded run's deployment file, whose market (broker and fee) the backend replays "
                             "with, e.g. runs/<demo run>/chain/deployment.json (default: none, no broker's fee)")
    replay.add_argument("--ready-timeout", type=float, default=600.0,
                        help="seconds the backend may take to ask for its first input (default 600: emulation)")
    replay.set_defaults(func=_replay)


def _add_run_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR,
                        help=f"where pids, logs and the node database live (default {DEFAULT_RUN_DIR})")


def _add_contract_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker", default=None, metavar="ADDRESS",
                        help="the market's broker: paid --broker-fee-bps of every task's budget by voucher once the "
                             "task starts (fixed for the application's life; default: no broker, no fee)")
    parser.add_argument("--broker-fee-bps", type=int, default=DEFAULT_BROKER_FEE_BPS, metavar="BPS",
                        help=f"the broker's fee in basis points (default {DEFAULT_BROKER_FEE_BPS}: 2 %%)")
    parser.add_argument("--name", default=DEFAULT_NAME,
                        help="deployment name (file contracts-config/deployments/<name>.json)")
    parser.add_argument("--epoch-length", type=int, default=DEFAULT_EPOCH_LENGTH, help="blocks per epoch (default 10)")
    parser.add_argument("--template-hash", default=ZERO_TEMPLATE_HASH,
                        help="the machine template hash recorded in the Application (32 bytes hex)")


def _up(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_up  # heavy: web3

    return chain_up(config_from(ChainUpConfig, args))


def _down(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_down  # heavy: web3

    return chain_down(args.run_dir)


def _status(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_status  # heavy: web3

    return chain_status(args.run_dir)


def _deploy(args: argparse.Namespace) -> int:
    from rollups_node.chain import chain_deploy  # heavy: web3

    args.member = tuple(args.member)
    return chain_deploy(config_from(ChainDeployConfig, args))


def _replay(args: argparse.Namespace) -> int:
    from rollups_node.node import DEFAULT_BACKEND  # heavy: web3
    from rollups_node.replay_run import replay_run  # heavy: eth_abi (through the advancer)

    from contracts_config.deployment import load  # light, but only the replay needs it
    from dapp.market import Market  # heavy: eth_abi, as above

    command = backend_command(args.backend_command) or list(DEFAULT_BACKEND)
    deployment = load(args.deployment) if args.deployment else None
    market = Market.of(deployment.broker or None, deployment.broker_fee_bps) if deployment else Market()
    report = replay_run(args.db, command, work_dir=args.work_dir, ready_timeout=args.ready_timeout,
                        progress=lambda text: print(f"  … {text}", flush=True), backend_env=market.environment())
    for difference in report.differences[:20]:
        print(f"  DIFFERS {difference}")
    print(report.verdict())
    return 0 if report.identical else 1
