"""The global model manager: initial model, the global model as the mean of the validators' models,
scoring on the held-out test set, the best validator of the round, the per-round model files, and the close
of a round (`RoundCloser`), the same whether the validators run in this process or across a network.

The global model is computed exactly as the rollup computes it (`global_model`): `dapp.qmodel.average` of the
validators' FRQ1 models in validator (group) order, so its digest is the one the rollup's `GlobalModel` notice
states, and the next round trains from `dequantize` of exactly those bits (also when no rollup records the run).
Its files: `round-NNN.frq` (the global's FRQ1 bytes) beside each validator's `round-NNN-validator-V.frq`.
Accuracies for metrics.json stay Keras's on the dequantized weights over the whole held-out test set; the
global's accuracy by the rollup's integer inference (`dapp.qnn`) on the public test set is recorded beside it
when no rollup records the run (when one does, its own numbers go to metrics.json: `rollup` in each round).

Best validator (the seed paper: "the contribution closest to the average of all validators"): the
validator whose aggregated model's accuracy on the manager's test set is closest to the global model's
accuracy there, i.e. argmin over v of |bps(model_v) - bps(global)|, ties to the lower validator id.
A weight-space distance to the average cannot serve: with two validators both are exactly equidistant
from their midpoint, so they would tie by construction. The rollup applies this same rule to the
accuracies the producer reports.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dapp import qnn
from dapp.qmodel import arch_named, average, decode, encode
from flower_sim import models
from flower_sim.data import Dataset, Splits, rollup_test_set
from flower_sim.models import TASK_MODELS, Score
from flower_sim.quantize import from_frq1, save_frq1
from flower_sim.records import RollupLink, RoundObserver, RoundRecord, ValidatorReport, ValidatorResult
from flower_sim.validator import ValidatorRound

TimingRule = Callable[[list[ValidatorReport], float], dict[str, float]]


def closest_validator(validator_bps: list[int], global_bps: int) -> int:
    """Index of the validator accuracy closest to the global accuracy; ties go to the lower index."""
    if not validator_bps:
        raise ValueError("no validators")
    return min(range(len(validator_bps)), key=lambda v: (abs(validator_bps[v] - global_bps), v))


def global_model(validator_models: Sequence[bytes]) -> bytes:
    """The round's global model as the rollup computes it: the exact integer mean (`dapp.qmodel.average`) of the
    validators' FRQ1 models, in validator (group) order, as FRQ1 bytes."""
    return encode(average([decode(m) for m in validator_models]))


class Manager:
    """Holds the test set and writes the global model of every round."""

    def __init__(self, model_kind: str, seed: int, splits: Splits, out_dir: Path) -> None:
        self.model_kind = model_kind
        self.seed = seed
        self.splits = splits
        self.out_dir = out_dir
        self._public: qnn.TestSet | None = None

    @property
    def test(self) -> Dataset:
        """The manager's held-out test set."""
        return self.splits.test

    @property
    def public_test(self) -> qnn.TestSet:
        """The task's public test set (the first rows of the held-out one) as the rollup parses it."""
        if self._public is None:
            self._public = qnn.parse_test_set(rollup_test_set(self.splits), arch_named(self.model_kind))
        return self._public

    @property
    def qos(self) -> bool:
        return self.model_kind in TASK_MODELS["qos"]

    def integer_accuracy(self, model: bytes) -> int:
        """`model`'s accuracy in bps by the rollup's integer inference on the public test set."""
        return qnn.accuracy(decode(model), self.public_test)

    def violations(self, score: Score) -> dict[str, float]:
        """The QoS task's per-round figures of the global model's `score` (RoundRecord's keys); none for MNIST."""
        if not self.qos:
            return {}
        return {"global_violation_precision": score.precision, "global_violation_recall": score.recall,
                "test_violation_rate": score.actual_positive / score.total}

    def initial_weights(self) -> list[np.ndarray]:
        return models.initial_weights(self.model_kind, self.seed)

    def evaluate(self, weights: list[np.ndarray]) -> Score:
        model = models.shared_model(self.model_kind, 0.01, "manager")
        return models.score(model, weights, self.test.x, self.test.y)

    def save_global(self, server_round: int, model: bytes) -> tuple[str, bytes]:
        """Write `round-NNN.frq`; returns (file name, digest)."""
        path = self.out_dir / f"round-{server_round:03d}.frq"
        return path.name, save_frq1(path, model)


def sequential_timings(reports: list[ValidatorReport], averaging_s: float) -> dict[str, float]:
    """A round's seconds when the validators run one after the other (in one process): their sums."""
    return {"training_s": sum(r.training_s for r in reports),
            "validation_s": sum(r.validation_s for r in reports),
            "aggregation_s": sum(r.aggregation_s for r in reports) + averaging_s}


def no_timings(reports: list[ValidatorReport], averaging_s: float) -> dict[str, float]:
    """For a transport that splits the round's seconds itself once the round is over."""
    return {}


@dataclass(frozen=True)
class ClosedRound:
    """A round as the manager closed it: its record, the next global model, and what the close cost."""

    record: RoundRecord
    global_weights: list[np.ndarray]
    averaging_s: float
    scoring_s: float
    observers_s: float  # seconds the observers held the round (the rollup's share, when it records it)


class RoundCloser:
    """The manager's close of every round: the validators' models and reports in, the round's record and the
    global model out, the observers told of each report (once) and of the close."""

    def __init__(self, manager: Manager, observer: RoundObserver | None = None,
                 rollup: RollupLink | None = None) -> None:
        self.manager = manager
        self.observer = observer
        self.rollup = rollup
        self._global: bytes | None = None  # the last round's global model (FRQ1)
        self._told: set[tuple[int, int]] = set()
        self._observers_s = 0.0

    def report(self, report: ValidatorReport) -> None:
        """Tell the observers of a validator's report now, before the round closes (in one process the
        rollup then records it while the next validator works)."""
        self._told.add((report.round, report.validator_id))
        if self.observer is not None:
            started = time.perf_counter()
            self.observer.on_validator_report(report)
            self._observers_s += time.perf_counter() - started

    def close(self, server_round: int, rounds: Sequence[ValidatorRound],
              timings: TimingRule = sequential_timings) -> ClosedRound:
        """Average the validators' models (in validator order) as the rollup does, score them and the mean on the
        test set, write `round-NNN.frq`, then tell the observers of every report not yet told and of the closed
        round. When a rollup records the run, the mean is over the models it will average (a silent validator's
        is left out; none left: the last global stands, as on the rollup)."""
        reports = [r.report for r in rounds]
        for report in reports:
            if (report.round, report.validator_id) not in self._told:
                self.report(report)
        started = time.perf_counter()
        averaged = self._averaged(server_round, rounds)
        global_bytes = global_model([r.model for r in averaged]) if averaged or self._global is None \
            else self._global
        global_weights = from_frq1(global_bytes)
        averaging_s = time.perf_counter() - started
        started = time.perf_counter()
        global_score = self.manager.evaluate(global_weights)
        violations = self.manager.violations(global_score)
        scores = [self.manager.evaluate(from_frq1(r.model)) for r in rounds]
        # With a rollup, its GlobalModel notice states this number for the same bits: not computed twice (~1 s).
        integer_bps = self.manager.integer_accuracy(global_bytes) if self.rollup is None else None
        scoring_s = time.perf_counter() - started
        file_name, digest = self.manager.save_global(server_round, global_bytes)
        self._global = global_bytes
        results = tuple(ValidatorResult(
            validator_id=r.validator_id, own_accuracy=r.own_accuracy, own_accuracy_bps=r.own_accuracy_bps,
            aggregated_accuracy=s.accuracy, aggregated_accuracy_bps=s.bps, accepted=r.accepted,
            rejected=r.rejected, rejected_malicious=r.rejected_malicious, model_file=r.model_file,
            model_digest=r.model_digest) for r, s in zip(reports, scores))
        record = RoundRecord(
            round=server_round, global_accuracy=global_score.accuracy, global_accuracy_bps=global_score.bps,
            global_loss=global_score.loss, global_model_file=file_name, global_digest=digest,
            best_validator=closest_validator([s.bps for s in scores], global_score.bps), validators=results,
            contributions=tuple(c for r in reports for c in r.contributions),
            timings=timings(reports, averaging_s), global_integer_bps=integer_bps, global_model=global_bytes,
            **violations)
        if self.observer is not None:
            started = time.perf_counter()
            self.observer.on_round_closed(record)
            self._observers_s += time.perf_counter() - started
        observers_s, self._observers_s = self._observers_s, 0.0
        return ClosedRound(record, global_weights, averaging_s, scoring_s, observers_s)

    def _averaged(self, server_round: int, rounds: Sequence[ValidatorRound]) -> list[ValidatorRound]:
        if self.rollup is None:
            return list(rounds)
        counted = set(self.rollup.averaged(server_round, [r.report.validator_id for r in rounds]))
        return [r for r in rounds if r.report.validator_id in counted]
