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


def add_own_key_options(p: argparse.ArgumentParser, title: str, option: str, key_help: str):
    """The options of a role that sends its own rollup inputs (issue 16): its key file (``option``), the deployment
    file, its rollups node and L1's URL; the group, for more."""
    own = p.add_argument_group(title)
    own.add_argument(option, type=Path, default=None, metavar="FILE", help=key_help)
    own.add_argument("--deployment", type=Path, default=None, metavar="FILE", help="the rollup's deployment file")
    own.add_argument("--node", default="", metavar="URL", help="the rollups node, e.g. http://10.0.0.3:6751")
    own.add_argument("--rpc", default="", metavar="URL", help="L1's JSON-RPC URL; empty: the deployment file's")
    return own


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
