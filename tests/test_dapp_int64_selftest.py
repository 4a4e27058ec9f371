"""dapp/int64_selftest.py: its digest is pinned, so a numpy upgrade on the host that changes any integer result
(or a computation that drifts into another dtype) fails here; tests/test_node_replay_run.py compares the same digest
with the riscv64 root file system's."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dapp import int64_selftest

# Printed by `python -m dapp.int64_selftest` with numpy 2.4.6 (x86-64), Debian trixie's 2.2.4 (riscv64, QEMU) and
# Debian bookworm's 1.24.2 (x86-64, numpy 1.x promotion rules).
GOLDEN = "5539283d135df21fb032c93992285ad97fb26502c12893a6d6fc9f656c9f45bc"


def test_the_digest_is_the_golden_one():
    assert int64_selftest.digest() == GOLDEN


def test_the_command_prints_the_digest():
    out = subprocess.run([sys.executable, "-m", "dapp.int64_selftest"], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=60).stdout
    assert out == GOLDEN + "\n"


def test_every_result_is_int64_and_within_its_range():
    acc, activations, pooled, classes = int64_selftest.compute()
    assert {a.dtype.name for a in (acc, activations, pooled, classes)} == {"int64"}
    assert activations.min() == 0 and activations.max() == 255  # both clamps are exercised
    assert pooled.shape == (32, 32) and classes.shape == (64,)
