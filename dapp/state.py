"""The rollup's state machine: tasks, participants, stakes, balances, rewards and FLPoS. Pure, no I/O.

`apply(state, advance, ether_portal)` returns an `Accepted` (a *new* state plus the outputs to emit, in
order) or raises `Rejected(reason)`. The old state is never mutated: every update copies the mappings
it changes, so a reject or an unexpected error leaves the caller's state exactly as it was — which a
host-mode backend needs, because nothing rolls its process back the way a Cartesi Machine is rolled back.

Money is integer wei; accuracies are basis points; ordering is registration order, report order or
score (payments); the only randomness is the input's ``prev_randao``. Rules: docs/PROTOCOL.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Mapping, Union

from eth_utils import keccak

from dapp.mad import BPS, is_positive
from dapp.portal import MalformedDeposit, decode_ether_deposit
from dapp.schema import (
    ROLE_NAMES, ROLE_TRAINER, ROLE_VALIDATOR, RULE_BEST_CONTRIBUTION, RULE_GREATEST_STAKE, RULE_NAMES,
    RULE_RANDAO_DRAW, Contribution, ContributionClassified, CreateTask, DepositCredited, Message,
    MessageDecodeError, ParticipantRegistered, ProducerElected, Register, RewardPaid, RoundClose, RoundRecorded, TaskCreated,
    TaskFinished, TaskFunded, ValidatorReport, ValidatorRewarded, Withdraw, Withdrawal, decode_input,
    normalize_address, unpack_contribution,
)

UINT256_MAX = (1 << 256) - 1
ZERO_ADDRESS = "0x" + "00" * 20


class Rejected(Exception):
    """The input breaks a rule; ``reason`` says which, naming the values involved."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------------------- inputs, outputs


@dataclass(frozen=True)
class Advance:
    """One advance request as the rollup delivers it (v2 metadata plus the raw payload)."""

    msg_sender: str
    payload: bytes
    input_index: int = 0
    block_number: int = 0
    block_timestamp: int = 0
    prev_randao: bytes = bytes(32)
    chain_id: int = 0
    app_contract: str = ZERO_ADDRESS


@dataclass(frozen=True)
class Notice:
    message: Message

    @property
    def payload(self) -> bytes:
        return self.message.encode()


@dataclass(frozen=True)
class Voucher:
    """Ether paid by the Application contract to ``destination`` when the voucher is executed on L1."""

    destination: str
    value: int
    payload: bytes = b""


@dataclass(frozen=True)
class Report:
    payload: bytes


Output = Union[Notice, Voucher, Report]


# ------------------------------------------------------------------------------------------ state


@dataclass(frozen=True)
class Participant:
    address: str
    role: int
    group: int


@dataclass(frozen=True)
class GroupReport:
    """What one validator reported for the current round, and what the rollup paid for it."""

    validator: str
    validator_accuracy_bps: int
    model_digest: bytes
    positives: int
    negatives: int
    paid: int


@dataclass(frozen=True)
class RoundRecord:
    round: int
    timestamp: int
    producer: str  # who closed the round
    global_digest: bytes
    global_accuracy_bps: int
    accumulated_accuracy_bps: int
    validator_accuracy_bps: tuple[int, ...]
    reports: tuple[GroupReport, ...]  # by group
    rewarded_validator: str
    rewarded_group: int
    distance_bps: int
    validator_paid: int
    trainer_paid: int
    escrow_left: int
    stakes: tuple[tuple[str, int], ...]  # every participant, registration order
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
    producer: str  # elected to close `current_round`
    escrow: int = 0
    started: bool = False
    current_round: int = 1
    participants: tuple[Participant, ...] = ()
    stakes: Mapping[str, int] = field(default_factory=dict)
    reports: tuple[GroupReport | None, ...] = ()  # current round, by group
    history: tuple[RoundRecord, ...] = ()

    @property
    def required_escrow(self) -> int:
        return self.rounds * (self.round_trainer_budget + self.validator_reward)

    @property
    def finished(self) -> bool:
        return self.current_round > self.rounds

    @property
    def group_budget(self) -> int:
        return self.round_trainer_budget // self.groups

    def participant(self, address: str) -> Participant | None:
        for p in self.participants:
            if p.address == address:
                return p
        return None

    def validators(self) -> list[Participant]:
        return [p for p in self.participants if p.role == ROLE_VALIDATOR]

    def trainers(self) -> list[Participant]:
        return [p for p in self.participants if p.role == ROLE_TRAINER]


@dataclass(frozen=True)
class State:
    tasks: Mapping[int, Task] = field(default_factory=dict)
    balances: Mapping[str, int] = field(default_factory=dict)  # withdrawable wei, no zero entries

    def balance(self, address: str) -> int:
        return self.balances.get(address, 0)


@dataclass(frozen=True)
class Accepted:
    state: State
    outputs: tuple[Output, ...]
    summary: str  # one line for the log, in words


# ---------------------------------------------------------------------------------------- helpers


def _put(mapping: Mapping, key, value) -> dict:
    """A copy of ``mapping`` with ``key`` set: the only way state mappings change."""
    out = dict(mapping)
    out[key] = value
    return out


def _credit(balances: Mapping[str, int], address: str, amount: int) -> dict:
    if amount == 0:
        return dict(balances)
    return _put(balances, address, balances.get(address, 0) + amount)


def format_wei(wei: int) -> str:
    """Wei as an exact decimal Ether amount, e.g. ``0.009 ETH``."""
    whole, frac = divmod(wei, 10**18)
    text = str(whole) + (("." + f"{frac:018d}".rstrip("0")) if frac else "")
    return f"{text} ETH"


def short(address: str) -> str:
    return address[:8] + "…"


def _task(state: State, task_id: int) -> Task:
    task = state.tasks.get(task_id)
    if task is None:
        raise Rejected(f"task {task_id} does not exist")
    return task


def _running(task: Task) -> None:
    if task.finished:
        raise Rejected(f"task {task.task_id} is finished (all {task.rounds} rounds closed)")
    if not task.started:
        raise Rejected(f"task {task.task_id} is not funded: {task.escrow} of {task.required_escrow} wei")


def _check_round(task: Task, round_: int) -> None:
    if round_ != task.current_round:
        raise Rejected(f"task {task.task_id} is in round {task.current_round}, not round {round_}")


def _check_bps(what: str, value: int) -> None:
    if value > BPS:
        raise Rejected(f"{what} {value} bps is above {BPS}")


# ------------------------------------------------------------------------------------- transitions


def apply(state: State, advance: Advance, ether_portal: str) -> Accepted:
    """Process one advance input: a new state and its outputs, or `Rejected` with the state untouched."""
    sender = normalize_address(advance.msg_sender)
    if sender == normalize_address(ether_portal):
        return _deposit(state, advance)
    try:
        message = decode_input(advance.payload)
    except MessageDecodeError as err:
        raise Rejected(str(err)) from None
    handler = _HANDLERS[type(message)]
    return handler(state, message, sender, advance)


def _deposit(state: State, advance: Advance) -> Accepted:
    """EtherPortal deposits are never rejected once parsed: the Ether already sits in the Application."""
    try:
        deposit = decode_ether_deposit(advance.payload)
    except MalformedDeposit as err:
        raise Rejected(str(err)) from None
    data, who, value = deposit.exec_layer_data, deposit.sender, deposit.value
    reason, task = None, None
    if not data:
        reason = "the deposit names no task"
    elif len(data) != 32 or int.from_bytes(data, "big") >= 1 << 64:
        reason = f"extra data of {len(data)} bytes is not abi.encode(uint64 taskId)"
    else:
        task_id = int.from_bytes(data, "big")
        task = state.tasks.get(task_id)
        if task is None:
            reason = f"task {task_id} does not exist"
        elif task.publisher != who:
            reason = f"only the publisher {task.publisher} funds task {task_id}"
        elif task.finished:
            reason = f"task {task_id} is finished"
    if reason is not None or task is None:
        balances = _credit(state.balances, who, value)
        why = f"deposit of {value} wei from {who} credited to its withdrawable balance: {reason}"
        report = json.dumps({"deposit": "credited", "reason": why, "input_index": advance.input_index})
        outputs = (Notice(DepositCredited(who, value, balances.get(who, 0))), Report(report.encode()))
        return Accepted(replace(state, balances=balances), outputs,
                        f"deposit {format_wei(value)} from {short(who)} — credited to its balance ({reason})")
    escrow = task.escrow + value
    started = task.started or escrow >= task.required_escrow
    task = replace(task, escrow=escrow, started=started)
    notice = TaskFunded(task.task_id, who, value, escrow, task.required_escrow, started)
    return Accepted(replace(state, tasks=_put(state.tasks, task.task_id, task)), (Notice(notice),),
                    f"deposit {format_wei(value)} from {short(who)} funds task {task.task_id}: escrow "
                    f"{format_wei(escrow)} of {format_wei(task.required_escrow)}"
                    + (", task started" if started else ""))


def _create_task(state: State, m: CreateTask, sender: str, advance: Advance) -> Accepted:
    if m.task_id in state.tasks:
        raise Rejected(f"task {m.task_id} already exists")
    if not 0 < m.mad_bps < BPS:
        raise Rejected(f"MAD {m.mad_bps} bps is not in (0, {BPS})")
    if m.rounds < 1:
        raise Rejected("a task needs at least 1 round, got 0")
    if m.groups < 1:
        raise Rejected("a task needs at least 1 group, got 0")
    task = Task(task_id=m.task_id, publisher=sender, mad_bps=m.mad_bps, rounds=m.rounds, groups=m.groups,
                round_trainer_budget=m.round_trainer_budget, reward_per_positive=m.reward_per_positive,
                validator_reward=m.validator_reward, producer=sender, reports=(None,) * m.groups)
    if task.required_escrow > UINT256_MAX:
        raise Rejected(f"required escrow {m.rounds} x ({m.round_trainer_budget} + {m.validator_reward}) "
                       f"wei overflows uint256")
    task = replace(task, started=task.required_escrow == 0)
    notice = TaskCreated(m.task_id, sender, m.mad_bps, m.rounds, m.groups, m.round_trainer_budget,
                         m.reward_per_positive, m.validator_reward, task.required_escrow)
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task)), (Notice(notice),),
                    f"CreateTask {m.task_id} by {short(sender)} — accepted, {m.rounds} round(s), {m.groups} group(s),"
                    f" needs {format_wei(task.required_escrow)}")


def _register(state: State, m: Register, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    if task.finished:
        raise Rejected(f"task {m.task_id} is finished (all {task.rounds} rounds closed)")
    if m.role not in ROLE_NAMES:
        raise Rejected(f"role {m.role} is neither 0 (trainer) nor 1 (validator)")
    if m.group >= task.groups:
        raise Rejected(f"group {m.group} does not exist in task {m.task_id} (groups 0..{task.groups - 1})")
    existing = task.participant(sender)
    if existing is not None:
        raise Rejected(f"{sender} is already registered in task {m.task_id} as "
                       f"{ROLE_NAMES[existing.role]} of group {existing.group}")
    if m.role == ROLE_VALIDATOR:
        for p in task.validators():
            if p.group == m.group:
                raise Rejected(f"group {m.group} of task {m.task_id} already has validator {p.address}")
    task = replace(task, participants=task.participants + (Participant(sender, m.role, m.group),),
                   stakes=_put(task.stakes, sender, 0))
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task)),
                    (Notice(ParticipantRegistered(m.task_id, sender, m.role, m.group)),),
                    f"Register {short(sender)} in task {m.task_id} as {ROLE_NAMES[m.role]} of group {m.group}"
                    f" — accepted")


def _validator_report(state: State, m: ValidatorReport, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _running(task)
    me = task.participant(sender)
    if me is None or me.role != ROLE_VALIDATOR:
        raise Rejected(f"{sender} is not a validator of task {m.task_id}")
    _check_round(task, m.round)
    if task.reports[me.group] is not None:
        raise Rejected(f"validator {sender} already reported round {m.round} of task {m.task_id}")
    _check_bps("validator accuracy", m.validator_accuracy_bps)
    contributions, seen = [], set()
    for word in m.contributions:
        c = unpack_contribution(word)
        trainer = task.participant(c.trainer)
        if trainer is None or trainer.role != ROLE_TRAINER:
            raise Rejected(f"{c.trainer} is not a registered trainer of task {m.task_id}")
        if trainer.group != me.group:
            raise Rejected(f"trainer {c.trainer} is in group {trainer.group}, not in validator "
                           f"{sender}'s group {me.group}")
        if c.trainer in seen:
            raise Rejected(f"trainer {c.trainer} appears twice in the report")
        _check_bps(f"accuracy of trainer {c.trainer}", c.accuracy_bps)
        seen.add(c.trainer)
        contributions.append(c)

    positive = {c.trainer: is_positive(c.accuracy_bps, m.validator_accuracy_bps, task.mad_bps)
                for c in contributions}
    outputs: list[Output] = [
        Notice(ContributionClassified(m.task_id, m.round, me.group, c.trainer, c.accuracy_bps,
                                      m.validator_accuracy_bps, c.samples, positive[c.trainer]))
        for c in contributions]
    stakes, balances, paid_total = dict(task.stakes), dict(state.balances), 0
    for trainer, amount in positive_rewards([c for c in contributions if positive[c.trainer]],
                                            task.reward_per_positive, task.group_budget):
        paid_total += amount
        stakes[trainer] += amount
        balances[trainer] = balances.get(trainer, 0) + amount
        outputs.append(Notice(RewardPaid(m.task_id, m.round, trainer, amount, stakes[trainer])))
    if paid_total > task.escrow:  # unreachable while a started task's escrow covers every round
        raise Rejected(f"overspending: paying {paid_total} wei from an escrow of {task.escrow} wei")

    n_pos = sum(positive.values())
    report = GroupReport(sender, m.validator_accuracy_bps, m.model_digest, n_pos, len(positive) - n_pos,
                         paid_total)
    reports = task.reports[:me.group] + (report,) + task.reports[me.group + 1:]
    task = replace(task, escrow=task.escrow - paid_total, stakes=stakes, reports=reports)
    return Accepted(State(_put(state.tasks, m.task_id, task), balances), tuple(outputs),
                    f"ValidatorReport task {m.task_id} round {m.round} group {me.group} — accepted, "
                    f"{n_pos} Positive, {len(positive) - n_pos} Negative, paid {format_wei(paid_total)}")


def positive_rewards(positives: list[Contribution], reward: int, budget: int) -> list[tuple[str, int]]:
    """What each Positive of a group earns from the group's budget: the best scores first; Positives with the
    same score share pro rata what is left when it cannot pay them all in full (wei that do not divide stay
    in escrow). Never by address, so no key can buy its place. In report order within a score."""
    paid: list[tuple[str, int]] = []
    left = budget
    for score in sorted({c.accuracy_bps for c in positives}, reverse=True):
        tied = [c.trainer for c in positives if c.accuracy_bps == score]
        amount = min(reward, left // len(tied))
        if amount == 0:
            break
        paid += [(trainer, amount) for trainer in tied]
        left -= amount * len(tied)
    return paid


def elect_producer(task: Task, stakes: Mapping[str, int], rewarded: str,
                   prev_randao: bytes) -> tuple[str, int]:
    """FLPoS: the validator with the greatest stake; tie -> the one rewarded this round;
    still tied -> the lowest ``keccak256(prev_randao ‖ address)``. Returns (address, rule)."""
    validators = [p.address for p in task.validators()]
    top = max(stakes[v] for v in validators)
    tied = [v for v in validators if stakes[v] == top]
    if len(tied) == 1:
        return tied[0], RULE_GREATEST_STAKE
    if rewarded in tied:
        return rewarded, RULE_BEST_CONTRIBUTION
    draw = min(tied, key=lambda v: keccak(prev_randao + bytes.fromhex(v[2:])))
    return draw, RULE_RANDAO_DRAW


def _round_close(state: State, m: RoundClose, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _running(task)
    _check_round(task, m.round)
    if sender != task.producer:
        raise Rejected(f"only the elected producer {task.producer} may close round {m.round} of task "
                       f"{m.task_id}, not {sender}")
    missing = [g for g, r in enumerate(task.reports) if r is None]
    if missing:
        raise Rejected(f"round {m.round} of task {m.task_id} still lacks the report of group(s) "
                       f"{', '.join(map(str, missing))}")
    if len(m.validator_accuracy_bps) != task.groups:
        raise Rejected(f"{len(m.validator_accuracy_bps)} validator accuracies for {task.groups} groups")
    _check_bps("global accuracy", m.global_accuracy_bps)
    for g, acc in enumerate(m.validator_accuracy_bps):
        _check_bps(f"accuracy of group {g}'s model", acc)

    # Validator reward: the model closest to the global one by test accuracy; ties -> lower group.
    distances = [abs(acc - m.global_accuracy_bps) for acc in m.validator_accuracy_bps]
    best_group = min(range(task.groups), key=lambda g: (distances[g], g))
    reports: tuple[GroupReport, ...] = tuple(r for r in task.reports if r is not None)
    winner = reports[best_group].validator
    amount = min(task.validator_reward, task.escrow)
    stakes = _put(task.stakes, winner, task.stakes[winner] + amount)
    balances = _credit(state.balances, winner, amount)
    escrow = task.escrow - amount
    accs = [r.global_accuracy_bps for r in task.history] + [m.global_accuracy_bps]
    accumulated = sum(accs) // len(accs)
    trainer_paid = sum(r.paid for r in reports)
    outputs: list[Output] = [Notice(ValidatorRewarded(m.task_id, m.round, winner, best_group,
                                                      distances[best_group], amount, stakes[winner]))]
    trainers, validators = task.trainers(), task.validators()
    outputs.append(Notice(RoundRecorded(
        m.task_id, m.round, advance.block_timestamp, m.global_digest, m.global_accuracy_bps, accumulated,
        tuple(p.address for p in trainers), tuple(stakes[p.address] for p in trainers),
        tuple(p.address for p in validators), tuple(stakes[p.address] for p in validators),
        trainer_paid, escrow)))
    last = m.round == task.rounds
    if last:
        next_producer, rule = "", -1
        balances = _credit(balances, task.publisher, escrow)
        outputs.append(Notice(TaskFinished(m.task_id, task.publisher, escrow, accumulated)))
        tail = f"task finished, {format_wei(escrow)} back to the publisher"
    else:
        next_producer, rule = elect_producer(task, stakes, winner, advance.prev_randao)
        outputs.append(Notice(ProducerElected(m.task_id, m.round + 1, next_producer, stakes[next_producer],
                                              rule)))
        tail = f"next producer {short(next_producer)} ({RULE_NAMES[rule]})"
    record = RoundRecord(
        round=m.round, timestamp=advance.block_timestamp, producer=sender, global_digest=m.global_digest,
        global_accuracy_bps=m.global_accuracy_bps, accumulated_accuracy_bps=accumulated,
        validator_accuracy_bps=tuple(m.validator_accuracy_bps), reports=reports,
        rewarded_validator=winner, rewarded_group=best_group, distance_bps=distances[best_group],
        validator_paid=amount, trainer_paid=trainer_paid, escrow_left=escrow,
        stakes=tuple((p.address, stakes[p.address]) for p in task.participants),
        next_producer=next_producer, election_rule=rule)
    task = replace(task, escrow=0 if last else escrow, stakes=stakes, current_round=m.round + 1,
                   producer=next_producer or task.producer, reports=(None,) * task.groups,
                   history=task.history + (record,))
    return Accepted(State(_put(state.tasks, m.task_id, task), balances), tuple(outputs),
                    f"RoundClose task {m.task_id} round {m.round} — accepted, global accuracy "
                    f"{m.global_accuracy_bps} bps, validator reward to group {best_group}, {tail}")


def _withdraw(state: State, m: Withdraw, sender: str, advance: Advance) -> Accepted:
    amount = state.balance(sender)
    if amount == 0:
        raise Rejected(f"{sender} has nothing to withdraw")
    balances = {a: b for a, b in state.balances.items() if a != sender}
    return Accepted(replace(state, balances=balances),
                    (Voucher(sender, amount), Notice(Withdrawal(sender, amount))),
                    f"Withdraw by {short(sender)} — accepted, voucher for {format_wei(amount)}")


_HANDLERS = {CreateTask: _create_task, Register: _register, ValidatorReport: _validator_report,
             RoundClose: _round_close, Withdraw: _withdraw}
