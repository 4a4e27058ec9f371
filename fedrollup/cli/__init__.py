"""The `fedrollup` command line: one entry point, one module per command (`fedrollup.cli.<command>`).

Each command module has `add_parser(subparsers)` (light: no TensorFlow or web3 import at parse time, so
`--help` stays instant), sets `func` on its parser, and turns the parsed arguments into its domain's typed
config; `func(args)` returns an exit code. The domains never see an `argparse.Namespace`.
"""
from __future__ import annotations

import argparse

from fedrollup.cli import chain, console, dapp, demo, manager, node, simulate, topology, trainer, validator
from fedrollup.cli.entry import dispatch, quiet_third_parties

# The command modules, in the order `fedrollup --help` lists them.
COMMANDS = [demo, simulate, manager, validator, trainer, chain, node, dapp, console, topology]

__all__ = ["COMMANDS", "build_parser", "dispatch", "main", "quiet_third_parties"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedrollup",
        description="Federated learning with MAD validators, recorded and enforced on a Cartesi rollup.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_third_parties()
    args = build_parser().parse_args(argv)
    return dispatch(args, f"fedrollup {args.command}")

