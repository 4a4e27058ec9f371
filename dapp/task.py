"""A task as the rollup holds it, and its schedule: who may act, and until which L1 block.

Time is the input's L1 block number, never a clock. Every deadline is a pure function of the task and a
block number, so the backend, an auditor's replay and a client planning its next input agree on it.
Rules in docs/PROTOCOL.md, "Deadlines".
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from dapp.dp_budget import DpBudget
from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_NO_PRODUCER, CANCEL_NO_TEST_SET, CANCEL_NO_VALIDATOR,
                         CANCEL_UNFUNDED, PAYOUT_PER_POSITIVE, ROLE_TRAINER, ROLE_VALIDATOR, VALIDATION_MAD,
                         VALIDATION_TRUST)
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
class RoundSlot:
    """What the rollup holds of one open round besides the current one (openRounds > 1): its reports, reveals and
    disputes so far. It becomes the task's current-round fields when the round before it closes."""

    reports: tuple[GroupReport | None, ...]
    partials: Mapping[int, PartialReport] = field(default_factory=dict)
    uploads: Mapping[tuple[bytes, str], Mapping[int, bytes]] = field(default_factory=dict)
    scores: Mapping[bytes, int | None] = field(default_factory=dict)
    models: Mapping[bytes, bytes] = field(default_factory=dict)
    disputes: Mapping[str, Dispute] = field(default_factory=dict)


KEEP_DIGEST = bytes(32)  # openRounds > 1: the commitment of a validator that kept the round's starting model


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
    next_producer: str  # the producer this close elected, of round + openRounds ("": none, past the last round)
    election_rule: int  # -1: no election


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
    open_rounds: int = 1  # rounds open on chain at once (CreateTask.openRounds; 1: one round at a time)
    test_set: bytes | None = None  # the public test set, once posted complete and matching its digest
    test_set_block: int | None = None
    escrow: int = 0
    funded_block: int | None = None  # the block whose deposit completed the required escrow
    seated_block: int | None = None  # the block at which the last named validator registered
    current_round: int = 1
    round_start: int | None = None  # rounds >= 2: the block of the previous close
    orders: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # round r > openRounds -> who may close it,
    # in turn: the election order of round r - openRounds's close (kept for the open rounds only)
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
    ahead: Mapping[int, RoundSlot] = field(default_factory=dict)  # open rounds after the current one, by round
    standings_at: Mapping[int, Mapping[str, Standing]] = field(default_factory=dict)  # trust, openRounds > 1: the
    # standings after each of the last openRounds closed rounds (round r's verdicts read those after r - openRounds)
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
        return self.all_reported() or (deadline is not None and block > deadline)

    def contest_deadline(self) -> int | None:
        """The last block for reveals, contests and challenges: ``contest_blocks`` after the last group's report
        (after the report deadline when a group is silent; an upper bound until then)."""
        if self.all_reported():
            return max(r.block for r in self.reports) + self.contest_blocks  # type: ignore[union-attr]
        deadline = self.report_deadline()
        return None if deadline is None else deadline + self.contest_blocks

    def response_deadline(self) -> int | None:
        """The last block for posting a disputed update; the close turns are counted from it."""
        deadline = self.contest_deadline()
        return None if deadline is None else deadline + self.contest_blocks

    def producer_order(self) -> tuple[str, ...]:
        """Who may close the current round, in turn. Rounds 1..openRounds (no close elected them): the publisher,
        then the seated validators by group, fixed once the task started; a later round r: the election order of
        round r - openRounds's close, so that every open round's producer is known and their closes may land in
        one block (openRounds 1: the previous close elects, as in the paper)."""
        return self.order_of(self.current_round)

    def order_of(self, round_: int) -> tuple[str, ...]:
        """Who may close round ``round_``, in turn, as far as known (a round not elected yet: none)."""
        return self.orders.get(round_, ()) if round_ > self.open_rounds else self.fixed_order()

    def fixed_order(self) -> tuple[str, ...]:
        """Who closes rounds 1..openRounds, in turn: the publisher, then the seated validators by group."""
        return (self.publisher,) + tuple(self.seats[g] for g in range(self.groups)
                                         if self.seated(g) and self.seats[g] != self.publisher)

    def elects(self, round_: int) -> int | None:
        """The round whose producer round ``round_``'s close elects: round + openRounds, None past the last."""
        target = round_ + self.open_rounds
        return target if target <= self.rounds else None

    @property
    def producer(self) -> str:
        """The producer elected for the current round (first in the order)."""
        order = self.producer_order()
        return order[0] if order else self.publisher

    def close_base(self) -> int | None:
        """The block the close turns count from: the response deadline, or the previous round's close when it came
        later (several rounds open at once: the producer is known only once the round before closed)."""
        deadline = self.response_deadline()
        if deadline is None:
            return None
        return max(deadline, self.history[-1].block) if self.history else deadline

    def close_deadline(self, turn: int) -> int | None:
        """The last block at which the ``turn``-th producer in the order (0 = elected) may close."""
        base = self.close_base()
        return None if base is None else base + (turn + 1) * self.close_blocks

    def turn_at(self, block: int) -> int:
        """Whose turn it is to close at ``block``: an index into `producer_order` (maybe past its end)."""
        base = self.close_base()
        assert base is not None, "turn_at needs a started task"
        return max(0, (block - base - 1) // self.close_blocks)

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
        for r in self.open_after():  # a later open round silent past its own report deadline never closes either
            view = self.at(r, block)
            late = view.report_deadline()
            if late is not None and block > late and all(x is None for x in view.reports):
                return CANCEL_GROUPS_SILENT
        return None

    def latest_end_block(self) -> int:
        """A bound: by this block the task has finished or its publisher may cancel it (each round ends within
        its report window, the contest and response windows, plus one close window per producer in the order, at
        most groups + 1; with several rounds open, one block more per round: a round's report window starts the
        block after the previous round's passed)."""
        per_round = self.report_blocks + 2 * self.contest_blocks + (self.groups + 1) * self.close_blocks
        per_round += self.open_rounds > 1
        return self.registration_deadline + 1 + self.rounds * per_round + 1

    # ------------------------------------------------------------------ several rounds open (openRounds > 1)
    def open_after(self) -> range:
        """The open rounds after the current one: round r takes inputs once round r - openRounds closed."""
        return range(self.current_round + 1, min(self.rounds, self.current_round + self.open_rounds - 1) + 1)

    def slot(self, round_: int) -> RoundSlot:
        """What the rollup holds of an open round (the current one's fields, or a later round's slot)."""
        if round_ == self.current_round:
            return RoundSlot(self.reports, self.partials, self.uploads, self.scores, self.models, self.disputes)
        return self.ahead.get(round_) or RoundSlot((None,) * self.groups)

    def _reporting_end(self, round_: int, start: int | None, block: int) -> int | None:
        """The block from which an open round's reporting is over at ``block`` (its last report's block once every
        group reported, the block after its report deadline once that passed), None while it is not."""
        reports = self.slot(round_).reports
        if all(r is not None for r in reports):
            return max(r.block for r in reports)  # type: ignore[union-attr]
        if start is not None and block > start + self.report_blocks:
            return start + self.report_blocks + 1
        return None

    def next_start(self, block: int) -> int | None:
        """At the close of the current round (in ``block``), the start of the next: the later of the end of this
        round's reporting and the close of round next - openRounds (this close itself with one round open)."""
        end = self._reporting_end(self.current_round, self.current_start(), block)
        closed = self.current_round + 1 - self.open_rounds
        opened = block if closed == self.current_round else (self.history[closed - 1].block if closed >= 1
                                                             else self.start_block)
        return None if end is None or opened is None else max(end, opened)

    def start_of(self, round_: int, block: int) -> int | None:
        """The first block of an open round's report window as known at ``block`` (its deadlines count from it):
        the later of the end of the previous round's reporting and the close of round r - openRounds; None while
        the previous round still takes reports."""
        if round_ == self.current_round:
            return self.current_start()
        previous = self.start_of(round_ - 1, block)
        end = self._reporting_end(round_ - 1, previous, block)
        closed = round_ - self.open_rounds
        opened = self.history[closed - 1].block if closed >= 1 else self.start_block
        return None if end is None or opened is None else max(end, opened)

    def verdict_standings(self, round_: int) -> Mapping[str, Standing]:
        """The standings round ``round_``'s verdicts read: those after round ``round_ - openRounds`` (the last round
        surely closed when it opened), so that the validators and the rollup judge with the same, fixed numbers."""
        closed = round_ - self.open_rounds
        if self.validation != VALIDATION_TRUST or closed == len(self.history):  # a MAD task keeps no standing
            return self.standings
        return self.standings_at[closed] if closed > 0 else {}

    def at(self, round_: int, block: int) -> Task:
        """The task as one open round sees it: that round's reports, reveals, disputes and schedule as the current
        ones, and the standings its verdicts read (`stored` puts what a handler changed back)."""
        if self.open_rounds == 1:
            return self
        view = replace(self, standings=self.verdict_standings(round_))
        if round_ == self.current_round:
            return view
        s = self.slot(round_)
        return replace(view, current_round=round_, round_start=self.start_of(round_, block), reports=s.reports,
                       partials=s.partials, uploads=s.uploads, scores=s.scores, models=s.models, disputes=s.disputes)

    def stored(self, view: Task) -> Task:
        """This task with what a handler changed in the view of one open round (`at`) put back."""
        if self.open_rounds == 1:
            return view
        fields = dict(reports=view.reports, partials=view.partials, uploads=view.uploads, scores=view.scores,
                      models=view.models, disputes=view.disputes)
        if view.current_round == self.current_round:
            return replace(self, **fields)
        ahead = dict(self.ahead)
        ahead[view.current_round] = RoundSlot(**fields)
        return replace(self, ahead=ahead)
