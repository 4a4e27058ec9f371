"""What a round produces, one record type per fact, and the hook the rollup layer plugs into.

Accuracies are carried as exact integer basis points (`dapp.mad.accuracy_bps`), which is what the chain
records, and as floats for people. `RoundObserver` is the per-round hook: the round loop calls
`on_validator_report` once per validator after it has judged and aggregated its group, and
`on_round_closed` once the manager has built the global model. An observer may block (e.g. wait for the
rollup to accept the inputs) and may raise to stop the run before the next round starts.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Contribution:
    """One trainer's update as its validator judged it. `malicious`/`attacked` are ground truth for metrics."""

    trainer_id: int
    validator_id: int
    accuracy: float
    accuracy_bps: int
    num_examples: int
    accepted: bool
    malicious: bool
    attacked: bool


@dataclass(frozen=True)
class ValidatorReport:
    """A validator's round: its reference accuracy (MAD only), every contribution, its model's digest."""

    round: int
    validator_id: int
    strategy: str
    own_accuracy: float | None
    own_accuracy_bps: int | None
    contributions: tuple[Contribution, ...]
    model_file: str
    model_sha256: str
    training_s: float
    validation_s: float
    aggregation_s: float

    @property
    def accepted(self) -> int:
        return sum(c.accepted for c in self.contributions)

    @property
    def rejected(self) -> int:
        return sum(not c.accepted for c in self.contributions)

    @property
    def rejected_malicious(self) -> int:
        return sum((not c.accepted) and c.malicious for c in self.contributions)


@dataclass(frozen=True)
class ValidatorResult:
    """The manager's view of one validator's aggregated model, scored on the manager's test set."""

    validator_id: int
    own_accuracy: float | None
    own_accuracy_bps: int | None
    aggregated_accuracy: float
    aggregated_accuracy_bps: int
    accepted: int
    rejected: int
    rejected_malicious: int
    model_file: str
    model_sha256: str


@dataclass(frozen=True)
class RoundRecord:
    """One closed round: the global model's result, each validator's, every contribution, the timings."""

    round: int
    global_accuracy: float
    global_accuracy_bps: int
    global_loss: float
    global_model_file: str
    global_sha256: str
    best_validator: int
    validators: tuple[ValidatorResult, ...]
    contributions: tuple[Contribution, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class RoundObserver(Protocol):
    """Per-round hook (the rollup layer implements it); both calls may block and may raise to stop."""

    def on_validator_report(self, report: ValidatorReport) -> None: ...

    def on_round_closed(self, record: RoundRecord) -> None: ...


class Observers:
    """Several observers as one, called in the order given (a blocking one delays those after it)."""

    def __init__(self, *observers: RoundObserver) -> None:
        self.observers = observers

    def on_validator_report(self, report: ValidatorReport) -> None:
        for observer in self.observers:
            observer.on_validator_report(report)

    def on_round_closed(self, record: RoundRecord) -> None:
        for observer in self.observers:
            observer.on_round_closed(record)
