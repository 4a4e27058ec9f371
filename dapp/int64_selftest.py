"""A fixed int64 numpy computation and its digest: the same bytes on every target, or the machine is not the host.

The backend's inference (issue 13) must give bit-identical integers on the host (x86-64, PyPI numpy 2.x), the
riscv64 root file system (Debian trixie's numpy) and the Cartesi Machine (Ubuntu jammy's numpy 1.21). This runs
the kinds of operations an integer forward pass uses (a uint8 x int8 product accumulated in int64, bias, clamp,
a fixed-point multiply with a rounding right shift, a 2x2 max-pool, argmax with ties to the lowest index) on
inputs derived from SHA-256, and prints the SHA-256 of the little-endian results:

    python3 -m dapp.int64_selftest

Only numpy 1.21 APIs; every array is explicitly int64 (NEP 50 changed the promotion of small dtypes and Python
scalars between numpy 1.x and 2.x, so nothing here relies on it). `python -m dapp.qnn --selftest` (the
integer forward itself) is meant to take over this role.
"""
from __future__ import annotations

import hashlib

import numpy as np

ROWS, DEPTH, COLS = 64, 800, 64  # one dense layer of the demo CNN (800 -> 64) on a batch of 64 images


def _int64_from_seed(seed: bytes, count: int, low: int, high: int) -> np.ndarray:
    """`count` integers in [low, high], from SHA-256 counter blocks (no numpy random generator: its streams
    are a numpy-version matter)."""
    blocks = b"".join(hashlib.sha256(seed + i.to_bytes(4, "little")).digest() for i in range(-(-count // 32)))
    raw = np.frombuffer(blocks[:count], dtype=np.uint8).astype(np.int64)
    return raw % np.int64(high - low + 1) + np.int64(low)


def compute() -> list[np.ndarray]:
    """The fixed computation's int64 results, in order."""
    x = _int64_from_seed(b"activations", ROWS * DEPTH, 0, 255).reshape(ROWS, DEPTH)
    w = _int64_from_seed(b"weights", DEPTH * COLS, -127, 127).reshape(DEPTH, COLS)
    bias = _int64_from_seed(b"biases", COLS, -127, 127) * np.int64(1 << 12)
    acc = np.clip(x @ w + bias, np.int64(-(1 << 31)), np.int64((1 << 31) - 1))
    m0 = np.int64(1 << 30) + _int64_from_seed(b"multipliers", COLS, 0, 255) * np.int64(1 << 22)
    shift = np.int64(41) + _int64_from_seed(b"shifts", COLS, 0, 3)
    rounded = (np.maximum(acc, np.int64(0)) * m0 + (np.int64(1) << (shift - np.int64(1)))) >> shift
    y = np.clip(rounded, np.int64(0), np.int64(255))
    pooled = y.reshape(ROWS // 2, 2, COLS // 2, 2).max(axis=(1, 3))
    classes = np.argmax(acc, axis=1).astype(np.int64)
    results = [acc, y, pooled, classes]
    for array in results:
        if array.dtype != np.int64:
            raise AssertionError(f"the self-test produced {array.dtype}, not int64")
    return results


def digest() -> str:
    """SHA-256 over every result's shape and little-endian int64 bytes."""
    h = hashlib.sha256()
    for array in compute():
        h.update(repr(array.shape).encode())
        h.update(array.astype("<i8").tobytes())
    return h.hexdigest()


if __name__ == "__main__":
    print(digest())
