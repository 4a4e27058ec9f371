"""The riscv64 root file system (`make riscv-rootfs`) for tests that run the backend's own code under QEMU."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTFS = REPO / "build" / "riscv64" / "rootfs"
needs_riscv64 = pytest.mark.skipif(
    not (ROOTFS / ".fedrollup-ready").is_file() or os.geteuid() != 0,
    reason="the riscv64 root file system is built by `make riscv-rootfs` (as root; `make test` as root does it)")


def run_with_dapp(folder: str, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python3 args`` in the root file system, from a folder ``/tmp/<folder>`` holding dapp/ as the Dockerfile
    lays it out (only dapp/*.py: the pinned packages are the root file system's own); the folder is removed
    afterwards."""
    inside = ROOTFS / "tmp" / folder
    (inside / "dapp").mkdir(parents=True)
    try:
        for module in (REPO / "dapp").glob("*.py"):
            (inside / "dapp" / module.name).write_bytes(module.read_bytes())
        return subprocess.run(["chroot", str(ROOTFS), "/usr/bin/env", "-i", "-C", f"/tmp/{folder}",
                               "PYTHONDONTWRITEBYTECODE=1", "/usr/bin/python3", *args],
                              capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(inside)
