"""Every rollup input and notice of fedrollup, defined once as data, with its encoder and decoder.

Wire format: ``tag ‖ abi.encode(fields)``, where the 4-byte tag is the Solidity-style selector
``keccak256("Name(type1,type2,...)")[:4]``; any input can therefore be built with Foundry's
``cast calldata "Register(uint64,uint8,uint8)" 1 0 0``.

The backend, the FL roles and the auditors' console all import this module:

    payload = CreateTask(task_id=1, mad_bps=2500, ...).encode()
    message = decode_input(payload)          # -> CreateTask(...), or raises MessageDecodeError
    notice = decode_notice(notice_payload)   # -> RewardPaid(...), ...

A contribution inside ``ValidatorReport`` is one packed 32-byte word (see `pack_contribution`).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError
from eth_utils import keccak, to_checksum_address

TAG_SIZE = 4
ROLE_TRAINER = 0
ROLE_VALIDATOR = 1
ROLE_NAMES = {ROLE_TRAINER: "trainer", ROLE_VALIDATOR: "validator"}

# Defaults a publisher gets from Python and the command line (in L1 blocks; 300 blocks = 1 hour at 12 s).
# On the wire every deadline is explicit: CreateTask carries the numbers, and 0 is refused.
DEFAULT_REGISTRATION_BLOCKS = 300
DEFAULT_REPORT_BLOCKS = 150
DEFAULT_CLOSE_BLOCKS = 50
DEFAULT_TRAINERS_PER_GROUP = 100

# Limits, so that every input fits the InputBox and every output a Cartesi Machine (docs/PROTOCOL.md, "Limits"):
# @cartesi/rollups 2.2.0 CanonicalMachine.INPUT_MAX_SIZE = 1 << 16 bytes for the whole EvmAdvance (payload at
# most 65,216 bytes); machine-emulator 0.19 CMIO tx buffer = 2 MiB per output or report; rollups-node v2 at
# most 65,536 outputs per input.
MAX_INPUT_PAYLOAD = 65_216
MAX_OUTPUT_BYTES = 2 * 1024 * 1024
MAX_OUTPUTS_PER_INPUT = 65_536
MAX_TASK_TRAINERS = 10_000  # groups x trainersPerGroup: the scale whose slowest input is measured
MAX_TRAINERS_PER_GROUP = MAX_TASK_TRAINERS  # a group's report past one input comes in parts (ReportPart)
# Entries per report input, as the recorder slices a report: a full ValidatorReport is 4 + 8 x 32 + 4 x 32 + 500 x
# 128 = 64,388 bytes, a full ReportPart 4 + 10 x 32 + 4 x 32 + 500 x 128 = 64,452 (the rollup checks only the input
# limit, 506 and 505 entries).
REPORT_INPUT_TRAINERS = 500
MAX_REPORT_PARTS = 64  # parts of one report: 10,000 trainers need 20 of 500; bounds what a partial report holds
STAKES_PAGE = 1_000  # trainers per TrainerStakes notice (64,256 bytes)
# Blobs (test sets, models, updates) travel in chunks: every chunk but the last carries exactly CHUNK_DATA bytes,
# so that a full ModelChunk is 4 + 6 x 32 + 32 + 64,960 = 65,188 bytes, inside MAX_INPUT_PAYLOAD.
CHUNK_DATA = 64_960
MAX_CHUNKS = 64  # 4.1 MB per blob: the 10x model (589,076 B) needs 10
MAX_TEST_SET = 2_000  # samples (images, QoS windows) in a task's public test set: bounds the rollup's scoring per model
DEFAULT_CONTEST_BLOCKS = 20
DEFAULT_CHALLENGES_PER_ROUND = 2
MAX_OPEN_ROUNDS = 64  # CreateTask.openRounds: bounds the rounds whose reports, reveals and disputes the rollup holds

# CreateTask.dp_mechanism: the differential privacy its trainers promise to add to their updates (issue 17).
# ε in thousandths, δ in units of 10^-18, the clipping norm in millionths: integers, as everything in the rollup.
DP_NONE = 0
DP_GAUSSIAN = 1  # L2 clipping, Gaussian noise: (ε, δ)-DP per round
DP_LAPLACE = 2  # L1 clipping, Laplace noise: pure ε-DP per round (δ = 0)
DP_NAMES = {DP_NONE: "none", DP_GAUSSIAN: "gaussian", DP_LAPLACE: "laplace"}
DP_EPSILON_SCALE = 1_000
DP_DELTA_SCALE = 10**18
DP_CLIP_SCALE = 1_000_000

# ModelScored.kind: what the scored blob is.
BLOB_VALIDATOR_MODEL = 0
BLOB_CONTESTED_UPDATE = 1
BLOB_CHALLENGED_UPDATE = 2
BLOB_NAMES = {BLOB_VALIDATOR_MODEL: "validator model", BLOB_CONTESTED_UPDATE: "contested update",
              BLOB_CHALLENGED_UPDATE: "challenged update"}

# Contested.kind / ContestResolved.kind: who disputes what.
DISPUTE_DROPPED = 0  # a trainer left out of its validator's report (contests with the validator's receipt)
DISPUTE_MISJUDGED = 1  # a trainer reported Negative
DISPUTE_CHALLENGED = 2  # a Positive the publisher challenged
DISPUTE_NAMES = {DISPUTE_DROPPED: "dropped trainer", DISPUTE_MISJUDGED: "misjudged trainer",
                 DISPUTE_CHALLENGED: "challenged Positive"}

# ValidatorPenalized.reason.
PENALTY_UNREVEALED = 0  # committed a model in its report, never posted it
PENALTY_CONTEST = 1  # a trainer's contest against it was upheld
PENALTY_CHALLENGE = 2  # a Positive it reported failed the publisher's challenge
PENALTY_NAMES = {PENALTY_UNREVEALED: "model not revealed", PENALTY_CONTEST: "contest upheld",
                 PENALTY_CHALLENGE: "challenge upheld"}

# TaskCancelled.reason: why the task could not go on (see docs/PROTOCOL.md, "When someone is late").
CANCEL_UNFUNDED = 0
CANCEL_NO_VALIDATOR = 1
CANCEL_GROUPS_SILENT = 2
CANCEL_NO_PRODUCER = 3
CANCEL_NO_TEST_SET = 4
CANCEL_NAMES = {CANCEL_UNFUNDED: "unfunded when its registration window closed",
                CANCEL_NO_VALIDATOR: "no validator took a seat in its registration window",
                CANCEL_GROUPS_SILENT: "every group missed the report deadline",
                CANCEL_NO_PRODUCER: "every producer in the election order missed its close deadline",
                CANCEL_NO_TEST_SET: "its public test set was not posted in its registration window"}

# CreateTask.validation: the rule that decides each reported update (docs/PROTOCOL.md, "Validation rules").
VALIDATION_MAD = 0  # the seed paper's Maximum Acceptable Deviation on the validator's accuracies (dapp.mad)
VALIDATION_TRUST = 1  # direction and size of the update against the validator's own, with standing (dapp.trust_rule)
VALIDATION_NAMES = {VALIDATION_MAD: "mad", VALIDATION_TRUST: "trust"}

# CreateTask.payout: how a group's round budget reaches its Positives (docs/PROTOCOL.md, "Payout rules").
PAYOUT_PER_POSITIVE = 0  # every Positive earns rewardPerPositive (the seed paper's rule)
PAYOUT_SHAPLEY = 1  # each Positive earns groupBudget x shareBps // 10,000, the share its validator reported
PAYOUT_NAMES = {PAYOUT_PER_POSITIVE: "per-positive", PAYOUT_SHAPLEY: "shapley"}

# ProducerElected.rule: why this validator produces the next round (see docs/PROTOCOL.md).
RULE_GREATEST_STAKE = 0
RULE_BEST_CONTRIBUTION = 1
RULE_RANDAO_DRAW = 2
RULE_NAMES = {RULE_GREATEST_STAKE: "greatest stake", RULE_BEST_CONTRIBUTION: "tie, best contribution",
              RULE_RANDAO_DRAW: "tie, prev_randao draw"}


class MessageDecodeError(ValueError):
    """A payload that is not a well-formed fedrollup message: unknown tag, truncated or malformed ABI."""


_NO_DEFAULT: Any = dataclasses.MISSING


def abi(abi_type: str, default: Any = _NO_DEFAULT) -> Any:
    """Declare a message field with its ABI type (and, for Python callers only, a default value)."""
    return field(default=default, metadata={"abi": abi_type})


def normalize_address(value: str | bytes) -> str:
    """An address as lowercase ``0x`` + 40 hex digits (the form every comparison in fedrollup uses)."""
    if isinstance(value, bytes):
        if len(value) != 20:
            raise ValueError(f"an address has 20 bytes, got {len(value)}")
        return "0x" + value.hex()
    text = value.lower()
    if not text.startswith("0x") or len(text) != 42 or any(c not in "0123456789abcdef" for c in text[2:]):
        raise ValueError(f"not an address: {value!r}")
    return text


class Message:
    """Base of every message: its tag and encoding derive from the dataclass fields' ABI types."""

    KIND: ClassVar[str] = ""  # "input" or "notice"

    @classmethod
    def abi_types(cls) -> list[str]:
        return list(_abi_types(cls))

    @classmethod
    def signature(cls) -> str:
        return f"{cls.__name__}({','.join(cls.abi_types())})"

    @classmethod
    def tag(cls) -> bytes:
        return _tag(cls)

    def values(self) -> list[Any]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def encode(self) -> bytes:
        """``tag ‖ abi.encode(fields)``; raises ValueError for a value its ABI type cannot hold."""
        try:
            return self.tag() + abi_encode(self.abi_types(), self.values())
        except EncodingError as err:
            raise ValueError(f"{type(self).__name__}: {err}") from None

    def as_dict(self) -> dict[str, Any]:
        """Field names to JSON-friendly values (bytes as 0x-hex, addresses checksummed)."""
        out: dict[str, Any] = {}
        for f, value in zip(dataclasses.fields(self), self.values()):  # type: ignore[arg-type]
            out[f.name] = _jsonable(value, f.metadata["abi"])
        return out


# A message class's ABI types and tag never change: computed once per class, not once per notice (a full
# group's ValidatorReport emits 4,000 notices; hashing each one's signature again took a quarter of its time).
@functools.cache
def _abi_types(cls: type[Message]) -> tuple[str, ...]:
    return tuple(f.metadata["abi"] for f in dataclasses.fields(cls))  # type: ignore[arg-type]


@functools.cache
def _tag(cls: type[Message]) -> bytes:
    return keccak(text=cls.signature())[:TAG_SIZE]


def _jsonable(value: Any, abi_type: str) -> Any:
    if abi_type.endswith("[]"):
        return [_jsonable(v, abi_type[:-2]) for v in value]
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class CreateTask(Message):
    """Publish a training task; the sender becomes its publisher (the manager). The rollup assigns the task's
    id (1, 2, … in the order tasks are created) and states it in `TaskCreated`: an id cannot be taken first."""

    KIND: ClassVar[str] = "input"
    mad_bps: int = abi("uint16")
    rounds: int = abi("uint16")
    groups: int = abi("uint8")
    round_trainer_budget: int = abi("uint256")
    reward_per_positive: int = abi("uint256")
    validator_reward: int = abi("uint256")
    validators: tuple[str, ...] = abi("address[]")  # the validator named for each group, by group
    test_set_digest: bytes = abi("bytes32")  # keccak256 of the public test set the publisher posts (TestSetChunk)
    test_set_size: int = abi("uint32")  # samples in it, 1..MAX_TEST_SET
    model_arch: int = abi("uint8")  # dapp.qmodel architecture id of every model and update (1 = the demo CNN)
    trainers_per_group: int = abi("uint32", DEFAULT_TRAINERS_PER_GROUP)
    registration_blocks: int = abi("uint32", DEFAULT_REGISTRATION_BLOCKS)
    report_blocks: int = abi("uint32", DEFAULT_REPORT_BLOCKS)
    close_blocks: int = abi("uint32", DEFAULT_CLOSE_BLOCKS)
    trainer_approval: bool = abi("bool", False)  # True: only trainers the publisher admitted may register
    contest_blocks: int = abi("uint32", DEFAULT_CONTEST_BLOCKS)  # reveal/contest window, then response window
    challenges_per_round: int = abi("uint8", DEFAULT_CHALLENGES_PER_ROUND)  # per group, by the publisher
    # The privacy budget the publisher promises its trainers (DP_* above; all 0: no DP); the rollup records it.
    dp_mechanism: int = abi("uint8", DP_NONE)
    dp_epsilon_milli: int = abi("uint32", 0)  # ε per round × 1000
    dp_delta_atto: int = abi("uint64", 0)  # δ per round and of the total × 10^18 (0 for Laplace)
    dp_clip_micro: int = abi("uint64", 0)  # clipping norm C × 10^6 (L2 for Gaussian, L1 for Laplace)
    dp_total_epsilon_milli: int = abi("uint32", 0)  # ε of all the task's rounds at δ, accounted, × 1000
    # keccak256 of the FRQ1 model round 1 trains from (0: not committed): a round's starting model may be committed
    # by several validators (each kept it, having accepted nothing), any other model by one only
    initial_model_digest: bytes = abi("bytes32", bytes(32))
    validation: int = abi("uint8", VALIDATION_MAD)  # VALIDATION_*: how reported updates are judged
    payout: int = abi("uint8", PAYOUT_PER_POSITIVE)  # PAYOUT_*: how the group budget is shared among Positives
    # rounds open on chain at once (1..MAX_OPEN_ROUNDS): round r takes reports once round r - openRounds closed, so
    # the recording of round r overlaps the training and reports of the next ones (1: one round at a time)
    open_rounds: int = abi("uint8", 1)


@dataclass(frozen=True)
class AdmitTrainers(Message):
    """The publisher admits trainers to a group of a task that registers trainers by approval."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    group: int = abi("uint8")
    trainers: tuple[str, ...] = abi("address[]")


@dataclass(frozen=True)
class CancelTask(Message):
    """The publisher ends a task that cannot go on; its unspent escrow comes back as a voucher."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")


@dataclass(frozen=True)
class Register(Message):
    """Join a task as trainer (role 0) or validator (role 1) of a group."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    role: int = abi("uint8")
    group: int = abi("uint8")


@dataclass(frozen=True)
class TestSetChunk(Message):
    """The publisher posts its public test set (``labels u8[N] ‖ pixels u8[N x 784]``, or for QoS ``labels ‖ cells
    ‖ features u8[N x 12]``) in chunks."""

    KIND: ClassVar[str] = "input"
    __test__ = False  # not a pytest test class (the name starts with Test)
    task_id: int = abi("uint64")
    index: int = abi("uint16")
    count: int = abi("uint16")
    data: bytes = abi("bytes")


@dataclass(frozen=True)
class ValidatorReport(Message):
    """A validator's round report: its own accuracy on its data (the MAD reference), the digest it commits its
    aggregated model to (keccak256 of the FRQ1 bytes, revealed later with ModelChunk), and per trainer one
    packed contribution word, the digest of the trainer's FRQ1 update and the trainer's EIP-712 ``Update``
    signature (EIP-2098: r, yParityAndS), all four arrays in the same order."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    validator_accuracy_bps: int = abi("uint16")
    model_digest: bytes = abi("bytes32")
    contributions: tuple[int, ...] = abi("uint256[]")
    update_digests: tuple[bytes, ...] = abi("bytes32[]")
    sig_r: tuple[bytes, ...] = abi("bytes32[]")
    sig_vs: tuple[bytes, ...] = abi("bytes32[]")


@dataclass(frozen=True)
class ReportPart(Message):
    """Part ``part`` (0-based) of ``parts`` of a validator's round report too large for one input: the report's
    head repeated (its accuracy and model commitment, equal in every part) and a slice of its trainers in
    `ValidatorReport`'s four arrays. The report counts once its last part is in, in part order whatever the
    arrival order; parts of a report left incomplete at the round's close are dropped with it."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    part: int = abi("uint16")
    parts: int = abi("uint16")
    validator_accuracy_bps: int = abi("uint16")
    model_digest: bytes = abi("bytes32")
    contributions: tuple[int, ...] = abi("uint256[]")
    update_digests: tuple[bytes, ...] = abi("bytes32[]")
    sig_r: tuple[bytes, ...] = abi("bytes32[]")
    sig_vs: tuple[bytes, ...] = abi("bytes32[]")


@dataclass(frozen=True)
class ModelChunk(Message):
    """One chunk of a model or update the rollup expects (a committed validator model, a contested or challenged
    update), addressed by its keccak256 digest. Anyone may send it; each sender's chunks are assembled apart."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    digest: bytes = abi("bytes32")
    index: int = abi("uint16")
    count: int = abi("uint16")
    data: bytes = abi("bytes")


@dataclass(frozen=True)
class Contest(Message):
    """A trainer disputes its validator's verdict: left out of the report (then ``receipt_*`` is the validator's
    EIP-712 ``Receipt`` signature for this update) or reported Negative (receipt ignored: send zeros)."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    update_digest: bytes = abi("bytes32")
    samples: int = abi("uint80")
    receipt_r: bytes = abi("bytes32")
    receipt_vs: bytes = abi("bytes32")


@dataclass(frozen=True)
class Challenge(Message):
    """The publisher disputes a Positive: its update must be posted and pass the task's rule on the public set."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    trainer: str = abi("address")


@dataclass(frozen=True)
class RoundClose(Message):
    """The producer whose turn it is closes a round. It carries no numbers: the rollup averages the revealed
    models into the global one and scores every model on the task's public test set itself."""

    KIND: ClassVar[str] = "input"
    task_id: int = abi("uint64")
    round: int = abi("uint16")


@dataclass(frozen=True)
class Withdraw(Message):
    """Pay the sender's whole withdrawable balance out as an Ether voucher."""

    KIND: ClassVar[str] = "input"


# --------------------------------------------------------------------------------------- notices


@dataclass(frozen=True)
class TaskCreated(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    publisher: str = abi("address")
    mad_bps: int = abi("uint16")
    rounds: int = abi("uint16")
    groups: int = abi("uint8")
    round_trainer_budget: int = abi("uint256")
    reward_per_positive: int = abi("uint256")
    validator_reward: int = abi("uint256")
    required_escrow: int = abi("uint256")
    validators: tuple[str, ...] = abi("address[]")
    trainers_per_group: int = abi("uint32")
    registration_deadline: int = abi("uint64")  # last block at which Register and funding are accepted
    report_blocks: int = abi("uint32")
    close_blocks: int = abi("uint32")
    trainer_approval: bool = abi("bool")
    test_set_digest: bytes = abi("bytes32")
    test_set_size: int = abi("uint32")
    model_arch: int = abi("uint8")
    contest_blocks: int = abi("uint32")
    challenges_per_round: int = abi("uint8")
    dp_mechanism: int = abi("uint8", DP_NONE)
    dp_epsilon_milli: int = abi("uint32", 0)
    dp_delta_atto: int = abi("uint64", 0)
    dp_clip_micro: int = abi("uint64", 0)
    dp_total_epsilon_milli: int = abi("uint32", 0)
    initial_model_digest: bytes = abi("bytes32", bytes(32))
    validation: int = abi("uint8", VALIDATION_MAD)
    payout: int = abi("uint8", PAYOUT_PER_POSITIVE)
    open_rounds: int = abi("uint8", 1)


@dataclass(frozen=True)
class TestSetPosted(Message):
    """The task's public test set is complete and hashes to the digest its CreateTask committed to."""

    KIND: ClassVar[str] = "notice"
    __test__ = False  # not a pytest test class (the name starts with Test)
    task_id: int = abi("uint64")
    digest: bytes = abi("bytes32")
    size: int = abi("uint32")


@dataclass(frozen=True)
class BlobRejected(Message):
    """A sender's chunks did not hash to the digest they were sent for: all of them were dropped."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    digest: bytes = abi("bytes32")
    sender: str = abi("address")


@dataclass(frozen=True)
class ModelScored(Message):
    """The rollup scored a posted model or update on the task's public test set (its own integer inference)."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    digest: bytes = abi("bytes32")
    kind: int = abi("uint8")  # BLOB_*
    accuracy_bps: int = abi("uint16")


@dataclass(frozen=True)
class GlobalModel(Message):
    """The round's global model: the rollup's integer mean of the revealed validator models (FRQ1 bytes), its
    digest and its accuracy on the public test set. The next round trains from exactly these bytes."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    digest: bytes = abi("bytes32")
    accuracy_bps: int = abi("uint16")
    groups: tuple[int, ...] = abi("uint8[]")  # the groups whose revealed models were averaged
    model: bytes = abi("bytes")


@dataclass(frozen=True)
class CellCompliance(Message):
    """A grouped task's (QoS) compliance figures for one group (cell), from the round's global model on the public
    test set's rows of that cell: class 1 is "SLA violated". Counts, so an auditor derives any rate exactly: the
    predicted violation rate is predicted_violations / sessions, recall true_positives / actual_violations."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    sessions: int = abi("uint32")  # test rows of this cell
    correct: int = abi("uint32")  # rows the global model classifies right
    predicted_violations: int = abi("uint32")
    actual_violations: int = abi("uint32")
    true_positives: int = abi("uint32")  # predicted and actual violations


@dataclass(frozen=True)
class Contested(Message):
    """A dispute was filed; the disputed update must be posted (ModelChunk) by ``response_deadline``."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    trainer: str = abi("address")
    kind: int = abi("uint8")  # DISPUTE_*
    update_digest: bytes = abi("bytes32")
    response_deadline: int = abi("uint64")


@dataclass(frozen=True)
class ContestResolved(Message):
    """The rollup's verdict on a dispute at the round's close."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    trainer: str = abi("address")
    kind: int = abi("uint8")  # DISPUTE_*
    upheld: bool = abi("bool")  # against the validator
    posted: bool = abi("bool")  # the update was posted and scored
    update_bps: int = abi("uint16")  # its public accuracy (0 when not posted)
    validator_bps: int = abi("uint16")  # the validator's revealed model's public accuracy (0: not revealed)


@dataclass(frozen=True)
class ValidatorPenalized(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    validator: str = abi("address")
    group: int = abi("uint8")
    reason: int = abi("uint8")  # PENALTY_*
    stake_cut: int = abi("uint256")
    stake: int = abi("uint256")


@dataclass(frozen=True)
class TrainersAdmitted(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    group: int = abi("uint8")
    trainers: tuple[str, ...] = abi("address[]")
    admitted: int = abi("uint32")  # admitted to the group so far


@dataclass(frozen=True)
class TaskFunded(Message):
    """An EtherPortal deposit added to a task's escrow; ``funded`` once it covers the whole task."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    funder: str = abi("address")
    amount: int = abi("uint256")
    escrow: int = abi("uint256")
    required_escrow: int = abi("uint256")
    funded: bool = abi("bool")


@dataclass(frozen=True)
class DepositCredited(Message):
    """An EtherPortal deposit that funds no task, credited to the depositor's withdrawable balance."""

    KIND: ClassVar[str] = "notice"
    depositor: str = abi("address")
    amount: int = abi("uint256")
    balance: int = abi("uint256")


@dataclass(frozen=True)
class ParticipantRegistered(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    participant: str = abi("address")
    role: int = abi("uint8")
    group: int = abi("uint8")


@dataclass(frozen=True)
class ContributionClassified(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    trainer: str = abi("address")
    accuracy_bps: int = abi("uint16")
    validator_accuracy_bps: int = abi("uint16")
    samples: int = abi("uint80")
    positive: bool = abi("bool")
    cosine_bps: int = abi("int16", 0)  # trust tasks: the update's direction against the validator's own update
    norm_centi: int = abi("uint16", 0)  # trust tasks: its size against it, in hundredths
    share_bps: int = abi("uint16", 0)  # shapley tasks: its share of the group's round budget (0..10,000)


@dataclass(frozen=True)
class RewardPaid(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    trainer: str = abi("address")
    amount: int = abi("uint256")
    stake: int = abi("uint256")


@dataclass(frozen=True)
class TrainerStanding(Message):
    """Trust tasks: a reported trainer's standing after the round's close (`dapp.trust_rule.Standing`)."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    trainer: str = abi("address")
    accepted: bool = abi("bool")  # its update's final verdict this round (after disputes)
    score: int = abi("uint16")  # 0..10,000: weighs its pay and its update's weight in its validator's average
    strikes: int = abi("uint8")  # rejections in a row
    bans: int = abi("uint8")
    banned_until: int = abi("uint16")  # last round of its current or last ban (0: never banned)


@dataclass(frozen=True)
class RoundRecorded(Message):
    """The round's audit record; validator stakes as parallel arrays in registration order. The trainers'
    stakes follow in `TrainerStakes` pages (``trainers`` of them in all), so no output grows with the task."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    timestamp: int = abi("uint64")
    global_digest: bytes = abi("bytes32")
    global_accuracy_bps: int = abi("uint16")
    accumulated_accuracy_bps: int = abi("uint16")
    validators: tuple[str, ...] = abi("address[]")
    validator_stakes: tuple[int, ...] = abi("uint256[]")
    trainers: int = abi("uint32")
    trainer_paid: int = abi("uint256")
    escrow_left: int = abi("uint256")


@dataclass(frozen=True)
class TrainerStakes(Message):
    """One page (at most `STAKES_PAGE` trainers, registration order from ``first``) of a round's stakes."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    first: int = abi("uint32")
    trainers: tuple[str, ...] = abi("address[]")
    stakes: tuple[int, ...] = abi("uint256[]")


@dataclass(frozen=True)
class GroupSkipped(Message):
    """A group whose validator missed the report deadline: closed without it, nothing paid for it."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    validator: str = abi("address")  # the seat's named validator
    report_deadline: int = abi("uint64")


@dataclass(frozen=True)
class ProducerMissed(Message):
    """A producer who let its close deadline pass: the turn went to the next in the election order."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    producer: str = abi("address")
    close_deadline: int = abi("uint64")
    next_producer: str = abi("address")


@dataclass(frozen=True)
class ValidatorRewarded(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")
    validator: str = abi("address")
    group: int = abi("uint8")
    distance_bps: int = abi("uint16")
    amount: int = abi("uint256")
    stake: int = abi("uint256")


@dataclass(frozen=True)
class ProducerElected(Message):
    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    round: int = abi("uint16")  # the round this producer will close
    producer: str = abi("address")
    stake: int = abi("uint256")
    rule: int = abi("uint8")  # RULE_GREATEST_STAKE / RULE_BEST_CONTRIBUTION / RULE_RANDAO_DRAW


@dataclass(frozen=True)
class TaskFinished(Message):
    """After the last round: what was left in escrow went back to the publisher's balance."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    publisher: str = abi("address")
    refund: int = abi("uint256")
    accumulated_accuracy_bps: int = abi("uint16")


@dataclass(frozen=True)
class TaskCancelled(Message):
    """The publisher ended a task that could not go on; ``refund`` wei went back to it as a voucher."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    publisher: str = abi("address")
    round: int = abi("uint16")  # the round that could not close
    reason: int = abi("uint8")  # CANCEL_* above
    refund: int = abi("uint256")


@dataclass(frozen=True)
class BrokerFeePaid(Message):
    """A task that started ended: its broker's fee left the escrow as a voucher to the broker (dapp/market.py)."""

    KIND: ClassVar[str] = "notice"
    task_id: int = abi("uint64")
    broker: str = abi("address")
    fee_bps: int = abi("uint16")
    amount: int = abi("uint256")


@dataclass(frozen=True)
class Withdrawal(Message):
    KIND: ClassVar[str] = "notice"
    account: str = abi("address")
    amount: int = abi("uint256")


INPUTS: tuple[type[Message], ...] = (CreateTask, AdmitTrainers, Register, TestSetChunk, ValidatorReport, ReportPart,
                                     ModelChunk, Contest, Challenge, RoundClose, CancelTask, Withdraw)
NOTICES: tuple[type[Message], ...] = (TaskCreated, TaskFunded, DepositCredited, TrainersAdmitted, ParticipantRegistered,
                                      TestSetPosted, ContributionClassified, BlobRejected, ModelScored, Contested,
                                      ContestResolved, ValidatorPenalized, GlobalModel, CellCompliance, RewardPaid,
                                      TrainerStanding, GroupSkipped,
                                      ProducerMissed,
                                      ValidatorRewarded, RoundRecorded, TrainerStakes, ProducerElected,
                                      TaskFinished, TaskCancelled, BrokerFeePaid, Withdrawal)
INPUT_BY_TAG: dict[bytes, type[Message]] = {m.tag(): m for m in INPUTS}
NOTICE_BY_TAG: dict[bytes, type[Message]] = {m.tag(): m for m in NOTICES}
BY_NAME: dict[str, type[Message]] = {m.__name__: m for m in INPUTS + NOTICES}
assert len(INPUT_BY_TAG) + len(NOTICE_BY_TAG) == len(BY_NAME), "two messages share a tag"


def _decode(payload: bytes, registry: dict[bytes, type[Message]], kind: str) -> Message:
    if len(payload) < TAG_SIZE:
        raise MessageDecodeError(f"{kind} of {len(payload)} bytes is shorter than a 4-byte tag")
    tag, body = payload[:TAG_SIZE], payload[TAG_SIZE:]
    cls = registry.get(tag)
    if cls is None:
        raise MessageDecodeError(f"unknown {kind} tag 0x{tag.hex()}")
    types = cls.abi_types()
    try:
        values = abi_decode(types, body)
    except Exception as err:  # eth-abi raises several types for truncated or malformed data
        raise MessageDecodeError(f"malformed {cls.__name__} ABI: {err}") from None
    # Canonical encoding only (no trailing bytes, no odd offsets): one payload per message, so a
    # payload is auditable as exactly the message it decodes to.
    if abi_encode(types, values) != body:
        raise MessageDecodeError(f"{cls.__name__} is not canonically ABI-encoded "
                                 f"({len(body)} bytes after the tag, canonical form differs)")
    kwargs = {f.name: (normalize_address(v) if f.metadata["abi"] == "address" else
                       tuple(normalize_address(x) for x in v) if f.metadata["abi"] == "address[]" else v)
              for f, v in zip(dataclasses.fields(cls), values)}  # type: ignore[arg-type]
    return cls(**kwargs)


def decode_input(payload: bytes) -> Message:
    """Decode an input payload (not a portal deposit); raises MessageDecodeError saying why."""
    return _decode(payload, INPUT_BY_TAG, "input")


def decode_notice(payload: bytes) -> Message:
    """Decode a notice payload emitted by the backend; raises MessageDecodeError saying why."""
    return _decode(payload, NOTICE_BY_TAG, "notice")


# ------------------------------------------------------------------ packed trainer contributions

SAMPLES_BITS = 32
SHARE_SHIFT = SAMPLES_BITS
NORM_SHIFT = SAMPLES_BITS + 16
COSINE_SHIFT = SAMPLES_BITS + 32
ACCURACY_SHIFT = SAMPLES_BITS + 48
ADDRESS_SHIFT = SAMPLES_BITS + 64
MAX_SAMPLES = (1 << SAMPLES_BITS) - 1


@dataclass(frozen=True)
class Contribution:
    """One trainer's update as its validator scored it (for a trust task also measured: direction and size; for a
    shapley task its share of the group's round budget)."""

    trainer: str  # lowercase 0x address
    accuracy_bps: int
    samples: int
    cosine_bps: int = 0  # signed: -10,000..10,000
    norm_centi: int = 0
    share_bps: int = 0  # 0..10,000 of the group's round budget


def pack_contribution(trainer: str, accuracy_bps: int, samples: int, cosine_bps: int = 0, norm_centi: int = 0,
                      share_bps: int = 0) -> int:
    """One 32-byte word = ``abi.encodePacked(address trainer, uint16 accuracyBps, int16 cosineBps, uint16 normCenti,
    uint16 shareBps, uint32 samples)``.

    Bits 255..96 trainer address, 95..80 accuracy in basis points, 79..64 cosine in basis points (two's
    complement), 63..48 size in hundredths, 47..32 share of the group's budget in basis points, 31..0 sample count.
    A MAD report leaves cosine and size 0, a per-positive report the share 0.
    """
    if not 0 <= accuracy_bps <= 0xFFFF:
        raise ValueError(f"accuracy {accuracy_bps} bps does not fit 16 bits")
    if not -0x8000 <= cosine_bps <= 0x7FFF:
        raise ValueError(f"cosine {cosine_bps} bps does not fit a signed 16-bit value")
    if not 0 <= norm_centi <= 0xFFFF:
        raise ValueError(f"size {norm_centi} hundredths does not fit 16 bits")
    if not 0 <= share_bps <= 0xFFFF:
        raise ValueError(f"share {share_bps} bps does not fit 16 bits")
    if not 0 <= samples <= MAX_SAMPLES:
        raise ValueError(f"sample count {samples} does not fit {SAMPLES_BITS} bits")
    address = int(normalize_address(trainer), 16)
    return ((address << ADDRESS_SHIFT) | (accuracy_bps << ACCURACY_SHIFT) | ((cosine_bps & 0xFFFF) << COSINE_SHIFT)
            | (norm_centi << NORM_SHIFT) | (share_bps << SHARE_SHIFT) | samples)


def unpack_contribution(word: int) -> Contribution:
    """Inverse of `pack_contribution` (every 256-bit word unpacks; range checks are the rollup's)."""
    address = word >> ADDRESS_SHIFT
    cosine = (word >> COSINE_SHIFT) & 0xFFFF
    return Contribution(trainer="0x" + address.to_bytes(20, "big").hex(),
                        accuracy_bps=(word >> ACCURACY_SHIFT) & 0xFFFF,
                        samples=word & MAX_SAMPLES,
                        cosine_bps=cosine - 0x10000 if cosine & 0x8000 else cosine,
                        norm_centi=(word >> NORM_SHIFT) & 0xFFFF,
                        share_bps=(word >> SHARE_SHIFT) & 0xFFFF)


# ----------------------------------------------------------------------- EtherPortal deposit data


def encode_deposit_data(task_id: int) -> bytes:
    """The ``execLayerData`` of ``EtherPortal.depositEther(app, data)`` that funds task ``task_id``."""
    return abi_encode(["uint64"], [task_id])
