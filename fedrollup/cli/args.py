"""Turning parsed arguments into the domains' typed configs."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


def config_from(cls: type[T], args: argparse.Namespace) -> T:
    """`cls` (a dataclass) built from the parsed arguments of the same names (every field is an option)."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})
