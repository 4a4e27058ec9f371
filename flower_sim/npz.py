"""Model weights as `.npz` files (the paper's per-round record) and the SHA-256 digest the chain records.

Digests are raw bytes inside a process; they become hex only where they leave it (metrics.json, JSON over HTTP).

Arrays are stored as `arr_0 … arr_N` in Keras `get_weights()` order. `np.savez` writes zip entries with a
fixed timestamp, so the same weights always give the same bytes and the same digest.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def save_weights(path: Path, weights: list[np.ndarray]) -> bytes:
    """Write `weights` to `path` and return the file's SHA-256 digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, *weights)
    return hashlib.sha256(path.read_bytes()).digest()


def load_weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]
