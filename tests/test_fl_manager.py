"""The manager's rules: the global model is the rollup's integer mean, the best validator is closest in accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from flower_sim.manager import closest_validator


def test_best_validator_is_the_one_whose_accuracy_is_closest_to_the_global_model():
    assert closest_validator([9_100, 9_350], global_bps=9_300) == 1
    assert closest_validator([9_290, 9_350], global_bps=9_300) == 0


def test_equal_distance_goes_to_the_lower_validator_id():
    assert closest_validator([9_200, 9_400], global_bps=9_300) == 0
    assert closest_validator([9_500, 9_200, 9_400], global_bps=9_300) == 1


def _logreg(seed: int) -> list[np.ndarray]:
    """Float weights of the `logreg` architecture (784 x 10 kernel, 10 biases), drawn from `seed`."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.05, (784, 10)).astype(np.float32), rng.normal(0, 0.1, 10).astype(np.float32)]


def _closer(tmp_path, observer=None, rollup=None):
    from types import SimpleNamespace

    from flower_sim.manager import RoundCloser
    from flower_sim.models import Score
    from flower_sim.quantize import save_frq1

    manager = SimpleNamespace(evaluate=lambda w: Score(9_000, 10_000, 0.1), integer_accuracy=lambda m: 8_800,
                              violations=lambda score: {},  # an MNIST manager: no QoS figures
                              save_global=lambda r, m: (f"round-{r:03d}.frq",
                                                        save_frq1(tmp_path / f"round-{r:03d}.frq", m)))
    return RoundCloser(manager, observer, rollup)


def _round(v: int, model: bytes):
    from dapp.qmodel import digest
    from flower_sim.records import ValidatorReport
    from flower_sim.validator import ValidatorRound

    report = ValidatorReport(1, v, "mad", None, None, (), f"m{v}.frq", digest(model), 1.0, 0.5, 0.1)
    return ValidatorRound(model, report)


def test_the_managers_global_is_the_rollups_integer_mean_and_the_next_round_trains_from_its_bits(tmp_path):
    from dapp.qmodel import average, decode, digest, encode
    from flower_sim.quantize import dequantize, to_frq1

    models = [to_frq1(_logreg(seed)) for seed in (1, 2)]
    closed = _closer(tmp_path).close(1, [_round(v, m) for v, m in enumerate(models)])
    rollup_global = encode(average([decode(m) for m in models]))
    assert closed.record.global_digest == digest(rollup_global)
    assert (tmp_path / "round-001.frq").read_bytes() == rollup_global == closed.record.global_model
    assert all(np.array_equal(a, b) for a, b in zip(closed.global_weights, dequantize(decode(rollup_global))))
    assert closed.record.global_integer_bps == 8_800 and "global_model" not in closed.record.as_dict()


def test_a_validator_silent_on_the_rollup_is_left_out_of_the_global_as_the_rollup_leaves_it_out(tmp_path):
    from types import SimpleNamespace

    from dapp.qmodel import digest
    from flower_sim.quantize import to_frq1

    models = [to_frq1(_logreg(seed)) for seed in (1, 2)]
    rollup = SimpleNamespace(averaged=lambda r, validators: [v for v in validators if v != 1])
    closed = _closer(tmp_path, rollup=rollup).close(1, [_round(v, m) for v, m in enumerate(models)])
    assert closed.record.global_digest == digest(models[0])  # the mean of one model is that model, byte for byte
    assert closed.record.global_integer_bps is None  # the rollup states it (GlobalModel): not computed twice


def test_the_round_close_tells_the_observers_each_report_once_then_the_close(tmp_path):
    from types import SimpleNamespace

    from flower_sim.quantize import to_frq1

    class Seen:
        def __init__(self):
            self.calls = []

        def on_validator_report(self, report):
            self.calls.append(("report", report.validator_id))

        def on_round_closed(self, record):
            self.calls.append(("closed", record.round))

    rounds = [_round(v, to_frq1(_logreg(v))) for v in range(2)]
    seen = Seen()
    closer = _closer(tmp_path, seen)
    closer.report(rounds[0].report)
    closed = closer.close(1, rounds)
    assert seen.calls == [("report", 0), ("report", 1), ("closed", 1)]
    assert closed.record.best_validator == 0
    assert closed.record.timings["training_s"] == 2.0
