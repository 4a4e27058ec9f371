"""Quantized models as the rollup sees them: the FRQ1 encoding, the architectures, and the exact integer average.

FRQ1 (one byte string; its keccak256 is the model's digest everywhere)::

    "FRQ1" | arch u8 | nlayers u8 | 0x0000
    then per layer, in Keras order (kernel then bias):
        q int8[kernel elements]   Keras layout: HWIO for a conv kernel, IO for a dense one; -128 never occurs
        S uint32[cout]            one entry per output channel; one entry only for a per-tensor layer (the last)
        B int32[cout]
    all little-endian, nothing after the last layer.

Real weight = q * S / 2**32 (S is a fixed-point scale: weights up to ~127 in magnitude), real bias = B / 2**24
(Q7.24). Shapes come from the architecture registry `ARCHS`, never from the wire, so a model's bytes have one
length per architecture (cnn 57,540 B). A channel whose scale is 0 must have q == 0 there: every weight of it is
0 whichever q is written, and one model has one encoding.

`average` is the rollup's global model (§2.1 of the issue-13 design): per output channel c of every layer
n_i = sum_g q_g[i] * S_g[c] exactly (int64: below 255 * 127 * 2**32 < 2**48), M = max_i |n_i|,
S'[c] = ceil(M / (127 G)), q'_i = rha(n_i, G S'[c]), B' = rha(sum_g B_g, G), with rha(n, d) = n / d rounded half
away from zero. Integers only, every array int64 (NEP 50: no small dtypes), so every machine gets the same bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from eth_utils import keccak

MAGIC = b"FRQ1"
HEADER_SIZE = 8
SCALE_BITS = 32   # real weight = q * S / 2**32
BIAS_BITS = 24    # real bias = B / 2**24
Q_MAX = 127
S_MAX = 2**32 - 1
B_MIN, B_MAX = -2**31, 2**31 - 1
MAX_AVERAGED = 255  # G * 127 * 2**32 stays below 2**48: every sum fits int64
QOS_INPUTS = 12     # features of one QoS measurement window (flower_sim.qos_data), each a uint8 0..255


class QModelError(ValueError):
    """A model that is not a valid FRQ1 model of a known architecture (the reason says what is wrong)."""


@dataclass(frozen=True)
class LayerShape:
    """One layer of an architecture: "conv" is a 3x3 valid convolution then a 2x2 max-pool."""

    kind: str
    kernel: tuple[int, ...]
    per_tensor: bool
    relu: bool

    @property
    def cout(self) -> int:
        return self.kernel[-1]

    @property
    def nscales(self) -> int:
        return 1 if self.per_tensor else self.cout

    @property
    def weights(self) -> int:
        return math.prod(self.kernel)

    @property
    def encoded_size(self) -> int:
        return self.weights + 4 * self.nscales + 4 * self.cout


@dataclass(frozen=True)
class Arch:
    """A model architecture of `flower_sim/models.py`, as shapes (Keras order), and what one input is: a 28x28x1
    digit, or for `qos` QOS_INPUTS features of one measurement window, each a uint8 0..255 (scale 1/255)."""

    id: int
    name: str
    layers: tuple[LayerShape, ...]
    inputs: tuple[int, ...] = (28, 28, 1)
    grouped: bool = False  # its test set names each row's group (the QoS cell), for per-group figures

    @property
    def classes(self) -> int:
        return self.layers[-1].cout

    @property
    def params(self) -> int:
        return sum(layer.weights + layer.cout for layer in self.layers)

    @property
    def encoded_size(self) -> int:
        return HEADER_SIZE + sum(layer.encoded_size for layer in self.layers)


def _arch(arch_id: int, name: str, *layers: tuple[str, tuple[int, ...]], inputs: tuple[int, ...] = (28, 28, 1),
          grouped: bool = False) -> Arch:
    """Every layer but the last is per-channel with ReLU; the last (the logits) is per-tensor, no ReLU."""
    last = len(layers) - 1
    return Arch(arch_id, name, tuple(LayerShape(kind, kernel, per_tensor=i == last, relu=i != last)
                                     for i, (kind, kernel) in enumerate(layers)), inputs, grouped)


ARCHS: dict[int, Arch] = {a.id: a for a in (
    _arch(1, "cnn", ("conv", (3, 3, 1, 16)), ("conv", (3, 3, 16, 32)), ("dense", (800, 64)), ("dense", (64, 10))),
    _arch(2, "mlp", ("dense", (784, 128)), ("dense", (128, 10))),
    _arch(3, "logreg", ("dense", (784, 10)),),
    _arch(4, "cnn10", ("conv", (3, 3, 1, 32)), ("conv", (3, 3, 32, 64)), ("dense", (1600, 352)),
          ("dense", (352, 10))),
    _arch(5, "qos", ("dense", (QOS_INPUTS, 32)), ("dense", (32, 16)), ("dense", (16, 2)), inputs=(QOS_INPUTS,),
          grouped=True),
)}


def arch_named(name: str) -> Arch:
    for arch in ARCHS.values():
        if arch.name == name:
            return arch
    raise QModelError(f"unknown architecture {name!r}")


@dataclass(frozen=True)
class QLayer:
    kind: str                 # "conv": 3x3 valid conv then 2x2 max-pool; "dense"
    q: np.ndarray             # the int8 weights as an int64 array, Keras layout (conv HWIO, dense IO)
    scales: tuple[int, ...]   # uint32 per output channel (1 entry when per-tensor): real w = q * S / 2**32
    biases: tuple[int, ...]   # int32 per output channel: real b = B / 2**24
    relu: bool                # ReLU after (every layer but the last)


@dataclass(frozen=True)
class QModel:
    arch: int                 # a key of ARCHS: 1 cnn, 2 mlp, 3 logreg, 4 cnn10, 5 qos
    layers: tuple[QLayer, ...]


def decode(data: bytes) -> QModel:
    """The model `data` encodes; QModelError if it is not exactly a canonical FRQ1 model of a known arch."""
    data = bytes(data)
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        raise QModelError("not an FRQ1 model (the first 4 bytes must be 'FRQ1')")
    arch = ARCHS.get(data[4])
    if arch is None:
        raise QModelError(f"unknown architecture {data[4]}")
    if data[5] != len(arch.layers):
        raise QModelError(f"{arch.name} has {len(arch.layers)} layers, the header says {data[5]}")
    if data[6:8] != b"\0\0":
        raise QModelError("reserved header bytes 6-7 must be zero")
    if len(data) != arch.encoded_size:
        raise QModelError(f"a {arch.name} model is {arch.encoded_size} bytes, got {len(data)}")
    layers, at = [], HEADER_SIZE
    for index, shape in enumerate(arch.layers):
        q = np.frombuffer(data, dtype="<i1", count=shape.weights, offset=at).astype(np.int64)
        at += shape.weights
        scales = np.frombuffer(data, dtype="<u4", count=shape.nscales, offset=at).astype(np.int64)
        at += 4 * shape.nscales
        biases = np.frombuffer(data, dtype="<i4", count=shape.cout, offset=at).astype(np.int64)
        at += 4 * shape.cout
        layer = QLayer(shape.kind, q.reshape(shape.kernel), tuple(int(s) for s in scales),
                       tuple(int(b) for b in biases), shape.relu)
        _check_layer(index, shape, layer)
        layers.append(layer)
    return QModel(arch.id, tuple(layers))


def encode(model: QModel) -> bytes:
    """The FRQ1 bytes of `model`; QModelError if it does not fit its architecture or the value ranges."""
    arch = ARCHS.get(model.arch)
    if arch is None:
        raise QModelError(f"unknown architecture {model.arch}")
    if len(model.layers) != len(arch.layers):
        raise QModelError(f"{arch.name} has {len(arch.layers)} layers, the model {len(model.layers)}")
    parts = [MAGIC, bytes([arch.id, len(arch.layers), 0, 0])]
    for index, (shape, layer) in enumerate(zip(arch.layers, model.layers)):
        _check_layer(index, shape, layer)
        parts += [np.asarray(layer.q, dtype=np.int64).astype("<i1").tobytes(),
                  np.array(layer.scales, dtype=np.int64).astype("<u4").tobytes(),
                  np.array(layer.biases, dtype=np.int64).astype("<i4").tobytes()]
    return b"".join(parts)


def digest(data: bytes) -> bytes:
    """The model's digest: keccak256 of its FRQ1 bytes (what reports commit to and notices name)."""
    return keccak(bytes(data))


def _check_layer(index: int, shape: LayerShape, layer: QLayer) -> None:
    """Raise QModelError unless `layer` is a canonical layer of `shape` (the rules of decode and encode alike)."""
    where = f"layer {index}"
    if (layer.kind, layer.relu) != (shape.kind, shape.relu):
        raise QModelError(f"{where} must be {shape.kind} relu={shape.relu}")
    q = layer.q
    if not isinstance(q, np.ndarray) or q.dtype != np.int64 or q.shape != shape.kernel:
        raise QModelError(f"{where}: q must be an int64 array of shape {shape.kernel}")
    if len(layer.scales) != shape.nscales or len(layer.biases) != shape.cout:
        raise QModelError(f"{where} needs {shape.nscales} scales and {shape.cout} biases")
    if q.size and (int(q.min()) < -Q_MAX or int(q.max()) > Q_MAX):
        raise QModelError(f"{where}: weights must lie in [-127, 127] (-128 is not used)")
    if any(not isinstance(s, int) or not 0 <= s <= S_MAX for s in layer.scales):
        raise QModelError(f"{where}: scales must be uint32")
    if any(not isinstance(b, int) or not B_MIN <= b <= B_MAX for b in layer.biases):
        raise QModelError(f"{where}: biases must be int32")
    zero = np.array(layer.scales, dtype=np.int64) == 0
    if zero.any():
        used = np.abs(q).reshape(-1, shape.cout).max(axis=0) != 0
        if shape.per_tensor:
            used = used.any(keepdims=True)
        if (zero & used).any():
            raise QModelError(f"{where}: a channel with scale 0 must have all weights 0")


def rha(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """n / d rounded half away from zero, elementwise on int64 arrays (d > 0)."""
    return np.sign(n) * ((np.int64(2) * np.abs(n) + d) // (np.int64(2) * d))


def round_half_away(n: int, d: int) -> int:
    """n / d rounded half away from zero, on Python integers (d > 0): the one rounding rule of the rollup's
    integer arithmetic (`rha` is the same on int64 arrays)."""
    return (1 if n >= 0 else -1) * ((2 * abs(n) + d) // (2 * d))


def average(models: Sequence[QModel]) -> QModel:
    """The unweighted mean of `models` (one architecture, 1..255 of them), exact then rounded once (§2.1).

    One model is its own mean (the same bytes, whatever its scales).
    """
    if not 1 <= len(models) <= MAX_AVERAGED:
        raise QModelError(f"average needs 1 to {MAX_AVERAGED} models, got {len(models)}")
    arch = ARCHS.get(models[0].arch)
    if arch is None or any(m.arch != arch.id for m in models):
        raise QModelError("average needs models of one known architecture")
    for model in models:
        encode(model)  # validates every layer against the architecture and the value ranges
    if len(models) == 1:
        return models[0]
    g = np.int64(len(models))
    layers = []
    for index, shape in enumerate(arch.layers):
        group = [m.layers[index] for m in models]
        n = sum(layer.q * np.array(layer.scales, dtype=np.int64) for layer in group)  # units of 2**-32
        flat = np.abs(n).reshape(-1, shape.cout)
        m = flat.max(keepdims=True) if shape.per_tensor else flat.max(axis=0)
        s = -(-m.reshape(-1) // (np.int64(Q_MAX) * g))  # ceil(M / (127 G)), <= 2**32 - 1
        q = rha(n, np.maximum(g * s, np.int64(1)))       # S' = 0 only where every n is 0, and then q' = 0
        biases = tuple(round_half_away(sum(layer.biases[c] for layer in group), len(models)) for c in range(shape.cout))
        layers.append(QLayer(shape.kind, q, tuple(int(v) for v in s), biases, shape.relu))
    return QModel(arch.id, tuple(layers))
