"""Turning parsed arguments into the domains' typed configs."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import TypeVar

from common.errors import ConfigError
from dapp.schema import MAX_OPEN_ROUNDS

T = TypeVar("T")


def config_from(cls: type[T], args: argparse.Namespace) -> T:
    """`cls` (a dataclass) built from the parsed arguments of the same names (every field is an option)."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


OPEN_ROUNDS_HELP = (f"rounds open on chain at once (the task's openRounds, 1..{MAX_OPEN_ROUNDS}): round r + K reports "
                    "while round r closes, and round r's close elects round r + K's producer (default: what L1's "
                    "block time asks, at least 8, 24 at 12-s blocks, at most rounds - 1)")


def blocks_option(value: int | None, default: int | None, option: str) -> int | None:
    """A number of L1 blocks given on the command line (None: `default`); ConfigError outside uint32."""
    if value is None:
        return default
    if not 1 <= value < 2**32:
        raise ConfigError(f"{option} must be a number of L1 blocks in 1..{2**32 - 1}, got {value}")
    return value


def open_rounds_option(value: int | None) -> int | None:
    """--open-rounds K, checked against the rollup's bound (None: the run sizes it)."""
    if value is not None and not 1 <= value <= MAX_OPEN_ROUNDS:
        raise ConfigError(f"--open-rounds must be in 1..{MAX_OPEN_ROUNDS}, got {value}")
    return value
