"""One task played block by block by honest and silent parties, to its end: the liveness tests' driver.

Each block, in this order: the honest publisher cancels if the task is stalled (`Task.stalled`); else, unless
the schedule says to wait, an `Attacker`, if any, may send an input, or else one honest party sends an input
the rules accept now (in the registration window a deposit, the public test set or a registration; a report
before its deadline; a validator's reveal of the model its report committed, once the reveals are open and
until the contest deadline; after the contest deadline, the close by the producer whose turn it is). Every
deadline is read from `Task`. Silent parties never send theirs. The schedule's choices (waits, which due input
goes first, accuracies, which classes a validator's model misses) come from a `Choices`, so that Hypothesis can
draw them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from dapp_fixtures import (MILLI, PORTAL, PUBLISHER, STRANGER, TEST_SET, Chain, band_model, post_blob, post_test_set,
                           report, task_message, trainer, validator, validator_model)
from dapp import qmodel
from dapp.eip712 import Domain
from dapp.portal import encode_ether_deposit
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, CancelTask, ModelChunk, Register, RewardPaid, RoundClose,
                         TaskCancelled, TaskFinished, TaskFunded, TestSetChunk, ValidatorRewarded, Withdraw,
                         encode_deposit_data)
from dapp.task import Task


@dataclass(frozen=True)
class Move:
    """An honest input due now, built only once chosen (so accuracies are drawn for the input sent)."""

    sender: str
    kind: str  # "deposit", "test set", "register", "report", "reveal" or "close"
    value: int = 0  # deposit: wei; register, report, reveal: group
    role: int = ROLE_TRAINER
    not_before: int = 0  # the first block at which it is due


class Choices(Protocol):
    def wait(self) -> int:
        """Blocks that pass after an honest input before the next one."""

    def pick(self, moves: int) -> int:
        """Which of the ``moves`` honest inputs due now goes first."""

    def bps(self) -> int:
        """An accuracy (0..10,000) in a report."""

    def dead(self) -> frozenset[int]:
        """The classes a validator's model misses (its public accuracy: `dapp_fixtures.band_bps`)."""


@dataclass
class Eager:
    """No waits, registrations first (they come last among the moves due), every accuracy at 88.00%."""

    def wait(self) -> int:
        return 0

    def pick(self, moves: int) -> int:
        return moves - 1

    def bps(self) -> int:
        return 8800

    def dead(self) -> frozenset[int]:
        return frozenset()


@dataclass(frozen=True)
class Cast:
    """Who plays the task and who keeps silent."""

    deposits: tuple[int, ...]  # the publisher's deposits, in wei
    seated: frozenset[int]  # groups whose named validator registers
    trainers: tuple[tuple[str, ...], ...]  # who registers as trainer, by group
    silent_reports: frozenset[tuple[int, int]] = frozenset()  # (round, group) whose validator never reports
    unrevealed: frozenset[tuple[int, int]] = frozenset()  # (round, group) whose validator reports, never reveals
    test_set: bool = True  # False: the publisher never posts the public test set
    withholders: frozenset[tuple[int, str]] = frozenset()  # (round, producer) who lets its turn pass
    seats_after: int = 0  # blocks after CreateTask before the named validators register
    lazy: bool = False  # reports in the last blocks before their deadline, each close at the last block of its turn
    quit_after: int | None = None  # after this many honest inputs, only the publisher's CancelTask comes


Attacker = Callable[[Chain, Task], None]


def setup_moves(task: Task, cast: Cast) -> list[Move]:
    """What the cast sends, in this order, while the registration window is open: the publisher's deposits and
    public test set, the named validators' and then the trainers' registrations (trainers may still come once
    round 1 runs)."""
    moves = [Move(task.publisher, "deposit", wei) for wei in cast.deposits]
    moves += [Move(task.publisher, "test set")] if cast.test_set else []
    moves += [Move(task.seats[g], "register", g, ROLE_VALIDATOR, task.created_block + cast.seats_after)
              for g in sorted(cast.seated)]
    return moves + [Move(t, "register", g) for g, team in enumerate(cast.trainers) for t in team]


def round_moves(task: Task, block: int, cast: Cast) -> list[Move]:
    """The honest reports, reveals and close due at ``block``."""
    if not task.started(block):
        return []
    r, moves = task.current_round, []
    if block <= task.report_deadline():
        moves = [Move(task.seats[g], "report", g) for g in range(task.groups)
                 if task.seated(g) and task.reports[g] is None and (r, g) not in cast.silent_reports]
        if cast.lazy and block <= task.report_deadline() - len(moves):
            moves = []
    if all(rep is None for rep in task.reports) or not task.reveal_open(block):
        return moves  # the reveals and the close wait for every report, or for the report deadline
    if block <= task.contest_deadline():
        return moves + [Move(rep.validator, "reveal", g) for g, rep in enumerate(task.reports)
                        if rep is not None and rep.model_digest not in task.scores and (r, g) not in cast.unrevealed]
    order, turn = task.producer_order(), task.turn_at(block)
    if (turn < len(order) and (r, order[turn]) not in cast.withholders
            and not (cast.lazy and block < task.close_deadline(turn))):
        moves.append(Move(order[turn], "close"))
    return moves


Models = dict[tuple[int, int], bytes]  # (round, group) -> the model its validator committed to


def send_move(chain: Chain, task: Task, move: Move, choices: Choices, models: Models) -> None:
    """Send an honest input; the rules must accept it. A report commits to a model of the validator's own
    (``models`` keeps it), which its reveal posts."""
    r = task.current_round
    if move.kind == "deposit":
        chain.deposit(move.sender, move.value, encode_deposit_data(task.task_id))
    elif move.kind == "test set":
        post_test_set(chain, task.task_id, sender=move.sender)
    elif move.kind == "register":
        chain.send(move.sender, Register(task.task_id, move.role, move.value))
    elif move.kind == "report":
        team = [p.address for p in task.trainers() if p.group == move.value]
        model = models[r, move.value] = band_model(choices.dead(), salt=1_000 * r + move.value)
        chain.send(move.sender, report(task.task_id, r, choices.bps(), {t: choices.bps() for t in team},
                                       model=model))
    elif move.kind == "reveal":
        post_blob(chain, move.sender, task.task_id, r, models[r, move.value])
    else:
        chain.send(move.sender, RoundClose(task.task_id, r))


def run_task(chain: Chain, task_id: int, cast: Cast, choices: Choices, attacker: Attacker | None = None) -> int:
    """Play task ``task_id`` (just created) until it is over; the block of the input that ended it. Fails if
    the task has neither ended nor become cancellable by its `Task.latest_end_block`."""
    pending = setup_moves(chain.state.tasks[task_id], cast)
    honest_inputs, wait, models = 0, 0, {}
    while True:
        task = chain.state.tasks[task_id]
        if task.over:
            return chain.block - 1
        block = chain.block
        assert block <= task.latest_end_block(), f"task {task_id} still runs at block {block}, past its bound"
        if task.stalled(block) is not None:
            chain.send(task.publisher, CancelTask(task_id))
            continue
        if wait or (cast.quit_after is not None and honest_inputs >= cast.quit_after):
            wait = max(0, wait - 1)
            chain.mine(1)
            continue
        setup = [m for m in pending[:1] if m.not_before <= block <= task.registration_deadline]
        moves = round_moves(task, block, cast) + setup
        if not moves:
            chain.mine(1)
            continue
        if attacker is not None:
            attacker(chain, task)
            if chain.block != block:  # the attacker's input took this block
                continue
        move = moves[choices.pick(len(moves))]
        send_move(chain, task, move, choices, models)
        if pending and move == pending[0]:
            pending.pop(0)
        honest_inputs += 1
        wait = choices.wait()


# ------------------------------------------------------------------------------ what the rules owe


def unspent_escrow(chain: Chain, task_id: int) -> int:
    """What task ``task_id`` received minus what it paid trainers and validators, from its notices."""
    received = sum(n.amount for n in chain.of_type(TaskFunded) if n.task_id == task_id)
    paid = sum(n.amount for n in chain.of_type(RewardPaid) + chain.of_type(ValidatorRewarded) if n.task_id == task_id)
    return received - paid


def refunded(chain: Chain, task_id: int) -> int:
    """What the task's end gave back to its publisher (TaskFinished or TaskCancelled)."""
    [end] = [n for n in chain.of_type(TaskFinished) + chain.of_type(TaskCancelled) if n.task_id == task_id]
    return end.refund


# ------------------------------------------------------------------ one task in a few inputs (node and replay tests)


def one_round_inputs(domain: Domain) -> list[tuple[str, bytes, int]]:
    """A task created, its test set posted, funded and joined, a stranger's input rejected, round 1 reported
    (signed under ``domain``, the chain and application the inputs will carry), its model revealed, closed once
    the contest window has passed, a reward withdrawn (a voucher): ``(sender, payload, L1 block)`` of each input."""
    model, team = validator_model(0, 1), {trainer(0, 0): 8000, trainer(0, 1): 3000}
    steps = [
        (PUBLISHER, task_message(2500, 1, 1, 4 * MILLI, 3 * MILLI, 1 * MILLI).encode()),
        (PUBLISHER, TestSetChunk(1, 0, 1, TEST_SET).encode()),
        (PORTAL, encode_ether_deposit(PUBLISHER, 5 * MILLI, encode_deposit_data(1))),
        (validator(0), Register(1, ROLE_VALIDATOR, 0).encode()),
        *[(t, Register(1, ROLE_TRAINER, 0).encode()) for t in team],
        (STRANGER, b"\x12\x34\x56\x78"),
        (validator(0), report(1, 1, 9000, team, model=model, domain=domain).encode()),
        (validator(0), ModelChunk(1, 1, qmodel.digest(model), 0, 1, model).encode()),
        (PUBLISHER, RoundClose(1, 1).encode()),
        (trainer(0, 0), Withdraw().encode()),
    ]
    contest_blocks = task_message().contest_blocks  # the report is the last one: the close is due this much later
    return [(sender, payload, 10 + i + (contest_blocks if i >= len(steps) - 2 else 0))
            for i, (sender, payload) in enumerate(steps)]
