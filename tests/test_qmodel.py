"""The rollup's int8 models: FRQ1 sizes and strict decoding, the exact integer average (§2.1 of the issue-13
design), and the host's float -> int8 -> float quantizer. Weights are built from seeded numpy, so no run is needed."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from dapp.qmodel import (ARCHS, B_MAX, B_MIN, HEADER_SIZE, S_MAX, QLayer, QModel, QModelError, arch_named, average,
                         decode, digest, encode)
from flower_sim.quantize import arch_of, dequantize, quantize, to_frq1

KECCAK_OF_NOTHING = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def random_model(name: str, rng: np.random.Generator) -> QModel:
    """Any valid model: random int8 weights, uint32 scales and int32 biases (no scale 0)."""
    return QModel(arch_named(name).id, tuple(
        QLayer(s.kind, rng.integers(-127, 128, size=s.kernel, dtype=np.int64),
               tuple(int(v) for v in rng.integers(1, S_MAX + 1, size=s.nscales, dtype=np.int64)),
               tuple(int(v) for v in rng.integers(B_MIN, B_MAX + 1, size=s.cout, dtype=np.int64)), s.relu)
        for s in arch_named(name).layers))


def keras_like_weights(name: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Float32 weights of Keras's shapes and Glorot-uniform magnitude, small random biases."""
    out = []
    for s in arch_named(name).layers:
        fan = s.weights // s.cout + s.cout
        out.append(rng.uniform(-1, 1, size=s.kernel).astype(np.float32) * np.float32(np.sqrt(6 / fan)))
        out.append(rng.normal(0, 0.05, size=s.cout).astype(np.float32))
    return out


def logreg(q: list[int], scale: int, biases: list[int]) -> QModel:
    """A logreg model whose first weights are `q` (the rest 0), one scale, the first biases `biases`."""
    w = np.zeros((784, 10), dtype=np.int64)
    w.reshape(-1)[:len(q)] = q
    return QModel(3, (QLayer("dense", w, (scale,), tuple(biases + [0] * (10 - len(biases))), False),))


def test_param_counts():
    assert {a.name: a.params for a in ARCHS.values()} == {
        "cnn": 56_714, "mlp": 101_770, "logreg": 7_850, "cnn10": 585_898, "qos": 978}
    assert {a.id: a.name for a in ARCHS.values()} == {1: "cnn", 2: "mlp", 3: "logreg", 4: "cnn10", 5: "qos"}


def test_encoded_sizes():
    # header 8 + per layer q (1 B a weight) + S (4 B a channel, 1 for the last) + B (4 B a channel):
    # cnn 8 + (144+128) + (4608+256) + (51200+512) + (640+4+40) = 57,540 (one 64,960 B chunk)
    sizes = {"cnn": 57_540, "mlp": 102_708, "logreg": 7_892, "cnn10": 589_076}
    rng = np.random.default_rng(1)
    for name, size in sizes.items():
        assert arch_named(name).encoded_size == size
        assert len(encode(random_model(name, rng))) == size


def test_roundtrip():
    rng = np.random.default_rng(2)
    for name in ("cnn", "mlp", "logreg", "cnn10"):
        model = random_model(name, rng)
        data = encode(model)
        back = decode(data)
        assert back.arch == model.arch and encode(back) == data
        for a, b in zip(model.layers, back.layers):
            assert np.array_equal(a.q, b.q) and a.q.shape == b.q.shape and b.q.dtype == np.int64
            assert (a.kind, a.scales, a.biases, a.relu) == (b.kind, b.scales, b.biases, b.relu)
    assert data[:8] == b"FRQ1\x04\x04\x00\x00"


def test_digest_is_keccak256_of_the_bytes():
    assert digest(b"").hex() == KECCAK_OF_NOTHING
    data = encode(random_model("logreg", np.random.default_rng(3)))
    flipped = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    assert len(digest(data)) == 32 and digest(data) != digest(flipped)


def test_the_layout_is_keras_order_little_endian():
    """Byte offsets a foreign implementation relies on: q row-major in Keras layout, then S, then B."""
    q = np.zeros((784, 10), dtype=np.int64)
    q[0, 1], q[783, 9] = -1, 127
    data = encode(QModel(3, (QLayer("dense", q, (0x01020304,), tuple(range(-5, 5)), False),)))
    assert data[HEADER_SIZE + 1] == 0xFF and data[HEADER_SIZE + 7839] == 127
    assert data[HEADER_SIZE + 7840:HEADER_SIZE + 7844] == bytes([4, 3, 2, 1])
    assert data[HEADER_SIZE + 7844:HEADER_SIZE + 7848] == (-5).to_bytes(4, "little", signed=True)


@pytest.mark.parametrize("mangle, reason", [
    (lambda d: d[:-1], "7892 bytes, got 7891"),
    (lambda d: d + b"\0", "7892 bytes, got 7893"),
    (lambda d: b"", "not an FRQ1 model"),
    (lambda d: b"FRQ2" + d[4:], "not an FRQ1 model"),
    (lambda d: d[:4] + b"\x06" + d[5:], "unknown architecture 6"),
    (lambda d: d[:4] + b"\x00" + d[5:], "unknown architecture 0"),
    (lambda d: d[:4] + b"\x01" + d[5:], "has 4 layers, the header says 1"),   # a logreg body under the cnn header
    (lambda d: d[:5] + b"\x02" + d[6:], "has 1 layers, the header says 2"),
    (lambda d: d[:7] + b"\x01" + d[8:], "reserved header bytes"),
    (lambda d: d[:HEADER_SIZE + 5] + b"\x80" + d[HEADER_SIZE + 6:], "-128 is not used"),
    (lambda d: d[:HEADER_SIZE + 7840] + bytes(4) + d[HEADER_SIZE + 7844:], "scale 0 must have all weights 0"),
])
def test_rejects_bad_lengths_and_minus_128(mangle, reason):
    data = encode(random_model("logreg", np.random.default_rng(4)))
    with pytest.raises(QModelError, match=reason):
        decode(mangle(data))


def test_any_bytes_decode_or_raise_qmodel_error():
    """Bounded fuzz: truncations and random byte flips of a valid model never raise anything but QModelError,
    and whatever decodes re-encodes to the same bytes (one encoding per model)."""
    rng = np.random.default_rng(12)
    data = encode(random_model("logreg", rng))
    cases = [data[:n] for n in range(HEADER_SIZE + 2)]
    for _ in range(300):
        mutated = bytearray(data)
        for at in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
            mutated[at] = int(rng.integers(0, 256))
        cases.append(bytes(mutated))
    decoded = 0
    for case in cases:
        try:
            assert encode(decode(case)) == case
            decoded += 1
        except QModelError:
            pass
    assert 0 < decoded < len(cases)


def test_encode_refuses_what_decode_would_refuse():
    good = random_model("logreg", np.random.default_rng(5))
    layer = good.layers[0]

    def with_(**changes) -> QModel:
        fields = {"kind": layer.kind, "q": layer.q, "scales": layer.scales, "biases": layer.biases,
                  "relu": layer.relu} | changes
        return QModel(3, (QLayer(**fields),))

    bad = {"-128": with_(q=np.where(layer.q == 0, -128, layer.q)), "128": with_(q=layer.q * 0 + 128),
           "float q": with_(q=layer.q.astype(np.float64)), "int8 q": with_(q=layer.q.astype(np.int8)),
           "shape": with_(q=layer.q.reshape(10, 784)), "2 scales": with_(scales=(1, 1)),
           "scale 2**32": with_(scales=(2**32,)), "bias 2**31": with_(biases=(2**31,) + layer.biases[1:]),
           "relu": with_(relu=True), "kind": with_(kind="conv")}
    for what, model in bad.items():
        with pytest.raises(QModelError):
            encode(model)
            pytest.fail(what)
    with pytest.raises(QModelError, match="unknown architecture 9"):
        encode(QModel(9, good.layers))


def test_average_rounds_half_away_from_zero():
    # one scale S for both: n = (q1 + q2) S, M = 254 S, so S' = S and q' = rha(q1 + q2, 2)
    s = 1 << 20
    a = logreg([127, 0, 2, -2, 1, -1, 5], s, [1, -1, 0, 2, -3, B_MAX, B_MIN])
    b = logreg([127, 1, 3, -3, 2, -2, 5], s, [2, -2, 1, 3, -4, B_MAX - 1, B_MIN + 1])
    mean = average([a, b])
    assert mean.layers[0].scales == (s,)
    # 0.5 -> 1, 2.5 -> 3, -2.5 -> -3, 1.5 -> 2, -1.5 -> -2 (half-even would give 0, 2, -2, 2, -2)
    assert mean.layers[0].q.reshape(-1)[:7].tolist() == [127, 1, 3, -3, 2, -2, 5]
    assert mean.layers[0].biases[:7] == (2, -2, 1, 3, -4, B_MAX, B_MIN)
    # three models: thirds go to the nearest integer
    c = logreg([127, 0, 0, 0, 0, 0, 0], s, [0, -1, 0, 0, 0, 0, 0])
    three = average([a, a, c])
    assert three.layers[0].q.reshape(-1)[:7].tolist() == [127, 0, 1, -1, 1, -1, 3]   # 2/3 -> 1, 10/3 -> 3
    assert three.layers[0].biases[:2] == (1, -1)                                          # 2/3 -> 1, -1 -> -1


def test_average_of_different_scales_rescales_exactly():
    # n = 127*3 + 127*1 = 508 units, M = 508, G = 2: S' = ceil(508 / 254) = 2, q' = rha(508, 4) = 127
    a, b = logreg([127, 10, -1], 3, []), logreg([127, -10, 0], 1, [])
    mean = average([a, b])
    assert mean.layers[0].scales == (2,)
    # 10*3 - 10*1 = 20 -> 20/4 = 5; -3/4 -> -1
    assert mean.layers[0].q.reshape(-1)[:3].tolist() == [127, 5, -1]


def test_average_matches_the_rule_in_plain_integers():
    """The numpy int64 average equals §2.1 computed with Python integers (no numpy, no overflow possible)."""
    rng = np.random.default_rng(6)
    models = [random_model("logreg", rng) for _ in range(3)]
    g = len(models)
    q = [m.layers[0].q.reshape(-1).tolist() for m in models]
    n = [sum(q[k][i] * models[k].layers[0].scales[0] for k in range(g)) for i in range(7840)]
    s = -(-max(abs(v) for v in n) // (127 * g))
    expected = [(1 if v >= 0 else -1) * math.floor(Fraction(abs(v), g * s) + Fraction(1, 2)) for v in n]
    got = average(models).layers[0]
    assert got.scales == (s,) and got.q.reshape(-1).tolist() == expected


def test_average_zero_and_saturated_tensors():
    zero = logreg([], 0, [])
    assert encode(average([zero, zero])) == encode(zero)
    assert decode(encode(zero)).layers[0].scales == (0,)
    # +127 and -127 at one scale cancel: scale 0, weights 0
    assert encode(average([logreg([127] * 7840, 5, []), logreg([-127] * 7840, 5, [])])) == encode(zero)
    # 255 models at the extremes: no int64 overflow, the extremes stay
    rng = np.random.default_rng(7)
    top = QModel(1, tuple(QLayer(s.kind, rng.choice(np.array([-127, 127], dtype=np.int64), size=s.kernel),
                                 (S_MAX,) * s.nscales, tuple(rng.choice([B_MIN, B_MAX], size=s.cout).tolist()),
                                 s.relu) for s in ARCHS[1].layers))
    assert encode(average([top] * 255)) == encode(top)


def test_average_refuses_bad_groups():
    rng = np.random.default_rng(8)
    a = random_model("logreg", rng)
    for models in ([], [a] * 256, [a, random_model("mlp", rng)]):
        with pytest.raises(QModelError):
            average(models)


def test_one_model_is_its_own_mean():
    a = logreg([100, -3], 7, [5])  # max |q| < 127: the formula would rescale it, the rule keeps the bytes
    assert encode(average([a])) == encode(a)


def test_average_within_one_step_of_float_mean():
    rng = np.random.default_rng(9)
    for g in (2, 3, 5):
        models = [quantize(keras_like_weights("cnn", rng)) for _ in range(g)]
        floats = [dequantize(m) for m in models]
        mean = average(models)
        got = dequantize(mean)
        for i, layer in enumerate(mean.layers):
            want = np.mean([np.asarray(f[2 * i], dtype=np.float64) for f in floats], axis=0)
            step = np.array(layer.scales, dtype=np.float64) / 2.0**32
            err = np.abs(got[2 * i] - want).reshape(-1, len(layer.biases))
            assert (err <= step / 2 * (1 + 1e-4) + 1e-12).all(), f"layer {i}: {err.max()} vs step {step.max()}"
            bias_err = np.abs(got[2 * i + 1] - np.mean([f[2 * i + 1] for f in floats], axis=0))
            assert (bias_err <= 2.0**-25 * 1.01).all()


def test_quantize_dequantize_error_bound():
    rng = np.random.default_rng(10)
    weights = keras_like_weights("cnn", rng)
    weights[0][..., 3] = 0            # a dead channel: scale 0, weights 0
    weights[2][0, 0, 0, 5] = 300.0    # beyond the range: saturates at 127 * (2**32 - 1) / 2**32
    model = quantize(weights)
    assert len(encode(model)) == 57_540 and to_frq1(weights) == encode(model)
    assert model.layers[0].scales[3] == 0 and not model.layers[0].q[..., 3].any()
    assert model.layers[1].scales[5] == S_MAX and model.layers[1].q[0, 0, 0, 5] == 127
    assert len(model.layers[-1].scales) == 1
    back = dequantize(model)
    assert [w.shape for w in back] == [w.shape for w in weights] and all(w.dtype == np.float32 for w in back)
    for i, layer in enumerate(model.layers):
        w = weights[2 * i].astype(np.float64).reshape(-1, len(layer.biases))
        err = np.abs(back[2 * i].reshape(w.shape) - w)
        half_step = np.array(layer.scales, dtype=np.float64) / 2.0**33
        inside = np.abs(w) <= 127 * np.array(layer.scales, dtype=np.float64) / 2.0**32
        assert (err[inside] <= np.broadcast_to(half_step, w.shape)[inside] * (1 + 1e-4) + 1e-12).all()
        peak = np.abs(layer.q).reshape(-1, len(layer.scales)).max(axis=0)
        assert ((peak == 127) | (np.array(layer.scales) == 0)).all()   # each scale's weights span the int8 range
        assert (np.abs(back[2 * i + 1] - weights[2 * i + 1]) <= 2.0**-25 * 1.01).all()


def test_quantize_refuses_unknown_shapes_and_non_finite_weights():
    rng = np.random.default_rng(11)
    with pytest.raises(QModelError, match="no architecture"):
        quantize([np.zeros((784, 11), dtype=np.float32), np.zeros(11, dtype=np.float32)])
    weights = keras_like_weights("mlp", rng)
    weights[1][0] = np.nan
    with pytest.raises(QModelError, match="finite"):
        quantize(weights)


@pytest.mark.slow
def test_the_registry_matches_the_keras_models():
    from flower_sim.models import MODELS, build_model  # heavy: TensorFlow (3 s), for this slow test only

    assert sorted(MODELS) == sorted(a.name for a in ARCHS.values())
    for name in MODELS:
        model = build_model(name, 0.01)
        assert arch_of(model.get_weights()).name == name
        assert model.count_params() == arch_named(name).params
