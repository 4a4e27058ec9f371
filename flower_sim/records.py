"""What a round produces, one record type per fact, and the hook the rollup layer plugs into.

Digests are bytes (keccak256 of a model's FRQ1 bytes, `dapp.qmodel.digest`: what the rollup commits and
recomputes); `as_dict` turns them into hex for JSON, `from_dict` back.
Accuracies are carried as exact integer basis points (`dapp.mad.accuracy_bps`), which is what the chain
records, and as floats for people. `RoundObserver` is the per-round hook: the round loop calls
`on_validator_report` once per validator after it has judged and aggregated its group, and
`on_round_closed` once the manager has built the global model. An observer may block and may raise to stop
the run (the rollup recorder hands a round's close to a worker and raises its error before the next round's first
report is sent).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # type hints only: signatures imports eth-account
    from flower_sim.signatures import RollupTask


QOS_KEYS = ("global_violation_precision", "global_violation_recall", "test_violation_rate")


def json_ready(value):
    """`value` with every bytes (a digest) as hex, for JSON."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


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
    update_digest: bytes = b""  # keccak256 of the update's FRQ1 bytes, as the validator computed it
    signature: bytes = b""  # the trainer's EIP-712 `Update` signature (64 bytes); empty when the run signs nothing
    receipt: bytes = b""  # the validator's EIP-712 `Receipt` for this update (64 bytes), which the trainer keeps
    # --strategy trust (`dapp.trust_rule`): the update's direction against the validator's own update (cosine, bps)
    # and its size against it (hundredths); 0 for every other strategy
    cosine_bps: int = 0
    norm_centi: int = 0
    reason: str = ""  # why a validating strategy (mad, trust) rejected it, in words; "" when accepted or not judged
    share_bps: int = 0  # --payout shapley: its share of the group's round budget, by its Shapley value (bps)

    @classmethod
    def from_dict(cls, document: dict) -> Contribution:
        fields = dict(document)
        for name in ("update_digest", "signature", "receipt"):
            fields[name] = bytes.fromhex(fields.get(name, ""))
        return cls(**fields)


@dataclass(frozen=True)
class ValidatorReport:
    """A validator's round: its reference accuracy (MAD only), every contribution, its model's digest (the
    keccak256 of the FRQ1 file `model_file`)."""

    round: int
    validator_id: int
    strategy: str
    own_accuracy: float | None
    own_accuracy_bps: int | None
    contributions: tuple[Contribution, ...]
    model_file: str
    model_digest: bytes
    training_s: float
    validation_s: float
    aggregation_s: float
    model: bytes = field(default=b"", repr=False, compare=False)  # its FRQ1 bytes, for observers; not in as_dict
    # trainer id -> its update's FRQ1 bytes (what the trainer keeps of its own update, and the validator received):
    # the evidence a disputed update is posted with; for observers in this process, not in as_dict
    updates: dict[int, bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def accepted(self) -> int:
        return sum(c.accepted for c in self.contributions)

    @property
    def rejected(self) -> int:
        return sum(not c.accepted for c in self.contributions)

    @property
    def rejected_malicious(self) -> int:
        return sum((not c.accepted) and c.malicious for c in self.contributions)

    def as_dict(self) -> dict:
        document = asdict(self)
        del document["model"], document["updates"]
        return json_ready(document)

    @classmethod
    def from_dict(cls, document: dict) -> ValidatorReport:
        """The inverse of `as_dict` (what a validator sends the manager over HTTP)."""
        fields = dict(document)
        fields["contributions"] = tuple(Contribution.from_dict(c) for c in fields["contributions"])
        fields["model_digest"] = bytes.fromhex(fields["model_digest"])
        return cls(**fields)


@dataclass(frozen=True)
class ValidatorResult:
    """The manager's view of one validator's aggregated model (its FRQ1 bits, dequantized), scored with Keras on
    the manager's test set."""

    validator_id: int
    own_accuracy: float | None
    own_accuracy_bps: int | None
    aggregated_accuracy: float
    aggregated_accuracy_bps: int
    accepted: int
    rejected: int
    rejected_malicious: int
    model_file: str
    model_digest: bytes


@dataclass(frozen=True)
class RoundRecord:
    """One closed round: the global model's result, each validator's, every contribution, the timings.

    `global_integer_bps` is the global model's accuracy by the rollup's integer inference (`dapp.qnn`) on the
    task's public test set (None when not computed). `global_model` holds the global's FRQ1 bytes, for the
    observers, never in `as_dict`."""

    round: int
    global_accuracy: float
    global_accuracy_bps: int
    global_loss: float
    global_model_file: str
    global_digest: bytes
    best_validator: int
    validators: tuple[ValidatorResult, ...]
    contributions: tuple[Contribution, ...]
    timings: dict[str, float] = field(default_factory=dict)
    global_integer_bps: int | None = None
    global_model: bytes = field(default=b"", repr=False, compare=False)
    # the QoS task only (None otherwise, and then not in as_dict): the global model's precision and recall on the
    # violation class over the manager's test set, and the share of that set's windows that are violations
    global_violation_precision: float | None = None
    global_violation_recall: float | None = None
    test_violation_rate: float | None = None

    def as_dict(self) -> dict:
        document = asdict(self)
        del document["global_model"]
        for key in QOS_KEYS:
            if document[key] is None:
                del document[key]
        return json_ready(document)


class RoundObserver(Protocol):
    """Per-round hook (the rollup layer implements it); both calls may block and may raise to stop."""

    def on_validator_report(self, report: ValidatorReport) -> None: ...

    def on_round_closed(self, record: RoundRecord) -> None: ...


class RollupLink(Protocol):
    """What the round loop asks of a run's rollup side (`rollup_roles.RollupRecorder`): the task the trainers and
    validators sign their evidence for, which validators' models the rollup averages into a round's global model
    (a validator silent on the rollup reveals none), and the rollup's numbers once a round is closed."""

    def signing_task(self) -> RollupTask | None: ...

    def averaged(self, server_round: int, validators: Sequence[int]) -> Sequence[int]: ...

    def round_figures(self, server_round: int) -> dict | None:
        """The rollup's own numbers for a closed round (its scores, its global model), for metrics.json."""

    def finish(self) -> None:
        """After the last round: wait until the rollup has closed it (raises if it could not)."""


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
