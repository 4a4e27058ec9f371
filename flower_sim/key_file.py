"""A role's own rollup key on disk (issue 16): one 0x-hex secp256k1 private key in a file only its owner reads.

A validator (`fedrollup validator keygen --out`, `--key-file`) and a trainer (`fedrollup trainer rollup-keygen --out`,
`--rollup-key-file`) each keep theirs on their own machine: `write_key_file` makes a fresh one (mode 0600, never over
an existing file) and says its address, which is all the manager is given; `read_key_file` refuses, in one line
naming the option, a file others may read or that holds anything but one key.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from common.errors import ConfigError
from rollups_client.l1 import L1

KEY_PATTERN = re.compile(r"0x[0-9a-fA-F]{64}")


def read_key_file(path: Path, option: str = "--key-file", owner: str = "the validator's") -> str:
    """The private key in ``path``; ConfigError (one line, ``option`` named) unless the file is its owner's only and
    holds one key."""
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text().strip()
    except OSError as err:
        raise ConfigError(f"{option} {path}: {err.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{option} {path}: mode {mode:04o} lets others read {owner} key; `chmod 600 {path}`")
    if not KEY_PATTERN.fullmatch(text):
        raise ConfigError(f"{option} {path}: not one 0x-hex private key (0x and 64 hex digits)")
    return text


def write_key_file(path: Path, key: str | None = None) -> str:
    """Write ``key`` (default: a fresh random one) to ``path``, mode 0600, never over an existing file; its
    address."""
    key = key or "0x" + secrets.token_hex(32)
    address = L1.address(key)  # a key outside the curve's order raises here, before anything is written
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise ConfigError(f"--out {path}: {err.strerror}") from None
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return address
