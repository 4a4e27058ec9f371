"""What the three role commands (`fedrollup manager`, `validator`, `trainer`) share: the role accounts' mnemonic."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from common.accounts import MNEMONIC_ENV
from common.errors import ConfigError

MNEMONIC_WORDS = (12, 15, 18, 21, 24)


def add_mnemonic_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mnemonic-file", type=Path, default=None, metavar="FILE",
                   help=f"file holding the BIP-39 mnemonic the run's role accounts derive from (never on the "
                        f"command line, where `ps` shows it); none: ${MNEMONIC_ENV}, else the dev chain's")


def set_mnemonic(args: argparse.Namespace) -> None:
    """Put the mnemonic of --mnemonic-file where `common.accounts` reads it, for this process and its children
    (the ServerApp signs receipts, the ClientApps sign updates, the manager sends inputs)."""
    if args.mnemonic_file is None:
        return
    try:
        words = args.mnemonic_file.read_text().split()
    except OSError as err:
        raise ConfigError(f"--mnemonic-file {args.mnemonic_file}: {err.strerror}") from None
    if len(words) not in MNEMONIC_WORDS:
        raise ConfigError(f"--mnemonic-file {args.mnemonic_file}: a BIP-39 mnemonic has 12 to 24 words, "
                          f"not {len(words)}")
    os.environ[MNEMONIC_ENV] = " ".join(words)
