"""What every entry point does around a parsed command: quiet third parties, one-line errors, exit codes."""
from __future__ import annotations

import argparse
import os
import sys

from common.errors import FedrollupError


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
