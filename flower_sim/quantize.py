"""Keras float weights to the rollup's int8 models (FRQ1, `dapp.qmodel`) and back (host only).

Weights are symmetric int8, per output channel for every layer but the last, per tensor for the last (the logits
share one unit): S = ceil(max|W_c| / 127 * 2**32), clipped to 2**32 - 1 (larger weights saturate at +-127),
q = W * 2**32 / S rounded half away from zero; biases B = round(b * 2**24) clipped to int32. Then
|W - dequantize(q)| <= S / 2**33 (half a step) for weights within range, and |b - B / 2**24| <= 2**-25.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dapp.qmodel import (ARCHS, B_MAX, B_MIN, BIAS_BITS, Q_MAX, S_MAX, SCALE_BITS, Arch, QLayer, QModel,
                         QModelError, decode, digest, encode)


def arch_of(weights: list[np.ndarray]) -> Arch:
    """The architecture whose kernel and bias shapes `weights` (Keras order) have."""
    shapes = [tuple(w.shape) for w in weights]
    for arch in ARCHS.values():
        if shapes == [s for layer in arch.layers for s in (layer.kernel, (layer.cout,))]:
            return arch
    raise QModelError(f"no architecture has the weight shapes {shapes}")


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize(weights: list[np.ndarray]) -> QModel:
    """The int8 model of Keras float `weights` (as `model.get_weights()` or a run's `.npz` give them)."""
    arch = arch_of(weights)
    if not all(np.isfinite(w).all() for w in weights):
        raise QModelError("weights must be finite")
    layers = []
    for shape, kernel, bias in zip(arch.layers, weights[0::2], weights[1::2]):
        w = np.asarray(kernel, dtype=np.float64).reshape(-1, shape.cout)
        peak = np.abs(w).max(keepdims=True) if shape.per_tensor else np.abs(w).max(axis=0)
        scales = np.minimum(np.ceil(peak.reshape(-1) / Q_MAX * 2.0**SCALE_BITS), S_MAX)
        q = np.clip(_round_half_away(w * 2.0**SCALE_BITS / np.maximum(scales, 1.0)), -Q_MAX, Q_MAX)
        biases = np.clip(_round_half_away(np.asarray(bias, dtype=np.float64) * 2.0**BIAS_BITS), B_MIN, B_MAX)
        layers.append(QLayer(shape.kind, q.astype(np.int64).reshape(shape.kernel),
                             tuple(int(s) for s in scales), tuple(int(b) for b in biases), shape.relu))
    return QModel(arch.id, tuple(layers))


def to_frq1(weights: list[np.ndarray]) -> bytes:
    """The FRQ1 bytes of Keras float `weights`."""
    return encode(quantize(weights))


def dequantize(model: QModel) -> list[np.ndarray]:
    """Float32 Keras weights (kernel, bias per layer) that `model` stands for."""
    out: list[np.ndarray] = []
    for layer in model.layers:
        scales = np.array(layer.scales, dtype=np.float64) / 2.0**SCALE_BITS
        out.append((layer.q * scales).astype(np.float32))
        out.append((np.array(layer.biases, dtype=np.float64) / 2.0**BIAS_BITS).astype(np.float32))
    return out


def from_frq1(data: bytes) -> list[np.ndarray]:
    """Float32 Keras weights of FRQ1 bytes: what a round trains from when the rollup's global is those bytes."""
    return dequantize(decode(data))


def save_frq1(path: Path, data: bytes) -> bytes:
    """Write a model's FRQ1 bytes to `path` (a run folder's `round-NNN*.frq`); returns their digest (keccak256),
    the one the rollup records for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest(data)
