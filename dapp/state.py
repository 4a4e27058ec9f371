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

import numpy as np

from dapp import qmodel, qnn, trust_rule
from dapp.dp_budget import DpBudget
from dapp.eip712 import Domain, Receipt, SignatureError, Update, signer
from dapp.mad import BPS, is_positive
from dapp.market import Market, fee_due
from dapp.portal import MalformedDeposit, decode_ether_deposit
from dapp.rewards import election_order, pay_in_order, ranked_tiers, share_of
from dapp.schema import (
    BLOB_CHALLENGED_UPDATE, BLOB_CONTESTED_UPDATE, BLOB_VALIDATOR_MODEL, CANCEL_NAMES, CHUNK_DATA,
    DEFAULT_CHALLENGES_PER_ROUND,
    DISPUTE_CHALLENGED, DISPUTE_DROPPED, DISPUTE_MISJUDGED, DISPUTE_NAMES, MAX_CHUNKS, MAX_TASK_TRAINERS,
    MAX_OPEN_ROUNDS, MAX_REPORT_PARTS, MAX_TEST_SET, MAX_TRAINERS_PER_GROUP, PENALTY_CHALLENGE, PENALTY_CONTEST,
    PENALTY_UNREVEALED,
    ROLE_NAMES, ROLE_TRAINER, ROLE_VALIDATOR, RULE_NAMES, STAKES_PAGE, AdmitTrainers, BlobRejected, CancelTask,
    Challenge, CellCompliance, Contest, ContestResolved, Contested, ContributionClassified, CreateTask,
    DepositCredited, GlobalModel, GroupSkipped, Message, MessageDecodeError, ModelChunk, ModelScored,
    ParticipantRegistered, ProducerElected, ProducerMissed, Register, ReportPart, RewardPaid, RoundClose,
    RoundRecorded, TaskCancelled, TaskCreated, TaskFinished, TaskFunded, TestSetChunk, TestSetPosted,
    TrainersAdmitted, TrainerStakes, TrainerStanding, ValidatorPenalized, ValidatorReport, ValidatorRewarded,
    Withdraw, Withdrawal, Contribution, decode_input, normalize_address, unpack_contribution, VALIDATION_NAMES,
    VALIDATION_TRUST, PAYOUT_NAMES, PAYOUT_SHAPLEY, BrokerFeePaid,
)
from dapp.task import KEEP_DIGEST, Dispute, Entry, GroupReport, PartialReport, Participant, RoundRecord, Task
from dapp.trust_rule import Standing

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
class State:
    tasks: Mapping[int, Task] = field(default_factory=dict)
    balances: Mapping[str, int] = field(default_factory=dict)  # withdrawable wei, no zero entries
    market: Market = Market()  # the broker and its fee, fixed at deployment (dapp/market.py)

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


def _not_over(task: Task) -> None:
    if task.finished:
        raise Rejected(f"task {task.task_id} is finished (all {task.rounds} rounds closed)")
    if task.cancelled is not None:
        raise Rejected(f"task {task.task_id} was cancelled ({CANCEL_NAMES[task.cancelled]})")


def _running(task: Task, block: int) -> None:
    """The task is in a round: funded, seated (or its window closed) and that round has begun."""
    _not_over(task)
    if not task.funded:
        raise Rejected(f"task {task.task_id} is not funded: {task.escrow} of {task.required_escrow} wei")
    if not task.started(block):
        seated = sum(task.seated(g) for g in range(task.groups))
        raise Rejected(f"task {task.task_id} has not started at block {block}: it starts when every group's "
                       f"validator has registered ({seated} of {task.groups}) or after block "
                       f"{task.registration_deadline}, with at least one")


def _starting_digest(task: Task) -> bytes:
    """The digest of the model the current round trains from: the last global model, or the committed initial one
    (zero when none was committed: then nothing is exempt from the copy rule)."""
    return qmodel.digest(task.global_model) if task.global_model else task.initial_model_digest


def _check_round(task: Task, round_: int) -> None:
    if round_ != task.current_round:
        raise Rejected(f"task {task.task_id} is in round {task.current_round}, not round {round_}")


def _round_view(task: Task, round_: int, block: int) -> Task:
    """The task as the open round ``round_`` sees it (`Task.at`); refused unless the round is open: the current one,
    or (openRounds > 1) a later one whose round r - openRounds closed."""
    if task.open_rounds == 1:
        _check_round(task, round_)
        return task
    last = min(task.rounds, task.current_round + task.open_rounds - 1)
    if not task.current_round <= round_ <= last:
        span = f"round {last}" if last == task.current_round else f"rounds {task.current_round}..{last}"
        raise Rejected(f"task {task.task_id} has {span} open, not round {round_}")
    return task.at(round_, block)


def _save(state: State, view: Task) -> dict:
    """The state's tasks with what a handler changed in one open round's view (`_round_view`) stored."""
    return _put(state.tasks, view.task_id, state.tasks[view.task_id].stored(view))


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


def _deposit_refusal(state: State, data: bytes, who: str, block: int) -> tuple[str | None, Task | None]:
    """Why a deposit cannot fund a task (None: it funds the task returned)."""
    if not data:
        return "the deposit names no task", None
    if len(data) != 32 or int.from_bytes(data, "big") >= 1 << 64:
        return f"extra data of {len(data)} bytes is not abi.encode(uint64 taskId)", None
    task_id = int.from_bytes(data, "big")
    task = state.tasks.get(task_id)
    if task is None:
        return f"task {task_id} does not exist", None
    if task.publisher != who:
        return f"only the publisher {task.publisher} funds task {task_id}", None
    if task.over:
        return f"task {task_id} is {'finished' if task.finished else 'cancelled'}", None
    if not task.funded and block > task.registration_deadline:
        return (f"task {task_id} was not funded by the end of its registration window (block "
                f"{task.registration_deadline}) and can no longer start"), None
    return None, task


def _deposit(state: State, advance: Advance) -> Accepted:
    """EtherPortal deposits are never rejected once parsed: the Ether already sits in the Application."""
    try:
        deposit = decode_ether_deposit(advance.payload)
    except MalformedDeposit as err:
        raise Rejected(str(err)) from None
    who, value = deposit.sender, deposit.value
    reason, task = _deposit_refusal(state, deposit.exec_layer_data, who, advance.block_number)
    if reason is not None or task is None:
        balances = _credit(state.balances, who, value)
        why = f"deposit of {value} wei from {who} credited to its withdrawable balance: {reason}"
        report = json.dumps({"deposit": "credited", "reason": why, "input_index": advance.input_index})
        outputs = (Notice(DepositCredited(who, value, balances.get(who, 0))), Report(report.encode()))
        return Accepted(replace(state, balances=balances), outputs,
                        f"deposit {format_wei(value)} from {short(who)} — credited to its balance ({reason})")
    escrow = task.escrow + value
    funded_block = task.funded_block
    if funded_block is None and escrow >= task.required_escrow:
        funded_block = advance.block_number
    task = replace(task, escrow=escrow, funded_block=funded_block)
    notice = TaskFunded(task.task_id, who, value, escrow, task.required_escrow, task.funded)
    return Accepted(replace(state, tasks=_put(state.tasks, task.task_id, task)), (Notice(notice),),
                    f"deposit {format_wei(value)} from {short(who)} funds task {task.task_id}: escrow "
                    f"{format_wei(escrow)} of {format_wei(task.required_escrow)}"
                    + (", task funded" if task.funded else ""))


def _create_task(state: State, m: CreateTask, sender: str, advance: Advance) -> Accepted:
    task_id = len(state.tasks) + 1  # tasks are never removed: ids are 1, 2, … in creation order
    if not 0 < m.mad_bps < BPS:
        raise Rejected(f"MAD {m.mad_bps} bps is not in (0, {BPS})")
    if m.rounds < 1:
        raise Rejected("a task needs at least 1 round, got 0")
    if m.groups < 1:
        raise Rejected("a task needs at least 1 group, got 0")
    if len(m.validators) != m.groups:
        raise Rejected(f"name one validator per group: {len(m.validators)} validators for {m.groups} groups")
    if ZERO_ADDRESS in m.validators or len(set(m.validators)) != m.groups:
        raise Rejected("the named validators must be distinct, non-zero addresses")
    if not 1 <= m.trainers_per_group <= MAX_TRAINERS_PER_GROUP:
        raise Rejected(f"trainers per group {m.trainers_per_group} is not in 1..{MAX_TRAINERS_PER_GROUP}")
    if m.groups * m.trainers_per_group > MAX_TASK_TRAINERS:
        raise Rejected(f"{m.groups} groups x {m.trainers_per_group} trainers is above {MAX_TASK_TRAINERS} "
                       f"trainers per task")
    for name in ("registration_blocks", "report_blocks", "close_blocks", "contest_blocks"):
        if getattr(m, name) < 1:
            raise Rejected(f"{name} must be at least 1 block, got 0")
    if not 1 <= m.test_set_size <= MAX_TEST_SET:
        raise Rejected(f"a public test set of {m.test_set_size} samples is not in 1..{MAX_TEST_SET}")
    cap = max(DEFAULT_CHALLENGES_PER_ROUND, m.trainers_per_group // 10)
    if m.challenges_per_round > cap:
        raise Rejected(f"{m.challenges_per_round} challenges per group and round is above {cap} (one in ten of the "
                       f"group's {m.trainers_per_group} trainers, at least {DEFAULT_CHALLENGES_PER_ROUND})")
    if m.model_arch not in qmodel.ARCHS:
        raise Rejected(f"model architecture {m.model_arch} is unknown (known: "
                       + ", ".join(f"{a.id} {a.name}" for a in qmodel.ARCHS.values()) + ")")
    dp = DpBudget.of(m)
    if (problem := dp.problem()) is not None:
        raise Rejected(problem)
    if m.validation not in VALIDATION_NAMES:
        raise Rejected(f"validation rule {m.validation} is unknown (known: "
                       + ", ".join(f"{k} {v}" for k, v in VALIDATION_NAMES.items()) + ")")
    if m.payout not in PAYOUT_NAMES:
        raise Rejected(f"payout rule {m.payout} is unknown (known: "
                       + ", ".join(f"{k} {v}" for k, v in PAYOUT_NAMES.items()) + ")")
    if not 1 <= m.open_rounds <= MAX_OPEN_ROUNDS:
        raise Rejected(f"open rounds {m.open_rounds} is not in 1..{MAX_OPEN_ROUNDS}")
    task = Task(task_id=task_id, publisher=sender, mad_bps=m.mad_bps, rounds=m.rounds, groups=m.groups,
                round_trainer_budget=m.round_trainer_budget, reward_per_positive=m.reward_per_positive,
                validator_reward=m.validator_reward, seats=tuple(m.validators),
                trainers_per_group=m.trainers_per_group, created_block=advance.block_number,
                registration_blocks=m.registration_blocks, report_blocks=m.report_blocks,
                close_blocks=m.close_blocks, test_set_digest=m.test_set_digest, test_set_size=m.test_set_size,
                model_arch=m.model_arch, contest_blocks=m.contest_blocks,
                challenges_per_round=m.challenges_per_round, dp=dp, trainer_approval=m.trainer_approval,
                initial_model_digest=m.initial_model_digest, validation=m.validation, payout=m.payout,
                open_rounds=m.open_rounds,
                reports=(None,) * m.groups, group_trainers=(0,) * m.groups, group_admitted=(0,) * m.groups)
    task = replace(task, broker_fee=state.market.fee_on(task.budget))
    if task.required_escrow > UINT256_MAX:
        raise Rejected(f"required escrow {m.rounds} x ({m.round_trainer_budget} + {m.validator_reward}) "
                       f"wei" + (f" + the broker's fee of {task.broker_fee} wei" if task.broker_fee else "")
                       + " overflows uint256")
    if task.required_escrow == 0:
        task = replace(task, funded_block=advance.block_number)
    notice = TaskCreated(task_id, sender, m.mad_bps, m.rounds, m.groups, m.round_trainer_budget,
                         m.reward_per_positive, m.validator_reward, task.required_escrow, task.seats,
                         m.trainers_per_group, task.registration_deadline, m.report_blocks, m.close_blocks,
                         m.trainer_approval, m.test_set_digest, m.test_set_size, m.model_arch, m.contest_blocks,
                         m.challenges_per_round, dp.mechanism, dp.epsilon_milli, dp.delta_atto, dp.clip_micro,
                         dp.total_epsilon_milli, m.initial_model_digest, m.validation, m.payout, m.open_rounds)
    return Accepted(replace(state, tasks=_put(state.tasks, task_id, task)), (Notice(notice),),
                    f"CreateTask {task_id} by {short(sender)} — accepted, {m.rounds} round(s), {m.groups} group(s),"
                    f" needs {format_wei(task.required_escrow)}, registration until block "
                    f"{task.registration_deadline}; test set of {m.test_set_size} samples "
                    f"0x{m.test_set_digest.hex()[:12]}…, model {qmodel.ARCHS[m.model_arch].name}, validation "
                    f"{VALIDATION_NAMES[m.validation]}, payout {PAYOUT_NAMES[m.payout]}, {m.open_rounds} round(s) open "
                    f"at once; privacy: {dp.words()}")


def _register(state: State, m: Register, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _not_over(task)
    if advance.block_number > task.registration_deadline:
        raise Rejected(f"registration for task {m.task_id} closed at block {task.registration_deadline}")
    if m.role not in ROLE_NAMES:
        raise Rejected(f"role {m.role} is neither 0 (trainer) nor 1 (validator)")
    if m.group >= task.groups:
        raise Rejected(f"group {m.group} does not exist in task {m.task_id} (groups 0..{task.groups - 1})")
    existing = task.participant(sender)
    if existing is not None:
        raise Rejected(f"{sender} is already registered in task {m.task_id} as "
                       f"{ROLE_NAMES[existing.role]} of group {existing.group}")
    seated_block, group_trainers = task.seated_block, task.group_trainers
    if m.role == ROLE_VALIDATOR:
        if task.seats[m.group] != sender:
            raise Rejected(f"group {m.group} of task {m.task_id} has named validator {task.seats[m.group]}, "
                           f"not {sender}")
    else:
        if sender in task.seats:
            raise Rejected(f"{sender} is named validator of group {task.seats.index(sender)} of task "
                           f"{m.task_id}; it registers as that group's validator")
        if task.trainer_approval and task.admitted.get(sender) != m.group:
            raise Rejected(f"{sender} is not admitted to group {m.group} of task {m.task_id} (its publisher "
                           f"admits trainers)")
        if task.group_trainers[m.group] >= task.trainers_per_group:
            raise Rejected(f"group {m.group} of task {m.task_id} is full ({task.trainers_per_group} trainers)")
        group_trainers = _replaced(group_trainers, m.group, group_trainers[m.group] + 1)
    task = replace(task, participants=_put(task.participants, sender, Participant(sender, m.role, m.group)),
                   stakes=_put(task.stakes, sender, 0), group_trainers=group_trainers)
    if m.role == ROLE_VALIDATOR and all(task.seated(g) for g in range(task.groups)):
        seated_block = advance.block_number
        task = replace(task, seated_block=seated_block)
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task)),
                    (Notice(ParticipantRegistered(m.task_id, sender, m.role, m.group)),),
                    f"Register {short(sender)} in task {m.task_id} as {ROLE_NAMES[m.role]} of group {m.group}"
                    f" — accepted")


def _admit_trainers(state: State, m: AdmitTrainers, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _not_over(task)
    if sender != task.publisher:
        raise Rejected(f"only the publisher {task.publisher} admits trainers to task {m.task_id}, not {sender}")
    if not task.trainer_approval:
        raise Rejected(f"task {m.task_id} registers trainers without approval")
    if advance.block_number > task.registration_deadline:
        raise Rejected(f"registration for task {m.task_id} closed at block {task.registration_deadline}")
    if m.group >= task.groups:
        raise Rejected(f"group {m.group} does not exist in task {m.task_id} (groups 0..{task.groups - 1})")
    if len(set(m.trainers)) != len(m.trainers):
        raise Rejected("a trainer is listed twice")
    for trainer in m.trainers:
        if trainer in task.admitted:
            raise Rejected(f"{trainer} is already admitted to group {task.admitted[trainer]} of task {m.task_id}")
        if trainer in task.seats or trainer == ZERO_ADDRESS:
            raise Rejected(f"{trainer} cannot be a trainer of task {m.task_id} (a named validator or zero)")
    count = task.group_admitted[m.group] + len(m.trainers)
    if count > task.trainers_per_group:
        raise Rejected(f"admitting {len(m.trainers)} more to group {m.group} of task {m.task_id} makes {count}, "
                       f"above its {task.trainers_per_group} trainers")
    admitted = dict(task.admitted)
    admitted.update((t, m.group) for t in m.trainers)
    task = replace(task, admitted=admitted, group_admitted=_replaced(task.group_admitted, m.group, count))
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task)),
                    (Notice(TrainersAdmitted(m.task_id, m.group, tuple(m.trainers), count)),),
                    f"AdmitTrainers task {m.task_id} group {m.group}: {len(m.trainers)} admitted — accepted")


def _replaced(values: tuple, index: int, value) -> tuple:
    return values[:index] + (value,) + values[index + 1:]


def _report_head(task: Task, m: ValidatorReport | ReportPart, sender: str, block: int) -> tuple[Participant, Task]:
    """The checks every report input passes, whole or a part: the sender's validator seat, the round, the report
    deadline, not reported yet, its own model commitment, its accuracy. Returns the validator and the task as the
    report's round sees it (`_round_view`)."""
    _running(task, block)
    me = task.participant(sender)
    if me is None or me.role != ROLE_VALIDATOR:
        raise Rejected(f"{sender} is not a validator of task {m.task_id}")
    task = _round_view(task, m.round, block)
    deadline = task.report_deadline()  # None: the previous round still takes reports, this one's window is ahead
    if deadline is not None and block > deadline:
        raise Rejected(f"the report deadline of round {m.round} of task {m.task_id} was block {deadline}; "
                       f"this report came in block {block}")
    if task.reports[me.group] is not None:
        raise Rejected(f"validator {sender} already reported round {m.round} of task {m.task_id}")
    copied = [g for g, r in enumerate(task.reports) if r is not None and r.model_digest == m.model_digest]
    if copied and not _exempt(task, m.round, m.model_digest):
        raise Rejected(f"model 0x{m.model_digest.hex()[:12]}… is already committed by group {copied[0]} in round "
                       f"{m.round}: each validator commits its own model")
    _check_bps("validator accuracy", m.validator_accuracy_bps)
    return me, task


def _exempt(task: Task, round_: int, model_digest: bytes) -> bool:
    """A commitment several groups may make: the round's starting model, which a validator that accepted nothing
    keeps. One round open at a time: its digest (the last global model, known on chain when the round starts).
    Several: digest 0, "I keep the starting model" (the previous round may not have closed yet, so its global is
    not known when the report arrives), or round 1's committed initial model."""
    if task.open_rounds == 1:
        return model_digest == _starting_digest(task)
    return model_digest == KEEP_DIGEST or (round_ == 1 and model_digest == task.initial_model_digest)


def _report_entries(task: Task, m: ValidatorReport | ReportPart, me: Participant, advance: Advance,
                    listed: set[str]) -> list[Entry]:
    """The input's trainers, each checked: the rule's measures in range, registered in the validator's group, listed
    once (also against ``listed``, the report's earlier parts), accuracy in range, its own signature. The verdicts
    come later, over the whole report (`_complete_report`)."""
    n = len(m.contributions)
    if not len(m.update_digests) == len(m.sig_r) == len(m.sig_vs) == n:
        raise Rejected(f"the report's arrays differ in length: {n} contributions, {len(m.update_digests)} update "
                       f"digests, {len(m.sig_r)} r and {len(m.sig_vs)} yParityAndS signature halves")
    domain = Domain.of(advance)
    contributions = [unpack_contribution(word) for word in m.contributions]
    _check_measures(task, contributions)
    entries: dict[str, Entry] = {}
    for c, update_digest, r, vs in zip(contributions, m.update_digests, m.sig_r, m.sig_vs):
        trainer = task.participant(c.trainer)
        if trainer is None or trainer.role != ROLE_TRAINER:
            raise Rejected(f"{c.trainer} is not a registered trainer of task {m.task_id}")
        if trainer.group != me.group:
            raise Rejected(f"trainer {c.trainer} is in group {trainer.group}, not in validator "
                           f"{me.address}'s group {me.group}")
        if c.trainer in entries:
            raise Rejected(f"trainer {c.trainer} appears twice in the report")
        if c.trainer in listed:
            raise Rejected(f"trainer {c.trainer} is already in another part of the report")
        _check_bps(f"accuracy of trainer {c.trainer}", c.accuracy_bps)
        signed = Update(m.task_id, m.round, me.group, update_digest, c.samples)
        _check_signer(domain, signed, r + vs, c.trainer, f"trainer {c.trainer}'s Update signature")
        entries[c.trainer] = Entry(c.trainer, c.accuracy_bps, c.samples, update_digest, False, c.cosine_bps,
                                   c.norm_centi, c.share_bps)
    return list(entries.values())


def _complete_report(state: State, task: Task, me: Participant, m: ValidatorReport | ReportPart,
                     entries: list[Entry], block: int, what: str) -> Accepted:
    """The group's whole report is in: the task's rule judges every entry (a trust task against the whole report's
    median), a shapley task's shares are checked against the verdicts, one `ContributionClassified` per entry in
    report order, and the report counts from now on."""
    positives = _verdicts(task, m.round, m.validator_accuracy_bps, entries)
    judged = {e.trainer: replace(e, positive=p) for e, p in zip(entries, positives)}
    if task.open_rounds > 1 and m.model_digest == KEEP_DIGEST and any(positives):
        raise Rejected(f"validator {me.address} commits digest 0 (it kept round {m.round}'s starting model), yet "
                       f"{sum(positives)} of its updates are Positive by task {m.task_id}'s rule: a validator that "
                       f"accepted an update commits the model it averaged")
    _check_shares(task, list(judged.values()))
    outputs: list[Output] = [
        Notice(ContributionClassified(m.task_id, m.round, me.group, e.trainer, e.accuracy_bps,
                                      m.validator_accuracy_bps, e.samples, e.positive, e.cosine_bps, e.norm_centi,
                                      e.share_bps))
        for e in judged.values()]
    report = GroupReport(me.address, m.validator_accuracy_bps, m.model_digest, judged, block)
    partials = {g: p for g, p in task.partials.items() if g != me.group}
    task = replace(task, reports=_replaced(task.reports, me.group, report), partials=partials)
    return Accepted(replace(state, tasks=_save(state, task)), tuple(outputs),
                    f"{what} task {m.task_id} round {m.round} group {me.group} — accepted, "
                    f"{report.positives} Positive, {report.negatives} Negative (paid at the close), model "
                    f"0x{m.model_digest.hex()[:12]}… committed")


def _validator_report(state: State, m: ValidatorReport, sender: str, advance: Advance) -> Accepted:
    me, task = _report_head(_task(state, m.task_id), m, sender, advance.block_number)
    partial = task.partials.get(me.group)
    if partial is not None:
        raise Rejected(f"validator {sender} has sent {len(partial.received)} of the {partial.parts} parts of its "
                       f"report of round {m.round} of task {m.task_id}: the rest come as ReportPart")
    entries = _report_entries(task, m, me, advance, set())
    return _complete_report(state, task, me, m, entries, advance.block_number, "ValidatorReport")


def _report_part(state: State, m: ReportPart, sender: str, advance: Advance) -> Accepted:
    """One part of a report: checked on arrival, kept until the last part completes the report."""
    me, task = _report_head(_task(state, m.task_id), m, sender, advance.block_number)
    if not 1 <= m.parts <= MAX_REPORT_PARTS:
        raise Rejected(f"a report comes in 1..{MAX_REPORT_PARTS} parts, not {m.parts}")
    if m.part >= m.parts:
        raise Rejected(f"part {m.part} is not below the report's {m.parts} parts (parts count from 0)")
    partial = task.partials.get(me.group) or PartialReport(sender, m.validator_accuracy_bps, m.model_digest,
                                                          m.parts, {})
    head = (partial.parts, partial.validator_accuracy_bps, partial.model_digest)
    if (m.parts, m.validator_accuracy_bps, m.model_digest) != head:
        raise Rejected(f"part {m.part} of validator {sender}'s report of round {m.round} says {m.parts} parts, "
                       f"accuracy {m.validator_accuracy_bps} bps, model 0x{m.model_digest.hex()[:12]}…; its "
                       f"earlier parts said {head[0]} parts, {head[1]} bps, model 0x{head[2].hex()[:12]}…")
    if m.part in partial.received:
        raise Rejected(f"part {m.part} of {m.parts} of validator {sender}'s report of round {m.round} of task "
                       f"{m.task_id} was already received")
    entries = _report_entries(task, m, me, advance, partial.trainers())
    received = _put(partial.received, m.part, tuple(entries))
    what = f"ReportPart {m.part + 1} of {m.parts}"
    if len(received) == m.parts:
        whole = [e for part in range(m.parts) for e in received[part]]
        return _complete_report(state, task, me, m, whole, advance.block_number, what)
    task = replace(task, partials=_put(task.partials, me.group, replace(partial, received=received)))
    return Accepted(replace(state, tasks=_save(state, task)), (),
                    f"{what} task {m.task_id} round {m.round} group {me.group} — accepted, {len(entries)} "
                    f"trainer(s) checked; {m.parts - len(received)} part(s) to come")


def _check_measures(task: Task, contributions: list[Contribution]) -> None:
    """The rule's measures are in range: a MAD task's are 0, a trust task's cosine within ±1; a per-positive task's
    shares are 0, a shapley task's each at most 10,000 (their sum is checked over the whole report)."""
    if task.payout != PAYOUT_SHAPLEY and any(c.share_bps for c in contributions):
        raise Rejected(f"task {task.task_id} pays {PAYOUT_NAMES[task.payout]}: a contribution's share must be 0")
    for c in contributions:
        _check_bps(f"the share of trainer {c.trainer}", c.share_bps)
    if task.validation != VALIDATION_TRUST:
        if any(c.cosine_bps or c.norm_centi for c in contributions):
            raise Rejected(f"task {task.task_id} validates with {VALIDATION_NAMES[task.validation]}: a contribution's "
                           f"cosine and size must be 0")
        return
    for c in contributions:
        if not -trust_rule.COSINE_SCALE <= c.cosine_bps <= trust_rule.COSINE_SCALE:
            raise Rejected(f"the cosine of trainer {c.trainer}'s update, {c.cosine_bps} bps, is not in "
                           f"-{trust_rule.COSINE_SCALE}..{trust_rule.COSINE_SCALE}")


def _check_shares(task: Task, judged: list[Entry]) -> None:
    """A shapley task's whole report: shares only on entries the rollup judges Positive, summing to at most 10,000
    (less is allowed: the rollup cannot recompute the values, which need the validator's private data, so rounding
    dust and a withheld share look alike; what is not shared stays in escrow, back to the publisher at the end)."""
    if task.payout != PAYOUT_SHAPLEY:
        return
    for e in judged:
        if e.share_bps and not e.positive:
            raise Rejected(f"trainer {e.trainer} is Negative by task {task.task_id}'s rule, yet the report gives it a "
                           f"share of {e.share_bps} bps: only a Positive earns a share")
    total = sum(e.share_bps for e in judged)
    if total > BPS:
        raise Rejected(f"the report's shares sum to {total} bps, above the whole budget ({BPS})")


def _verdicts(task: Task, round_: int, validator_bps: int, entries: list[Entry]) -> list[bool]:
    """The task's rule on each entry of a whole report: MAD on each accuracy against the validator's; trust on the
    measures (`dapp.trust_rule`: size against the whole report's median, direction with the benefit of the doubt for
    a trusted trainer, the trainer not banned)."""
    if task.validation != VALIDATION_TRUST:
        return [is_positive(e.accuracy_bps, validator_bps, task.mad_bps) for e in entries]
    return trust_rule.verdicts([(e.cosine_bps, e.norm_centi) for e in entries],
                               [task.standing(e.trainer) for e in entries], round_)


def _check_signer(domain: Domain, message, signature: bytes, expected: str, what: str) -> None:
    try:
        who = signer(domain, message, signature)
    except SignatureError as err:
        raise Rejected(f"{what} is malformed: {err}") from None
    if who != expected:
        raise Rejected(f"{what} was made by {who}, not by {expected} (or signs other values)")


# ------------------------------------------------------------------------- blobs: test set, models, updates

_TEST_SETS: dict[tuple[bytes, int], qnn.TestSet] = {}  # parsed by (content, architecture): parsing is pure


def _test_set(task: Task) -> qnn.TestSet:
    assert task.test_set is not None, "scoring needs the posted test set"
    key = (task.test_set_digest, task.model_arch)
    parsed = _TEST_SETS.get(key)
    if parsed is None:
        parsed = _TEST_SETS[key] = qnn.parse_test_set(task.test_set, qmodel.ARCHS[task.model_arch])
    return parsed


def _take_chunk(task: Task, digest: bytes, sender: str, index: int, count: int, data: bytes,
                size: int) -> tuple[dict, bytes | None]:
    """The task's uploads with this chunk added, and the whole blob once this sender's chunks are all in (its
    chunks then leave the uploads). Every chunk but the last carries exactly CHUNK_DATA bytes."""
    need = -(-size // CHUNK_DATA)
    if count != need:
        raise Rejected(f"a blob of {size} bytes travels in {need} chunk(s) of {CHUNK_DATA} bytes, not {count}")
    if count > MAX_CHUNKS:
        raise Rejected(f"a blob of {count} chunks is above {MAX_CHUNKS}")
    if index >= count:
        raise Rejected(f"chunk index {index} is not below its count {count}")
    want = CHUNK_DATA if index < count - 1 else size - CHUNK_DATA * (count - 1)
    if len(data) != want:
        raise Rejected(f"chunk {index} of {count} must carry {want} bytes, got {len(data)}")
    key = (digest, sender)
    have = task.uploads.get(key, {})
    if index in have:
        raise Rejected(f"chunk {index} of 0x{digest.hex()[:12]}… from {sender} was already received")
    have = _put(have, index, data)
    if len(have) < count:
        return _put(task.uploads, key, have), None
    return {k: v for k, v in task.uploads.items() if k != key}, b"".join(have[i] for i in range(count))


def _test_set_chunk(state: State, m: TestSetChunk, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _not_over(task)
    if sender != task.publisher:
        raise Rejected(f"only the publisher {task.publisher} posts the test set of task {m.task_id}, not {sender}")
    if advance.block_number > task.registration_deadline:
        raise Rejected(f"the test set of task {m.task_id} had to be posted by block {task.registration_deadline}")
    if task.test_set is not None:
        raise Rejected(f"the test set of task {m.task_id} is already posted")
    uploads, blob = _take_chunk(task, task.test_set_digest, sender, m.index, m.count, m.data,
                                task.test_set_size * qnn.record_size(qmodel.ARCHS[task.model_arch]))
    task = replace(task, uploads=uploads)
    outputs: tuple[Output, ...] = ()
    summary = f"TestSetChunk task {m.task_id} chunk {m.index + 1} of {m.count} — accepted"
    if blob is not None:
        problem = "it does not hash to the committed digest" if qmodel.digest(blob) != task.test_set_digest \
            else _bad_rows(blob, task)
        if problem:
            outputs = (Notice(BlobRejected(m.task_id, 0, task.test_set_digest, sender)),)
            summary += f"; the test set was dropped: {problem}"
        else:
            task = replace(task, test_set=blob, test_set_block=advance.block_number)
            outputs = (Notice(TestSetPosted(m.task_id, task.test_set_digest, task.test_set_size)),)
            summary += f"; public test set of {task.test_set_size} samples posted"
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task)), outputs, summary)


def _bad_rows(blob: bytes, task: Task) -> str:
    """Why a complete test set cannot score the task's models: a label above the last class, or (grouped
    architectures) a row of a group the task does not have; "" when it can."""
    arch, size = qmodel.ARCHS[task.model_arch], task.test_set_size
    top = max(blob[:size])
    if top >= arch.classes:
        return f"a label is {top}, above class {arch.classes - 1}"
    group = max(blob[size:2 * size]) if arch.grouped else 0
    return f"a row is of group {group}, the task has {task.groups} groups" if group >= task.groups else ""


def _model_chunk(state: State, m: ModelChunk, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    block = advance.block_number
    _running(task, block)
    task = _round_view(task, m.round, block)
    if m.digest in task.scores:
        raise Rejected(f"0x{m.digest.hex()[:12]}… was already posted and scored in round {m.round}")
    committed = [g for g, r in enumerate(task.reports) if r is not None and r.model_digest == m.digest]
    disputes = [d for d in task.disputes.values() if d.update_digest == m.digest]
    if disputes:
        deadline = task.response_deadline()
        if block > deadline:
            raise Rejected(f"disputed updates of round {m.round} of task {m.task_id} had to be posted by block "
                           f"{deadline}")
        if not (task.reveal_open(block) and block <= task.contest_deadline()):  # type: ignore[operator]
            committed = []  # the same bytes as a committed model: a reveal only inside the reveal window
    elif committed:
        if not task.reveal_open(block):
            raise Rejected(f"validator models of round {m.round} of task {m.task_id} are revealed once every group "
                           f"reported or after the report deadline (block {task.report_deadline()})")
        if block > task.contest_deadline():  # type: ignore[operator]
            raise Rejected(f"validator models of round {m.round} of task {m.task_id} had to be revealed by block "
                           f"{task.contest_deadline()}")
    else:
        raise Rejected(f"no model or update 0x{m.digest.hex()[:12]}… is expected in round {m.round} of task "
                       f"{m.task_id} (a committed validator model, or a disputed update)")
    arch = qmodel.ARCHS[task.model_arch]
    uploads, blob = _take_chunk(task, m.digest, sender, m.index, m.count, m.data, arch.encoded_size)
    task = replace(task, uploads=uploads)
    summary = f"ModelChunk task {m.task_id} round {m.round} chunk {m.index + 1} of {m.count} — accepted"
    if blob is None:
        return Accepted(replace(state, tasks=_save(state, task)), (), summary)
    if qmodel.digest(blob) != m.digest:
        return Accepted(replace(state, tasks=_save(state, task)),
                        (Notice(BlobRejected(m.task_id, m.round, m.digest, sender)),),
                        summary + f"; its chunks do not hash to 0x{m.digest.hex()[:12]}…: dropped")
    score = _score(blob, task)
    models = _put(task.models, m.digest, blob) if committed and score is not None else task.models
    task = replace(task, scores=_put(task.scores, m.digest, score), models=models)
    kinds = [(g, BLOB_VALIDATOR_MODEL) for g in committed] + [
        (d.group, BLOB_CHALLENGED_UPDATE if d.kind == DISPUTE_CHALLENGED else BLOB_CONTESTED_UPDATE)
        for d in disputes]
    outputs = tuple(Notice(ModelScored(m.task_id, m.round, g, m.digest, kind, score or 0)) for g, kind in kinds)
    what = "not a valid model of the task's architecture (scored as missing)" if score is None \
        else f"scored {score} bps on the public test set"
    return Accepted(replace(state, tasks=_save(state, task)), outputs, summary + f"; {what}")


def _score(blob: bytes, task: Task) -> int | None:
    """The public accuracy of a posted model, None if it is not a valid model of the task's architecture."""
    try:
        model = qmodel.decode(blob)
        if model.arch != task.model_arch:
            return None
        return qnn.accuracy(model, _test_set(task))
    except (qmodel.QModelError, qnn.QnnError):
        return None


# ------------------------------------------------------------------------------------- disputes


def _dispute_window(task: Task, m: Contest | Challenge, block: int) -> None:
    """Disputes are filed once every group reported or the report deadline passed (the deadlines are then
    fixed: a Contested notice states the response deadline for good), until the contest deadline."""
    if not task.reveal_open(block):
        raise Rejected(f"contests and challenges of round {m.round} of task {m.task_id} open once every group "
                       f"reported or after the report deadline (block {task.report_deadline()})")
    deadline = task.contest_deadline()
    if block > deadline:
        raise Rejected(f"contests and challenges of round {m.round} of task {m.task_id} closed at block {deadline}")


def _contest(state: State, m: Contest, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _running(task, advance.block_number)
    task = _round_view(task, m.round, advance.block_number)
    me = task.participant(sender)
    if me is None or me.role != ROLE_TRAINER:
        raise Rejected(f"{sender} is not a trainer of task {m.task_id}")
    report = task.reports[me.group]
    if report is None:
        raise Rejected(f"group {me.group} has not reported round {m.round} of task {m.task_id}: nothing to contest")
    _dispute_window(task, m, advance.block_number)
    if sender in task.disputes:
        raise Rejected(f"{sender} is already disputed in round {m.round} of task {m.task_id}")
    if task.standing(sender).banned(m.round):
        raise Rejected(f"{sender} is banned until round {task.standing(sender).banned_until} of task {m.task_id}: its "
                       f"updates are rejected and unpaid, and it cannot contest")
    entry = report.entries.get(sender)
    if entry is not None:
        if entry.positive:
            raise Rejected(f"{sender} was reported Positive in round {m.round}: nothing to contest")
        if (entry.update_digest, entry.samples) != (m.update_digest, m.samples):
            raise Rejected(f"the contested update (0x{m.update_digest.hex()[:12]}…, {m.samples} samples) is not the "
                           f"one reported (0x{entry.update_digest.hex()[:12]}…, {entry.samples} samples)")
        kind = DISPUTE_MISJUDGED
    else:
        receipt = Receipt(m.task_id, m.round, sender, m.update_digest, m.samples)
        _check_signer(Domain.of(advance), receipt, m.receipt_r + m.receipt_vs, task.seats[me.group],
                      f"the receipt of group {me.group}'s validator")
        kind = DISPUTE_DROPPED
    return _file(state, task, Dispute(sender, me.group, kind, m.update_digest, m.samples), m.round)


def _challenge(state: State, m: Challenge, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _running(task, advance.block_number)
    task = _round_view(task, m.round, advance.block_number)
    if sender != task.publisher:
        raise Rejected(f"only the publisher {task.publisher} challenges in task {m.task_id}, not {sender}")
    _dispute_window(task, m, advance.block_number)
    who = task.participant(m.trainer)
    report = task.reports[who.group] if who is not None and who.role == ROLE_TRAINER else None
    entry = report.entries.get(m.trainer) if report is not None else None
    if entry is None or not entry.positive:
        raise Rejected(f"{m.trainer} is not a trainer reported Positive in round {m.round} of task {m.task_id}")
    if m.trainer in task.disputes:
        raise Rejected(f"{m.trainer} is already disputed in round {m.round} of task {m.task_id}")
    made = sum(d.kind == DISPUTE_CHALLENGED and d.group == who.group for d in task.disputes.values())
    if made >= task.challenges_per_round:
        raise Rejected(f"the publisher already made {made} challenge(s) in group {who.group} this round, its "
                       f"limit is {task.challenges_per_round}")
    return _file(state, task, Dispute(m.trainer, who.group, DISPUTE_CHALLENGED, entry.update_digest, entry.samples),
                 m.round)


def _file(state: State, task: Task, d: Dispute, round_: int) -> Accepted:
    deadline = task.response_deadline()
    task = replace(task, disputes=_put(task.disputes, d.trainer, d))
    return Accepted(replace(state, tasks=_save(state, task)),
                    (Notice(Contested(task.task_id, round_, d.group, d.trainer, d.kind, d.update_digest, deadline)),),
                    f"{DISPUTE_NAMES[d.kind].capitalize()} {short(d.trainer)} in task {task.task_id} round {round_} "
                    f"group {d.group} — accepted; its update 0x{d.update_digest.hex()[:12]}… must be posted by "
                    f"block {deadline}")


def _close_turn(task: Task, m: RoundClose, sender: str, block: int) -> tuple[tuple[str, ...], int]:
    """Check that ``sender`` may close now; the round's producer order and the sender's place in it."""
    deadline = task.report_deadline()
    missing = [g for g, r in enumerate(task.reports) if r is None]
    if missing and block <= deadline:
        raise Rejected(f"round {m.round} of task {m.task_id} still lacks the report of group(s) "
                       f"{', '.join(map(str, missing))} (their report deadline is block {deadline})")
    if len(missing) == task.groups:
        raise Rejected(f"no group reported round {m.round} of task {m.task_id} by block {deadline}: the round "
                       f"cannot close; its publisher may cancel the task")
    contest, response = task.contest_deadline(), task.response_deadline()
    if block <= contest:
        raise Rejected(f"round {m.round} of task {m.task_id} is open for reveals, contests and challenges until "
                       f"block {contest}")
    pending = task.pending_disputes()
    if pending and block <= response:
        raise Rejected(f"round {m.round} of task {m.task_id} waits until block {response} for the disputed "
                       f"update(s) of {', '.join(d.trainer for d in pending)}")
    order, turn = task.producer_order(), task.turn_at(block)
    if turn >= len(order):
        raise Rejected(f"every producer of round {m.round} of task {m.task_id} missed its close deadline "
                       f"(the last was block {task.close_deadline(len(order) - 1)}); its publisher may "
                       f"cancel the task")
    if sender != order[turn]:
        raise Rejected(f"only {order[turn]} may close round {m.round} of task {m.task_id} at block {block} "
                       f"(turn {turn + 1} of {len(order)}, until block {task.close_deadline(turn)}), not {sender}")
    return order, turn


@dataclass(frozen=True)
class _Global:
    model: bytes  # FRQ1; empty: no global model yet
    digest: bytes
    accuracy_bps: int
    groups: tuple[int, ...]  # averaged this round; empty: the previous global stands
    predicted: np.ndarray | None = None  # its class for every public test row, when averaged this round


def _kept_or_revealed(task: Task, model_digest: bytes) -> bytes:
    """A group's model at the close: the revealed bytes, or (openRounds > 1, digest 0) the round's starting model,
    the previous round's global."""
    return task.global_model if task.open_rounds > 1 and model_digest == KEEP_DIGEST else task.models[model_digest]


def _global(task: Task, revealed: list[int]) -> _Global:
    """The integer mean of the revealed validator models (group order), scored on the public test set; with none
    revealed, the previous round's global stands."""
    if not revealed:
        previous = task.history[-1] if task.history else None
        return _Global(task.global_model, previous.global_digest if previous else bytes(32),
                       previous.global_accuracy_bps if previous else 0, ())
    models = [qmodel.decode(_kept_or_revealed(task, task.reports[g].model_digest))  # type: ignore[union-attr]
              for g in revealed]
    mean = qmodel.average(models)
    blob = qmodel.encode(mean)
    predicted = qnn.classify(mean, _test_set(task))
    return _Global(blob, qmodel.digest(blob), qnn.accuracy_of(predicted, _test_set(task)), tuple(revealed), predicted)


def _compliance(task: Task, round_: int, predicted: np.ndarray) -> list[Output]:
    """Per group (cell) of a grouped task, the global model's figures on that cell's public test rows."""
    test = _test_set(task)
    outputs: list[Output] = []
    for g in range(task.groups):
        rows = test.groups == g
        said, truth, right = (predicted == 1) & rows, (test.labels == 1) & rows, (predicted == test.labels) & rows
        counts = [int(np.count_nonzero(c)) for c in (rows, right, said, truth, said & truth)]
        outputs.append(Notice(CellCompliance(task.task_id, round_, g, *counts)))
    return outputs


def _bar(task: Task, model: int | None, global_bps: int) -> int:
    """The public accuracy a disputed update is judged against with the task's rule: the highest of the validator's
    revealed model's, this round's global model's and the previous round's. No party to the dispute sets it: a
    validator that withholds its model or reveals a weak one lowers nothing."""
    return max(model or 0, global_bps, task.previous_global_bps)


def _verdict(task: Task, d: Dispute, model_bps: dict[int, int | None],
             global_bps: int) -> tuple[bool, int | None, int | None]:
    """(upheld against the validator, the update's public accuracy, the validator model's)."""
    update, model = task.scores.get(d.update_digest), model_bps.get(d.group)
    passes = update is not None and is_positive(update, _bar(task, model, global_bps), task.mad_bps)
    upheld = not passes if d.kind == DISPUTE_CHALLENGED else passes
    return upheld, update, model


def _standings(task: Task, round_: int, reports: Mapping[int, GroupReport], voided: set[str],
               contest_bps: Mapping[str, int], outputs: list[Output]) -> tuple[Mapping[str, Standing], dict[str, int]]:
    """The trainers' standings after this round and what each trainer paid this round earns. A MAD task keeps no
    standing: every Positive earns the reward. A trust task moves the standing of every trainer judged this round
    (reported, or an upheld contester) by its final verdict, says so in a `TrainerStanding` notice, and pays by it."""
    judged = [e.trainer for r in reports.values() for e in r.entries.values()]
    judged += [t for t in contest_bps if t not in judged]  # upheld contests of dropped trainers
    if task.validation != VALIDATION_TRUST:
        return task.standings, {t: task.reward_per_positive for t in judged}
    standings = dict(task.standings)
    positive = {e.trainer for r in reports.values() for e in r.entries.values() if e.positive}
    read = task.verdict_standings(round_)  # what the round's verdicts read (openRounds > 1: an older standing)
    for trainer in judged:
        accepted = (trainer in positive and trainer not in voided) or trainer in contest_bps
        s = standings[trainer] = trust_rule.after_round(task.standing(trainer), round_, accepted, task.open_rounds,
                                                        read.get(trainer, Standing()).banned(round_))
        outputs.append(Notice(TrainerStanding(task.task_id, round_, trainer, accepted, s.score, s.strikes, s.bans,
                                              s.banned_until)))
    return standings, {t: trust_rule.payout(task.reward_per_positive, standings[t]) for t in judged}


def _shapley_amounts(task: Task, reports: Mapping[int, GroupReport], standings: Mapping[str, Standing],
                     amounts: Mapping[str, int]) -> dict[str, int]:
    """A shapley task: each reported Positive earns groupBudget x share // 10,000 instead of the reward per Positive
    (a trust task's times its standing's score, as the reward is); upheld contesters keep their reward."""
    if task.payout != PAYOUT_SHAPLEY:
        return dict(amounts)
    out = dict(amounts)
    for report in reports.values():
        for e in report.entries.values():
            if e.positive:
                amount = share_of(task.group_budget, e.share_bps)
                out[e.trainer] = (trust_rule.payout(amount, standings.get(e.trainer, Standing()))
                                  if task.validation == VALIDATION_TRUST else amount)
    return out


def _round_close(state: State, m: RoundClose, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    block = advance.block_number
    _running(task, block)
    if task.current_round < m.round < task.current_round + task.open_rounds:  # a later open round: closes stay in order
        raise Rejected(f"round {m.round} of task {m.task_id} closes after round {task.current_round}, not closed yet "
                       f"(closes stay in order: send it again once round {task.current_round} closed)")
    _check_round(task, m.round)
    order, turn = _close_turn(task, m, sender, block)

    deadline = task.report_deadline()
    outputs: list[Output] = [Notice(GroupSkipped(m.task_id, m.round, g, task.seats[g], deadline))
                             for g, r in enumerate(task.reports) if r is None]
    outputs += [Notice(ProducerMissed(m.task_id, m.round, order[i], task.close_deadline(i), order[i + 1]))
                for i in range(turn)]
    reports = {g: r for g, r in enumerate(task.reports) if r is not None}
    # openRounds > 1: a group that committed digest 0 kept the starting model, averaged in as the previous global
    # (none yet: not averaged), with no reveal to make and no validator reward to earn
    kept = {g for g, r in reports.items() if task.open_rounds > 1 and r.model_digest == KEEP_DIGEST}
    revealed = [g for g, r in reports.items() if r.model_digest in task.models or (g in kept and task.global_model)]
    model_bps = {g: task.previous_global_bps if g in kept else task.scores[reports[g].model_digest]
                 for g in revealed}
    glob = _global(task, revealed)
    if glob.groups:
        outputs.append(Notice(GlobalModel(m.task_id, m.round, glob.digest, glob.accuracy_bps, glob.groups,
                                          glob.model)))
        if qmodel.ARCHS[task.model_arch].grouped:
            outputs += _compliance(task, m.round, glob.predicted)

    # Disputes, then penalties: an unrevealed model, each dispute upheld against the validator.
    stakes = dict(task.stakes)
    upheld: list[Dispute] = []
    contest_bps: dict[str, int] = {}
    for d in task.disputes.values():
        won, update, model = _verdict(task, d, model_bps, glob.accuracy_bps)
        outputs.append(Notice(ContestResolved(m.task_id, m.round, d.group, d.trainer, d.kind, won, update is not None,
                                              update or 0, model or 0)))
        if won:
            upheld.append(d)
            if d.kind != DISPUTE_CHALLENGED:
                contest_bps[d.trainer] = update or 0
    penalties = [(g, PENALTY_UNREVEALED) for g in reports if g not in revealed and g not in kept] + [
        (d.group, PENALTY_CHALLENGE if d.kind == DISPUTE_CHALLENGED else PENALTY_CONTEST) for d in upheld]
    for g, reason in sorted(penalties, key=lambda p: p[0]):
        validator = reports[g].validator
        cut = min(task.validator_reward, stakes[validator])
        stakes[validator] -= cut
        outputs.append(Notice(ValidatorPenalized(m.task_id, m.round, validator, g, reason, cut, stakes[validator])))
    penalised = {g for g, _ in penalties}

    # Trainers: upheld contesters first (best public score first), then the reported Positives whose challenge
    # was not upheld (best reported score first, a shapley task's best share first); ties share pro rata. A trust
    # task pays each by its standing, a shapley task each Positive its share of the group budget.
    balances, paid = dict(state.balances), [0] * task.groups
    voided = {d.trainer for d in upheld if d.kind == DISPUTE_CHALLENGED}
    standings, amounts = _standings(task, m.round, reports, voided, contest_bps, outputs)
    amounts = _shapley_amounts(task, reports, standings, amounts)
    for g, report in reports.items():
        contesters = [(d.trainer, contest_bps[d.trainer]) for d in upheld if d.group == g and d.trainer in contest_bps]
        positives = [(e.trainer, e.share_bps if task.payout == PAYOUT_SHAPLEY else e.accuracy_bps)
                     for e in report.entries.values() if e.positive and e.trainer not in voided]
        for trainer, amount in pay_in_order(ranked_tiers(contesters) + ranked_tiers(positives), amounts,
                                            task.group_budget):
            paid[g] += amount
            stakes[trainer] += amount
            balances[trainer] = balances.get(trainer, 0) + amount
            outputs.append(Notice(RewardPaid(m.task_id, m.round, trainer, amount, stakes[trainer])))
    trainer_paid = sum(paid)
    if trainer_paid > task.escrow:  # unreachable while a funded task's escrow covers every round
        raise Rejected(f"overspending: paying {trainer_paid} wei from an escrow of {task.escrow} wei")
    escrow = task.escrow - trainer_paid

    # Validator reward: among the revealed, unpenalised groups whose validator did not let its turn to close
    # pass, the model closest to the global one by public accuracy; ties -> lower group. None: it stays in escrow.
    eligible = [g for g in revealed if g not in penalised and g not in kept and reports[g].validator not in order[:turn]
                # no reward for a model below the task's rule against the previous global
                and is_positive(model_bps[g], task.previous_global_bps, task.mad_bps)]
    distances = {g: abs(model_bps[g] - glob.accuracy_bps) for g in revealed}
    best_group = min(eligible, key=lambda g: (distances[g], g)) if eligible else -1
    winner = reports[best_group].validator if eligible else ""
    amount = min(task.validator_reward, escrow) if eligible else 0
    if eligible:
        stakes[winner] += amount
        balances = _credit(balances, winner, amount)
        outputs.append(Notice(ValidatorRewarded(m.task_id, m.round, winner, best_group, distances[best_group],
                                                amount, stakes[winner])))
    escrow -= amount
    accs = [r.global_accuracy_bps for r in task.history] + [glob.accuracy_bps]
    accumulated = sum(accs) // len(accs)
    trainers, validators = task.trainers(), task.validators()
    outputs.append(Notice(RoundRecorded(
        m.task_id, m.round, advance.block_timestamp, glob.digest, glob.accuracy_bps, accumulated,
        tuple(p.address for p in validators), tuple(stakes[p.address] for p in validators), len(trainers),
        trainer_paid, escrow)))
    for first in range(0, len(trainers), STAKES_PAGE):
        page = [p.address for p in trainers[first:first + STAKES_PAGE]]
        outputs.append(Notice(TrainerStakes(m.task_id, m.round, first, tuple(page),
                                            tuple(stakes[a] for a in page))))
    last = m.round == task.rounds
    elected = task.elects(m.round)
    orders = {r: o for r, o in task.orders.items() if r > m.round}
    next_producer, rule = "", -1
    if last:
        fee, fee_outputs = _broker_fee(state.market, task, escrow, started=True)
        balances = _credit(balances, task.publisher, escrow - fee)
        outputs.append(Notice(TaskFinished(m.task_id, task.publisher, escrow - fee, accumulated)))
        outputs += fee_outputs
        tail = f"task finished, {format_wei(escrow - fee)} back to the publisher" + (
            f", {format_wei(fee)} to the broker" if fee else "")
    elif elected is None:  # openRounds > 1: the rounds left were elected by earlier closes
        tail = f"no producer to elect (round {m.round + task.open_rounds} is past the task's last)"
    else:  # this close elects the producer of round + openRounds (openRounds 1: the next round)
        live = {reports[g].validator for g in reports if g not in penalised}
        ranked, rule = election_order([p.address for p in validators], live, stakes, winner,
                                      advance.prev_randao)
        orders[elected] = tuple(ranked) + ((task.publisher,) if task.publisher not in ranked else ())
        next_producer = orders[elected][0]
        outputs.append(Notice(ProducerElected(m.task_id, elected, next_producer, stakes[next_producer], rule)))
        tail = f"producer of round {elected} {short(next_producer)} ({RULE_NAMES[rule]})"
    skipped = task.groups - len(reports)
    late = (f", {skipped} group(s) skipped" if skipped else "") + (f", after {turn} missed turn(s)" if turn else "")
    record = RoundRecord(
        round=m.round, block=block, timestamp=advance.block_timestamp, producer=sender,
        missed_producers=order[:turn], global_digest=glob.digest,
        global_accuracy_bps=glob.accuracy_bps, accumulated_accuracy_bps=accumulated,
        validator_accuracy_bps=tuple(model_bps.get(g) for g in range(task.groups)), reports=task.reports,
        paid=tuple(paid), rewarded_validator=winner, rewarded_group=best_group,
        distance_bps=distances.get(best_group, 0), validator_paid=amount, trainer_paid=trainer_paid,
        escrow_left=escrow, next_producer=next_producer, election_rule=rule)
    start, nxt = task.next_start(block), task.slot(m.round + 1)  # the next round's reports so far, if any came
    kept_standings = task.standings_at
    if task.open_rounds > 1 and task.validation == VALIDATION_TRUST:  # what the next rounds' verdicts will read
        kept_standings = {r: v for r, v in {**task.standings_at, m.round: standings}.items()
                          if r > m.round - task.open_rounds}
    task = replace(task, escrow=0 if last else escrow, stakes=stakes, current_round=m.round + 1,
                   round_start=start, orders=orders, reports=nxt.reports, partials=nxt.partials,
                   uploads=nxt.uploads, scores=nxt.scores, models=nxt.models, disputes=nxt.disputes,
                   ahead={r: v for r, v in task.ahead.items() if r != m.round + 1}, global_model=glob.model,
                   history=task.history + (record,), standings=standings, standings_at=kept_standings)
    averaged = f"global model of group(s) {', '.join(map(str, glob.groups))}" if glob.groups \
        else "no model revealed, the previous global stands"
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task), balances=balances), tuple(outputs),
                    f"RoundClose task {m.task_id} round {m.round} — accepted{late}, {averaged}, public accuracy "
                    f"{glob.accuracy_bps} bps, {len(upheld)} dispute(s) upheld, {len(penalties)} penalt(ies), "
                    + (f"validator reward to group {best_group}" if eligible else "no validator reward") + f", {tail}")


def _cancel_task(state: State, m: CancelTask, sender: str, advance: Advance) -> Accepted:
    task = _task(state, m.task_id)
    _not_over(task)
    if sender != task.publisher:
        raise Rejected(f"only the publisher {task.publisher} may cancel task {m.task_id}, not {sender}")
    reason = task.stalled(advance.block_number)
    if reason is None:
        raise Rejected(f"task {m.task_id} can still go on at block {advance.block_number}: it may be cancelled "
                       f"only once it cannot (unfunded or unstaffed after block {task.registration_deadline}, "
                       f"every group silent past a report deadline, or every producer past its close deadline)")
    fee, fee_outputs = _broker_fee(state.market, task, task.escrow, started=task.start_block is not None)
    refund = task.escrow - fee
    round_ = min(task.current_round, task.rounds)
    task = replace(task, escrow=0, cancelled=reason)
    outputs: list[Output] = [Notice(TaskCancelled(m.task_id, sender, round_, reason, refund)), *fee_outputs]
    if refund:
        outputs.insert(0, Voucher(sender, refund))
    return Accepted(replace(state, tasks=_put(state.tasks, m.task_id, task)), tuple(outputs),
                    f"CancelTask {m.task_id} in round {round_} — accepted ({CANCEL_NAMES[reason]}), "
                    f"voucher refunds {format_wei(refund)} to the publisher"
                    + (f", {format_wei(fee)} to the broker (the task had started)" if fee else ""))


def _broker_fee(market: Market, task: Task, escrow: int, started: bool) -> tuple[int, list[Output]]:
    """The broker's fee a task that ends now pays from what is left of its `escrow`, and its outputs: a voucher
    to the broker (payload empty) and `BrokerFeePaid`. Nothing when there is no broker, no fee or no start."""
    fee = fee_due(task.broker_fee, started)
    if fee == 0:
        return 0, []
    if fee > escrow:  # unreachable: the fee is reserved in the required escrow and no round spends it
        raise Rejected(f"task {task.task_id}'s escrow of {escrow} wei cannot pay the broker's fee of {fee} wei")
    return fee, [Voucher(market.broker, fee), Notice(BrokerFeePaid(task.task_id, market.broker, market.fee_bps, fee))]


def _withdraw(state: State, m: Withdraw, sender: str, advance: Advance) -> Accepted:
    amount = state.balance(sender)
    if amount == 0:
        raise Rejected(f"{sender} has nothing to withdraw")
    balances = {a: b for a, b in state.balances.items() if a != sender}
    return Accepted(replace(state, balances=balances),
                    (Voucher(sender, amount), Notice(Withdrawal(sender, amount))),
                    f"Withdraw by {short(sender)} — accepted, voucher for {format_wei(amount)}")


_HANDLERS = {CreateTask: _create_task, AdmitTrainers: _admit_trainers, Register: _register,
             TestSetChunk: _test_set_chunk, ValidatorReport: _validator_report, ReportPart: _report_part,
             ModelChunk: _model_chunk,
             Contest: _contest, Challenge: _challenge, RoundClose: _round_close, CancelTask: _cancel_task,
             Withdraw: _withdraw}
