"""The manager's rules: the global model is the plain mean, the best validator is closest in accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from flower_sim.manager import average, closest_validator
from flower_sim.npz import load_weights, save_weights


def test_best_validator_is_the_one_whose_accuracy_is_closest_to_the_global_model():
    assert closest_validator([9_100, 9_350], global_bps=9_300) == 1
    assert closest_validator([9_290, 9_350], global_bps=9_300) == 0


def test_equal_distance_goes_to_the_lower_validator_id():
    assert closest_validator([9_200, 9_400], global_bps=9_300) == 0
    assert closest_validator([9_500, 9_200, 9_400], global_bps=9_300) == 1


def test_global_model_is_the_unweighted_mean_of_the_validator_models():
    a = [np.zeros((2, 2), dtype=np.float32), np.array([1.0, 3.0], dtype=np.float32)]
    b = [np.full((2, 2), 4.0, dtype=np.float32), np.array([3.0, 5.0], dtype=np.float32)]
    mean = average([a, b])
    assert mean[0] == pytest.approx(np.full((2, 2), 2.0)) and mean[1] == pytest.approx([2.0, 4.0])
    assert mean[0].dtype == np.float32


def test_npz_round_trip_and_digest_depend_only_on_the_weights(tmp_path):
    weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)]
    d1 = save_weights(tmp_path / "a.npz", weights)
    d2 = save_weights(tmp_path / "b.npz", [w.copy() for w in weights])
    d3 = save_weights(tmp_path / "c.npz", [weights[0], weights[1] * 2])
    assert d1 == d2 != d3 and len(d1) == 32  # SHA-256 bytes
    assert all(np.array_equal(x, y) for x, y in zip(load_weights(tmp_path / "a.npz"), weights))


def test_the_round_close_tells_the_observers_each_report_once_then_the_close(tmp_path):
    from types import SimpleNamespace

    from flower_sim.manager import RoundCloser
    from flower_sim.models import Score
    from flower_sim.records import ValidatorReport
    from flower_sim.validator import ValidatorRound

    class Seen:
        def __init__(self):
            self.calls = []

        def on_validator_report(self, report):
            self.calls.append(("report", report.validator_id))

        def on_round_closed(self, record):
            self.calls.append(("closed", record.round))

    manager = SimpleNamespace(evaluate=lambda w: Score(int(w[0][0]), 10, 1.0),
                              save_global=lambda r, w: (f"round-{r:03d}.npz", "ab" * 32))
    report = lambda v: ValidatorReport(1, v, "mad", None, None, (), f"m{v}.npz", "cd" * 32, 1.0, 0.5, 0.1)
    rounds = [ValidatorRound([np.full(2, 2.0 * v + 1)], report(v)) for v in range(2)]
    seen = Seen()
    closer = RoundCloser(manager, seen)
    closer.report(rounds[0].report)
    closed = closer.close(1, rounds)
    assert seen.calls == [("report", 0), ("report", 1), ("closed", 1)]
    assert closed.record.best_validator == 0 and closed.global_weights[0] == pytest.approx([2.0, 2.0])
    assert closed.record.timings["training_s"] == 2.0
