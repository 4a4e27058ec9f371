"""The rollup's integer forward pass: a quantized model's accuracy on the public test set, in basis points.

Issue-13 design §2.2, after Jacob et al. 2018 (arXiv:1712.05877 §2) and gemmlowp's output stage, integers only:

- input: the raw pixels 0..255 (or a QoS window's uint8 features, `dapp.qmodel.QOS_INPUTS`), scale 1/255, zero
  point 0;
- every layer: ``acc = sum(x * q) + b_acc[c]`` in int64, clamped to int32, where ``b_acc[c] = rha(B[c] / 2**24 /
  (s_in * s_w[c]))`` (clamped to int32) is computed once per model with exact fractions;
- hidden layers (ReLU fused): ``y = min((max(acc, 0) * M0[c] + 2**(n[c] - 1)) >> n[c], 255)`` (uint8, zero point 0),
  with ``M0 * 2**-n`` the fixed-point form of ``s_in * s_w[c] / s_out``, then a 2x2 max-pool after a conv;
- ``s_out`` is calibrated by the rollup itself on the first ``min(100, N)`` public images (the largest real
  activation / 255): nobody posts activation scales, so nobody can poison them;
- last layer: per-tensor weights, so the int64 logits share one unit: argmax, ties to the lowest class.

Every array is int64 and nothing is a float: numpy's integer matmul calls no BLAS, so the same integers come out
on x86-64 and riscv64 under numpy 1.21 to 2.x (NEP 50 changed only small-dtype promotion, which never occurs here).
Bounds: |dot| <= 1600 * 255 * 127 < 2**26, so acc + b_acc fits before its int32 clamp, and
acc * M0 + 2**61 <= (2**31 - 1) * 2**31 + 2**61 < 2**63.

``python -m dapp.qnn --selftest`` prints the golden digest (keccak256 of the logits of a seeded cnn on seeded
images, built here without any file) that must be the same on every machine; ``--bench`` times the cnn.
"""
from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np
from eth_utils import keccak

from dapp.mad import accuracy_bps
from dapp.qmodel import (ARCHS, B_MAX, B_MIN, BIAS_BITS, Q_MAX, SCALE_BITS, S_MAX, Arch, QLayer, QModel,
                         arch_named, round_half_away)

SIDE = 28
PIXELS = SIDE * SIDE
CALIBRATION_IMAGES = 100
BATCH = 64                    # images per numpy step: cnn10 conv1 accumulators = 64 * 26 * 26 * 32 * 8 B = 11 MB
U8_MAX = 255
INPUT_SCALE = Fraction(1, U8_MAX)
M0_MIN, M0_MAX = 1 << 30, 1 << 31
SHIFT_MIN, SHIFT_MAX = 1, 62  # 2**(n - 1) and acc * M0 + 2**(n - 1) stay below 2**63
SELFTEST_IMAGES = 16
SELFTEST_SEED = b"fedrollup qnn selftest v1"


class QnnError(ValueError):
    """A test set or model the forward pass cannot score (the reason says why)."""


@dataclass(frozen=True, eq=False)
class TestSet:
    """The public test set: labels and inputs (28x28x1 images or QoS feature rows), every value an int64."""

    labels: np.ndarray                 # (N,)
    inputs: np.ndarray                 # (N, *arch.inputs), 0..255
    groups: Optional[np.ndarray] = None  # (N,): each row's group, for a grouped architecture (QoS cells)

    __test__ = False                   # not a pytest test class


@dataclass(frozen=True, eq=False)
class LayerConstants:
    """What a layer adds to its accumulators and, when hidden, how it requantizes them (int64 per channel)."""

    bias: np.ndarray                  # b_acc[c]: the bias in accumulator units
    multiplier: Optional[np.ndarray]  # M0[c] in [2**30, 2**31], or 0 where every output rounds to 0
    shift: Optional[np.ndarray]       # n[c] in [1, 62]
    rounding: Optional[np.ndarray]    # 2**(n[c] - 1): round half up


@dataclass(frozen=True, eq=False)
class IntegerNet:
    """A model with its calibrated constants: the logits of any image are integers fixed by these."""

    model: QModel
    constants: tuple[LayerConstants, ...]


def record_size(arch: Arch) -> int:
    """Bytes per test-set row: its label, its group for a grouped architecture, its input."""
    return 1 + arch.grouped + math.prod(arch.inputs)


def parse_test_set(data: bytes, arch: Arch) -> TestSet:
    """The test set `data` holds for models of `arch` — ``labels u8[N] | pixels u8[N * 784]`` (design §3), or for a
    grouped architecture ``labels u8[N] | groups u8[N] | inputs u8[N * F]`` — QnnError if malformed."""
    record = record_size(arch)
    if not data or len(data) % record:
        raise QnnError(f"a test set for {arch.name} models is N * {record} bytes with N >= 1, got {len(data)} bytes")
    count = len(data) // record
    raw = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64)
    start = 2 * count if arch.grouped else count
    groups = raw[count:start].copy() if arch.grouped else None
    return TestSet(raw[:count].copy(), raw[start:].reshape(count, *arch.inputs).copy(), groups)


def fixed_point(ratio: Fraction) -> tuple[int, int]:
    """(M0, n) with ``M0 / 2**n`` = `ratio` rounded half away from zero to 31 significant bits (gemmlowp's
    normalisation: M0 in [2**30, 2**31]). Outside the shifts 1..62 the exact result is kept: a ratio >= 2**30
    saturates any acc >= 1 to 255 and (2**31, 1) does the same; a ratio < 2**-32 rounds every acc < 2**31 to 0."""
    if ratio < 0:
        raise QnnError("a requantization ratio is never negative")
    if ratio == 0:
        return 0, SHIFT_MAX
    shift = 30 - (ratio.numerator.bit_length() - ratio.denominator.bit_length())
    while ratio * Fraction(2) ** shift >= M0_MAX:
        shift -= 1
    while ratio * Fraction(2) ** shift < M0_MIN:
        shift += 1
    if shift < SHIFT_MIN:
        return M0_MAX, SHIFT_MIN
    if shift > SHIFT_MAX:
        return 0, SHIFT_MAX
    return _round_half_away(ratio * (1 << shift)), shift


def calibrate(model: QModel, images: np.ndarray) -> IntegerNet:
    """The model's integer network, its activation scales calibrated on `images` (int64, (C, *arch.inputs),
    C >= 1)."""
    _check_model(model)
    _check_images(images, ARCHS[model.arch])
    if not len(images):
        raise QnnError("calibration needs at least one image")
    scale, x, constants = INPUT_SCALE, images, []
    for index, layer in enumerate(model.layers):
        units = _accumulator_units(layer, scale)
        bias = np.array([_bias_in_units(b, u) for b, u in zip(layer.biases, units)], dtype=np.int64)
        if index == len(model.layers) - 1:
            constants.append(LayerConstants(bias, None, None, None))
            break
        accs = [_relu(_accumulate(layer, bias, x[i:i + BATCH])) for i in range(0, len(x), BATCH)]
        peaks = np.max(np.stack([a.reshape(-1, a.shape[-1]).max(axis=0) for a in accs]), axis=0)
        top = max(int(p) * u for p, u in zip(peaks, units))
        scale = top / U8_MAX if top else INPUT_SCALE  # nothing fired on the calibration set: any scale will do
        pairs = [fixed_point(u / scale) for u in units]
        shift = np.array([n for _, n in pairs], dtype=np.int64)
        const = LayerConstants(bias, np.array([m for m, _ in pairs], dtype=np.int64), shift,
                               np.left_shift(np.int64(1), shift - np.int64(1)))
        constants.append(const)
        x = np.concatenate([_requantize(layer, const, a) for a in accs])
    return IntegerNet(model, tuple(constants))


def logits(net: IntegerNet, images: np.ndarray) -> np.ndarray:
    """The int64 logits (N, classes) of `images` (int64, (N, *arch.inputs)), BATCH images at a time."""
    _check_images(images, ARCHS[net.model.arch])
    out = [_batch_logits(net, images[i:i + BATCH]) for i in range(0, len(images), BATCH)]
    return np.concatenate(out) if out else np.zeros((0, net.model.layers[-1].q.shape[-1]), dtype=np.int64)


def predictions(net: IntegerNet, images: np.ndarray) -> np.ndarray:
    """The predicted class of every image: the first largest logit (ties go to the lowest class)."""
    return np.argmax(logits(net, images), axis=1).astype(np.int64)


def classify(model: QModel, test_set: TestSet) -> np.ndarray:
    """`model`'s predicted class of every row of `test_set`, calibrated on its first min(100, N) rows."""
    classes = model.layers[-1].q.shape[-1] if model.layers else 0
    if len(test_set.labels) and int(test_set.labels.max()) >= classes:
        raise QnnError(f"a label is {int(test_set.labels.max())}, the model has {classes} classes")
    return predictions(calibrate(model, test_set.inputs[:CALIBRATION_IMAGES]), test_set.inputs)


def accuracy_of(predicted: np.ndarray, test_set: TestSet) -> int:
    """The accuracy of `predicted` classes against `test_set`'s labels, in basis points."""
    return accuracy_bps(int(np.count_nonzero(predicted == test_set.labels)), len(test_set.labels))


def accuracy(model: QModel, test_set: TestSet) -> int:
    """`model`'s accuracy on `test_set` in basis points, calibrated on its first min(100, N) rows."""
    return accuracy_of(classify(model, test_set), test_set)


def _batch_logits(net: IntegerNet, x: np.ndarray) -> np.ndarray:
    for layer, const in zip(net.model.layers[:-1], net.constants[:-1]):
        x = _requantize(layer, const, _relu(_accumulate(layer, const.bias, x)))
    return _accumulate(net.model.layers[-1], net.constants[-1].bias, x)


def _accumulate(layer: QLayer, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``clamp(x . q + b_acc, int32)``: a dense layer, or a 3x3 valid convolution as the sum of nine shifted
    matmuls, one per kernel tap (Keras HWIO): the same integers as im2col (integer sums are exact in any order),
    twice as fast here and without im2col's 9x copy of the batch (18 MB for cnn10's second conv)."""
    if layer.kind == "conv":
        n, h, w, c = x.shape
        dot = np.zeros((n, h - 2, w - 2, layer.q.shape[-1]), dtype=np.int64)
        for i in range(3):
            for j in range(3):
                dot += x[:, i:i + h - 2, j:j + w - 2, :] @ layer.q[i, j]
    else:
        dot = x.reshape(len(x), -1) @ layer.q
    dot += bias  # in place, here and below: a batch's accumulators are the largest arrays (memory, not speed)
    return np.clip(dot, np.int64(B_MIN), np.int64(B_MAX), out=dot)


def _relu(acc: np.ndarray) -> np.ndarray:
    return np.maximum(acc, np.int64(0), out=acc)


def _requantize(layer: QLayer, const: LayerConstants, acc: np.ndarray) -> np.ndarray:
    """uint8 activations (as int64) from ReLU'd accumulators (overwritten): round half up, saturate at 255; then a
    conv's 2x2 max-pool."""
    acc *= const.multiplier
    acc += const.rounding
    acc >>= const.shift
    y = np.minimum(acc, np.int64(U8_MAX), out=acc)
    if layer.kind != "conv":
        return y
    n, h, w, c = y.shape
    h2, w2 = h // 2, w // 2
    return y[:, :2 * h2, :2 * w2, :].reshape(n, h2, 2, w2, 2, c).max(axis=(2, 4))


def _accumulator_units(layer: QLayer, scale: Fraction) -> list[Fraction]:
    """s_in * s_w[c] for every output channel (a per-tensor layer repeats its one scale). A channel of scale 0 has
    only zero weights (dapp.qmodel's rule), so any unit gives it the same dot product: s_w = 1 keeps its bias, which
    a unit of 0 could not represent (a dead channel still outputs relu(b); an all-zero last layer, its biases)."""
    cout = layer.q.shape[-1]
    scales = layer.scales if len(layer.scales) == cout else layer.scales * cout
    return [scale * Fraction(s or 1 << SCALE_BITS, 1 << SCALE_BITS) for s in scales]


def _bias_in_units(bias: int, unit: Fraction) -> int:
    """The real bias B / 2**24 in accumulator units (never 0), clamped to int32."""
    return min(max(_round_half_away(Fraction(bias, 1 << BIAS_BITS) / unit), B_MIN), B_MAX)


def _round_half_away(x: Fraction) -> int:
    return round_half_away(x.numerator, x.denominator)  # a Fraction's denominator is positive


def _check_model(model: QModel) -> None:
    """The forward pass's own assumptions (dapp.qmodel.decode guarantees them for every registered arch)."""
    layers = model.layers
    if not layers:
        raise QnnError("a model needs at least one layer")
    for index, layer in enumerate(layers):
        last = index == len(layers) - 1
        if layer.kind not in ("conv", "dense") or (last and layer.kind != "dense"):
            raise QnnError(f"layer {index}: kind {layer.kind!r} (convs then dense layers, the last dense)")
        if layer.relu == last:
            raise QnnError(f"layer {index}: every layer but the last has a ReLU")
        if layer.q.dtype != np.int64:
            raise QnnError(f"layer {index}: weights must be int64")
    if len(layers[-1].scales) != 1:
        raise QnnError("the last layer is per-tensor (its logits share one unit)")
    first, inputs = layers[0].q.shape, ARCHS[model.arch].inputs
    takes = (len(inputs) == 3 and first[2] == inputs[-1]) if layers[0].kind == "conv" else first[0] == math.prod(inputs)
    if not takes:
        raise QnnError(f"the first layer takes inputs of shape {inputs}, its kernel is {first}")


def _check_images(images: np.ndarray, arch: Arch) -> None:
    if images.dtype != np.int64 or images.shape[1:] != arch.inputs:
        raise QnnError(f"inputs are an int64 array of shape (N, {', '.join(map(str, arch.inputs))})")


# --- the golden selftest and the benchmark: a seeded cnn and seeded images, no file ---------------------------------

def _stream(label: bytes, count: int) -> np.ndarray:
    """`count` pseudo-random bytes (int64 0..255) from SHAKE-256: the same on every machine and numpy."""
    return np.frombuffer(hashlib.shake_256(SELFTEST_SEED + b"/" + label).digest(count), dtype=np.uint8).astype(np.int64)


def seeded_model(arch: int = 1) -> QModel:
    """A fixed model of a registered arch: weights uniform in [-127, 127], scales around 2**-8 (2**24 +- 2**22,
    per layer), biases in [-0.5, 0.5): about half the units fire, as in a trained net."""
    layers = []
    for index, shape in enumerate(ARCHS[arch].layers):
        q = (_stream(b"q%d" % index, shape.weights) % np.int64(2 * Q_MAX + 1) - np.int64(Q_MAX)).reshape(shape.kernel)
        words = _stream(b"s%d" % index, 8 * shape.cout).reshape(-1, 4) @ np.array([1, 256, 65536, 0], dtype=np.int64)
        scales = tuple(int(v) % (1 << 23) + (3 << 22) for v in words[:shape.nscales])
        biases = tuple(int(v) - (1 << 23) for v in words[shape.cout:])
        layers.append(QLayer(shape.kind, q, scales, biases, shape.relu))
    assert all(s <= S_MAX for layer in layers for s in layer.scales)
    return QModel(arch, tuple(layers))


def seeded_images(count: int) -> TestSet:
    """`count` fixed images that look like digits to an int8 net: ~80 % zero pixels, labels 0..9."""
    raw = _stream(b"images", count * PIXELS).reshape(count, SIDE, SIDE, 1)
    pixels = np.where(raw < np.int64(205), np.int64(0), (raw - np.int64(205)) * np.int64(5))
    return TestSet(_stream(b"labels", count) % np.int64(10), pixels)


def selftest_digest() -> bytes:
    """keccak256 of the int64 little-endian logits of the seeded cnn on 16 seeded images (calibrated on them)."""
    images = seeded_images(SELFTEST_IMAGES).inputs
    return keccak(logits(calibrate(seeded_model(), images), images).astype("<i8").tobytes())


def bench(count: int, arch: int = 1) -> str:
    """One line: a seeded model's calibration and forward over `count` seeded images on this machine."""
    test_set, model = seeded_images(count), seeded_model(arch)
    start = time.perf_counter()
    net = calibrate(model, test_set.inputs[:CALIBRATION_IMAGES])
    calibrated = time.perf_counter()
    predictions(net, test_set.inputs)
    done = time.perf_counter()
    return (f"{ARCHS[arch].name}: calibration on {min(count, CALIBRATION_IMAGES)} images {calibrated - start:.3f} s, "
            f"forward of {count} images {done - calibrated:.3f} s = {count / (done - calibrated):.0f} images/s")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dapp.qnn", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--selftest", action="store_true", help="print the golden logits digest")
    mode.add_argument("--bench", type=int, metavar="N", help="time a seeded model on N images")
    parser.add_argument("--arch", choices=[a.name for a in ARCHS.values()], default="cnn", help="for --bench")
    args = parser.parse_args(argv)
    if args.selftest:
        print("0x" + selftest_digest().hex())
    else:
        print(bench(args.bench, arch_named(args.arch).id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
