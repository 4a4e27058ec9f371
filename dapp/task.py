"""A task as the rollup holds it, and its schedule: who may act, and until which L1 block.

Time is the input's L1 block number, never a clock. Every deadline is a pure function of the task and a
block number, so the backend, an auditor's replay and a client planning its next input agree on it.
Rules in docs/PROTOCOL.md, "Deadlines".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from dapp.dp_budget import DpBudget
from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_NO_PRODUCER, CANCEL_NO_TEST_SET, CANCEL_NO_VALIDATOR,
                         CANCEL_UNFUNDED, PAYOUT_PER_POSITIVE, ROLE_TRAINER, ROLE_VALIDATOR, VALIDATION_MAD)
from dapp.trust_rule import Standing


@dataclass(frozen=True)
class Participant:
    address: str
    role: int
    group: int


@dataclass(frozen=True)
class Entry:
    """One trainer's contribution as its validator reported it (signed by the trainer: digest and samples)."""

    trainer: str
    accuracy_bps: int
    samples: int
    update_digest: bytes
    positive: bool  # the task's rule on the validator's numbers (provisional until the close)
    cosine_bps: int = 0  # trust tasks: the measures the verdict came from
    norm_centi: int = 0
    share_bps: int = 0  # shapley tasks: its share of the group's round budget, as its validator reported it


@dataclass(frozen=True)
class GroupReport:
    """What one validator reported for the current round (payments follow at the close)."""

    validator: str
    validator_accuracy_bps: int
    model_digest: bytes  # the commitment: keccak256 of its FRQ1 model, revealed with ModelChunk
    entries: Mapping[str, Entry]  # trainer -> entry, report order
    block: int

    @property
    def positives(self) -> int:
        return sum(e.positive for e in self.entries.values())

    @property
    def negatives(self) -> int:
        return len(self.entries) - self.positives


@dataclass(frozen=True)
class PartialReport:
    """The parts of a validator's report received so far (`ReportPart`): each part's entries, checked on arrival.
    It becomes the group's `GroupReport` when the last part arrives, and is dropped at the close if it never does."""

    validator: str
    validator_accuracy_bps: int
    model_digest: bytes
    parts: int
    received: Mapping[int, tuple[Entry, ...]]  # part index -> its entries (verdicts not yet computed)

    def trainers(self) -> set[str]:
        return {e.trainer for entries in self.received.values() for e in entries}


@dataclass(frozen=True)
class Dispute:
    """A contest by a trainer or a challenge by the publisher, decided at the round's close."""

    trainer: str
    group: int
    kind: int  # DISPUTE_*
    update_digest: bytes
    samples: int


@dataclass(frozen=True)
class RoundRecord:
    """A closed round (the stakes themselves are in the round's notices, not kept per round)."""

    round: int
    block: int
    timestamp: int
    producer: str  # who closed the round
    missed_producers: tuple[str, ...]  # earlier in the order, let their close deadline pass
    global_digest: bytes
    global_accuracy_bps: int
    accumulated_accuracy_bps: int
    validator_accuracy_bps: tuple[int | None, ...]  # public accuracy of each group's revealed model (None: none)
    reports: tuple[GroupReport | None, ...]  # by group; None: skipped (missed the report deadline)
    paid: tuple[int, ...]  # wei paid to each group's trainers
    rewarded_validator: str
    rewarded_group: int
    distance_bps: int
    validator_paid: int
    trainer_paid: int
    escrow_left: int
    next_producer: str  # "" after the last round
    election_rule: int  # -1 after the last round


@dataclass(frozen=True)
class Task:
    task_id: int
    publisher: str
    mad_bps: int
    rounds: int
    groups: int
    round_trainer_budget: int
    reward_per_positive: int
    validator_reward: int
    seats: tuple[str, ...]  # the validator the publisher named for each group
    trainers_per_group: int
    created_block: int
    registration_blocks: int
    report_blocks: int
    close_blocks: int
    test_set_digest: bytes = bytes(32)
    test_set_size: int = 1
    model_arch: int = 1
    contest_blocks: int = 1
    challenges_per_round: int = 0
    dp: DpBudget = DpBudget()  # the privacy budget its publisher promised its trainers (recorded, not enforced)
    initial_model_digest: bytes = bytes(32)  # the model round 1 trains from, as CreateTask committed it (0: none)
    validation: int = VALIDATION_MAD  # the rule that judges reported updates (VALIDATION_*)
    payout: int = PAYOUT_PER_POSITIVE  # how a group's budget reaches its Positives (PAYOUT_*)
    trainer_approval: bool = False
    broker_fee: int = 0  # wei the market's broker is owed once the task started (dapp/market.py), reserved in escrow
    test_set: bytes | None = None  # the public test set, once posted complete and matching its digest
    test_set_block: int | None = None
    escrow: int = 0
    funded_block: int | None = None  # the block whose deposit completed the required escrow
    seated_block: int | None = None  # the block at which the last named validator registered
    current_round: int = 1
    round_start: int | None = None  # rounds >= 2: the block of the previous close
    order: tuple[str, ...] = ()  # rounds >= 2: who may close, in turn (the election order)
    cancelled: int | None = None  # CANCEL_* once the publisher cancelled
    participants: Mapping[str, Participant] = field(default_factory=dict)  # registration order
    group_trainers: tuple[int, ...] = ()  # trainers registered per group
    admitted: Mapping[str, int] = field(default_factory=dict)  # trainer -> group (tasks with trainer approval)
    group_admitted: tuple[int, ...] = ()  # trainers admitted per group
    stakes: Mapping[str, int] = field(default_factory=dict)
    reports: tuple[GroupReport | None, ...] = ()  # current round, by group
    partials: Mapping[int, PartialReport] = field(default_factory=dict)  # current round: group -> parts so far
    uploads: Mapping[tuple[bytes, str], Mapping[int, bytes]] = field(default_factory=dict)  # (digest, sender) -> chunks
    scores: Mapping[bytes, int | None] = field(default_factory=dict)  # posted blob -> public accuracy (None: invalid)
    models: Mapping[bytes, bytes] = field(default_factory=dict)  # revealed digest -> its valid FRQ1 bytes
    disputes: Mapping[str, Dispute] = field(default_factory=dict)  # current round, trainer -> dispute, filing order
    global_model: bytes = b""  # the last global model (FRQ1); empty before any was computed
    standings: Mapping[str, Standing] = field(default_factory=dict)  # trust tasks: trainer -> standing, once judged
    history: tuple[RoundRecord, ...] = ()

    # ------------------------------------------------------------------ money and membership
    @property
    def budget(self) -> int:
        """What the task may pay its trainers and validators over all its rounds."""
        return self.rounds * (self.round_trainer_budget + self.validator_reward)

    @property
    def required_escrow(self) -> int:
        """The budget and the broker's fee on top: a funded task can always pay both."""
        return self.budget + self.broker_fee

    @property
    def funded(self) -> bool:
        return self.funded_block is not None

    @property
    def finished(self) -> bool:
        """All rounds closed."""
        return self.current_round > self.rounds

    @property
    def over(self) -> bool:
        """Finished or cancelled: nothing more happens in this task."""
        return self.finished or self.cancelled is not None

    @property
    def previous_global_bps(self) -> int:
        """The public accuracy of the last recorded round's global model (0 before any round closed)."""
        return self.history[-1].global_accuracy_bps if self.history else 0

    @property
    def group_budget(self) -> int:
        return self.round_trainer_budget // self.groups

    def participant(self, address: str) -> Participant | None:
        return self.participants.get(address)

    def standing(self, trainer: str) -> Standing:
        """A trust task's trainer standing (a newcomer's until it was judged once)."""
        return self.standings.get(trainer, Standing())

    def validators(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.role == ROLE_VALIDATOR]

    def trainers(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.role == ROLE_TRAINER]

    def seated(self, group: int) -> bool:
        p = self.participants.get(self.seats[group])
        return p is not None and p.role == ROLE_VALIDATOR

    # ------------------------------------------------------------------ the schedule
    @property
    def registration_deadline(self) -> int:
        """The last block at which Register and a funding deposit are accepted."""
        return self.created_block + self.registration_blocks

    @property
    def start_block(self) -> int | None:
        """The first block of round 1: once funded, the public test set posted and every seat taken, or else
        when the registration window closes with at least one seat taken; None while (or if never) that is known."""
        if self.funded_block is None or self.test_set_block is None:
            return None
        if self.seated_block is not None:
            return max(self.funded_block, self.test_set_block, self.seated_block)
        if any(self.seated(g) for g in range(self.groups)):
            return self.registration_deadline + 1
        return None

    def started(self, block: int) -> bool:
        start = self.start_block
        return start is not None and block >= start

    def current_start(self) -> int | None:
        """The first block of the current round."""
        return self.start_block if self.current_round == 1 else self.round_start

    def report_deadline(self) -> int | None:
        """The last block at which the current round's reports are accepted."""
        start = self.current_start()
        return None if start is None else start + self.report_blocks

    def all_reported(self) -> bool:
        return all(r is not None for r in self.reports)

    def reveal_open(self, block: int) -> bool:
        """Validator models may be revealed: every group committed (reported), or the report deadline passed."""
        deadline = self.report_deadline()
        return deadline is not None and (self.all_reported() or block > deadline)

    def contest_deadline(self) -> int | None:
        """The last block for reveals, contests and challenges: ``contest_blocks`` after the last group's report
        (after the report deadline when a group is silent; an upper bound until then)."""
        deadline = self.report_deadline()
        if deadline is None:
            return None
        base = max(r.block for r in self.reports) if self.all_reported() else deadline  # type: ignore[union-attr]
        return base + self.contest_blocks

    def response_deadline(self) -> int | None:
        """The last block for posting a disputed update; the close turns are counted from it."""
        deadline = self.contest_deadline()
        return None if deadline is None else deadline + self.contest_blocks

    def producer_order(self) -> tuple[str, ...]:
        """Who may close the current round, in turn. Round 1: the publisher, then the seated validators by
        group; later rounds: the election order of the previous close."""
        if self.current_round > 1:
            return self.order
        return (self.publisher,) + tuple(self.seats[g] for g in range(self.groups)
                                         if self.seated(g) and self.seats[g] != self.publisher)

    @property
    def producer(self) -> str:
        """The producer elected for the current round (first in the order)."""
        order = self.producer_order()
        return order[0] if order else self.publisher

    def close_deadline(self, turn: int) -> int | None:
        """The last block at which the ``turn``-th producer in the order (0 = elected) may close."""
        deadline = self.response_deadline()
        return None if deadline is None else deadline + (turn + 1) * self.close_blocks

    def turn_at(self, block: int) -> int:
        """Whose turn it is to close at ``block``: an index into `producer_order` (maybe past its end)."""
        deadline = self.response_deadline()
        assert deadline is not None, "turn_at needs a started task"
        return max(0, (block - deadline - 1) // self.close_blocks)

    def pending_disputes(self) -> list[Dispute]:
        """Disputes whose update has not been posted yet."""
        return [d for d in self.disputes.values() if d.update_digest not in self.scores]

    def stalled(self, block: int) -> int | None:
        """Why the task cannot go on at ``block`` (a CANCEL_* reason), or None while it can."""
        if self.over:
            return None
        if not self.funded:
            return CANCEL_UNFUNDED if block > self.registration_deadline else None
        if self.test_set_block is None:
            return CANCEL_NO_TEST_SET if block > self.registration_deadline else None
        if self.start_block is None:
            return CANCEL_NO_VALIDATOR if block > self.registration_deadline else None
        deadline = self.report_deadline()
        if deadline is None:
            return None
        if block > deadline and all(r is None for r in self.reports):
            return CANCEL_GROUPS_SILENT
        # every group may report early: the close turns then all pass before the report deadline
        if (self.all_reported() or block > deadline) and self.turn_at(block) >= len(self.producer_order()):
            return CANCEL_NO_PRODUCER
        return None

    def latest_end_block(self) -> int:
        """A bound: by this block the task has finished or its publisher may cancel it (each round ends within
        its report window, the contest and response windows, plus one close window per producer in the order, at
        most groups + 1)."""
        per_round = self.report_blocks + 2 * self.contest_blocks + (self.groups + 1) * self.close_blocks
        return self.registration_deadline + 1 + self.rounds * per_round + 1
