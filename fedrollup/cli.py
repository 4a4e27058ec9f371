"""The `fedrollup` command line: one entry point, one subcommand per job.

Each subsystem exposes `add_parser(subparsers)` in a light module (no TensorFlow or web3 import at
parse time, so `--help` stays instant) and sets `func` on its parser; `func(args)` returns an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from common.errors import FedrollupError

# Modules that contribute subcommands, in the order `fedrollup --help` lists them.
SUBCOMMAND_MODULES = [
    "fedrollup.demo",
    "flower_sim.cli",
    "rollups_node.cli",
    "dapp.cli",
    "frontend_console.cli",
    "topology.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedrollup",
        description="Federated learning with MAD validators, recorded and enforced on a Cartesi rollup.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def quiet_third_parties() -> None:
    """Keep Flower offline and TensorFlow's C++ logging out of the researcher's terminal."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not sys.stdout.isatty():  # logs and pipes: wide enough for the round tables (rich reads COLUMNS)
        os.environ.setdefault("COLUMNS", "160")


def dispatch(args: argparse.Namespace, prog: str) -> int:
    """Run the parsed command: a FedrollupError becomes one line on stderr and exit code 2."""
    try:
        return int(args.func(args) or 0)
    except FedrollupError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    quiet_third_parties()
    args = build_parser().parse_args(argv)
    return dispatch(args, f"fedrollup {args.command}")

if __name__ == "__main__":
    sys.exit(main())
