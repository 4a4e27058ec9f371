"""`fedrollup demo`: its options, turned into `fedrollup.demo.DemoConfig`."""
from __future__ import annotations

import argparse

from common.errors import ConfigError
from fedrollup import demo
from fedrollup.cli.simulate import add_simulation_options, output_folder, simulation_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="the paper's scenario end to end: chain, node, FL rounds recorded on the rollup, audit",
        description=demo.__doc__.split("\n\n")[1], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_simulation_options(p)
    chain = p.add_argument_group("rollup")
    chain.add_argument("--block-time", type=float, default=1.0, help="seconds per L1 block on the dev chain")
    chain.add_argument("--epoch-length", type=int, default=10, help="L1 blocks per rollup epoch (claims)")
    chain.add_argument("--l1-port", type=int, default=0, help="anvil's port; 0 picks a free one")
    chain.add_argument("--node-port", type=int, default=0, help="the node's /rpc and /inspect port; 0 picks a free one")
    chain.add_argument("--reward", type=float, default=0.001, help="ETH paid per Positive contribution")
    chain.add_argument("--validator-reward", type=float, default=0.005,
                       help="ETH per round to the validator closest to the global model")
    chain.add_argument("--keep-chain", action="store_true",
                       help="leave anvil and the node running afterwards, for the console")
    p.set_defaults(func=run)


def _wei(eth: float, what: str) -> int:
    if eth < 0:
        raise ConfigError(f"{what} must be >= 0 ETH, got {eth}")
    return round(eth * 10**18)


def demo_config(args: argparse.Namespace) -> demo.DemoConfig:
    cfg = simulation_config(args)
    if args.block_time <= 0 or args.epoch_length <= 0:
        raise ConfigError("--block-time and --epoch-length must be positive")
    out = output_folder(args, cfg, kind="demo")
    return demo.DemoConfig(simulation=cfg, out=out, block_time=args.block_time, epoch_length=args.epoch_length,
                           l1_port=args.l1_port, node_port=args.node_port,
                           reward_wei=_wei(args.reward, "--reward"),
                           validator_reward_wei=_wei(args.validator_reward, "--validator-reward"),
                           keep_chain=args.keep_chain)


def run(args: argparse.Namespace) -> int:
    return demo.run_demo(demo_config(args))
