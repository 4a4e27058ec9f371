"""A pure-Python reference of dapp.qnn (no numpy in the arithmetic), written separately from the design's words
(issue-13 design §2.2) rather than from dapp/qnn.py: Python ints never overflow, so an int64 wrap, a dtype slip or
a rounding difference in the numpy version shows up as different logits.

Activations are flat lists in Keras order (row, column, channel), which is also what Flatten hands a dense layer.
"""
from __future__ import annotations

from fractions import Fraction
from operator import mul

INT32 = (-2**31, 2**31 - 1)


def reference_logits(model, images: list[list[int]], calibration: int | None = None) -> list[list[int]]:
    """Logits of `images` (each 784 pixels 0..255, row-major) under `model` (a dapp.qmodel.QModel), calibrated on
    the first `calibration` images (default min(100, N)), as the design specifies the rollup computes them."""
    layers = [_plain(layer) for layer in model.layers]
    count = min(100, len(images)) if calibration is None else calibration
    plan = _calibrate(layers, [(list(img), 28, 28, 1) for img in images[:count]])
    return [_forward(layers, plan, (list(img), 28, 28, 1)) for img in images]


def _plain(layer) -> dict:
    cout = layer.q.shape[-1]
    flat = [int(v) for v in layer.q.reshape(-1).tolist()]
    # weights of output channel k, in (row, column, input channel) / input order
    columns = [flat[k::cout] for k in range(cout)]
    scales = list(layer.scales) if len(layer.scales) == cout else [layer.scales[0]] * cout
    return {"kind": layer.kind, "columns": columns, "scales": scales, "biases": list(layer.biases)}


def _clamp(v: int, low: int, high: int) -> int:
    return low if v < low else high if v > high else v


def _nearest_away(x: Fraction) -> int:
    """x rounded to the nearest integer, halves away from zero."""
    floor = x.numerator // x.denominator
    frac = x - floor
    up = frac > Fraction(1, 2) or (frac == Fraction(1, 2) and x > 0)
    return floor + 1 if up else floor


def _accumulators(layer: dict, bias: list[int], act) -> tuple[list[int], int, int]:
    """(acc per position and channel, out height, out width); a dense layer has height = width = 1."""
    x, h, w, c = act
    if layer["kind"] == "dense":
        return [_clamp(sum(map(mul, x, col)) + b, *INT32) for col, b in zip(layer["columns"], bias)], 1, 1
    out = []
    for i in range(h - 2):
        for j in range(w - 2):
            patch = [x[((i + a) * w + j + b) * c + k] for a in range(3) for b in range(3) for k in range(c)]
            out += [_clamp(sum(map(mul, patch, col)) + bb, *INT32) for col, bb in zip(layer["columns"], bias)]
    return out, h - 2, w - 2


def _floor_log2(r: Fraction) -> int:
    e = r.numerator.bit_length() - r.denominator.bit_length()
    return e if r >= Fraction(2) ** e else e - 1


def _requantizer(r: Fraction):
    """acc (>= 0) -> uint8 for the real ratio r, by the design's M0 / 2**n rule (M0 in [2**30, 2**31])."""
    n = 30 - _floor_log2(r) if r else 99
    if n < 1:       # r >= 2**30: one accumulator step is already beyond 255
        return lambda acc: 255 if acc else 0
    if n > 62:      # r < 2**-32: every int32 accumulator rounds to 0
        return lambda acc: 0
    m0 = _nearest_away(r * 2**n)
    assert 2**30 <= m0 <= 2**31
    return lambda acc: min(255, (acc * m0 + 2**(n - 1)) >> n)


def _output(layer: dict, funcs, accs: list[int], h: int, w: int):
    cout = len(funcs)
    y = [funcs[i % cout](a) for i, a in enumerate(accs)]
    if layer["kind"] == "dense":
        return y, 1, 1, cout
    h2, w2 = h // 2, w // 2
    pooled = [max(y[((2 * i + a) * w + 2 * j + b) * cout + k] for a in (0, 1) for b in (0, 1))
              for i in range(h2) for j in range(w2) for k in range(cout)]
    return pooled, h2, w2, cout


def _calibrate(layers: list[dict], acts: list) -> list[tuple]:
    """Per layer (bias in accumulator units, requantizer per channel or None for the last)."""
    scale, plan = Fraction(1, 255), []
    for index, layer in enumerate(layers):
        # a channel of scale 0 has zero weights: it is the constant relu(b), counted in units of s_in (s_w = 1)
        units = [scale * (Fraction(s, 2**32) if s else 1) for s in layer["scales"]]
        bias = [_clamp(_nearest_away(Fraction(b, 2**24) / u), *INT32) for b, u in zip(layer["biases"], units)]
        if index == len(layers) - 1:
            plan.append((bias, None))
            break
        runs = [_accumulators(layer, bias, act) for act in acts]
        runs = [([max(a, 0) for a in accs], h, w) for accs, h, w in runs]
        cout = len(units)
        top = max((accs[i] * units[i % cout] for accs, _, _ in runs for i in range(len(accs))), default=0)
        out_scale = top / 255 if top else Fraction(1, 255)
        funcs = [_requantizer(u / out_scale) for u in units]
        plan.append((bias, funcs))
        acts = [_output(layer, funcs, accs, h, w) for accs, h, w in runs]
        scale = out_scale
    return plan


def _forward(layers: list[dict], plan: list[tuple], act) -> list[int]:
    for layer, (bias, funcs) in zip(layers, plan):
        accs, h, w = _accumulators(layer, bias, act)
        if funcs is None:
            return accs
        act = _output(layer, funcs, [max(a, 0) for a in accs], h, w)
    raise AssertionError("the last layer returns")
