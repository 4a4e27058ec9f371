"""Issue 12's attacks on the state machine, one test each, played as the attacker would: slot squatting, a
withholding producer, an underfunded task, a test set never posted, a model committed and never revealed, silent
groups and producers, sybil bloat. Each ends in the outcome the rules define (skip, failover, penalty, cancel with
a voucher) with every honest party paid exactly what they say."""
from __future__ import annotations

from dataclasses import replace

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, STRANGER, TEST_SET, Chain, addr, band_model, close, close_when_due,
                           create_task, keyed, play_round, post_blob, post_test_set, report, task_message, trainer,
                           update_of, validator, validator_model)
from eth_utils import to_checksum_address

from dapp import qmodel
from dapp.inspect_routes import answer
from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_NAMES, CANCEL_NO_PRODUCER, CANCEL_NO_TEST_SET,
                         CANCEL_NO_VALIDATOR, CANCEL_UNFUNDED, MAX_INPUT_PAYLOAD, MAX_OUTPUT_BYTES,
                         MAX_OUTPUTS_PER_INPUT, MAX_TASK_TRAINERS, REPORT_INPUT_TRAINERS, PENALTY_UNREVEALED,
                         ROLE_TRAINER, ROLE_VALIDATOR, CancelTask, DepositCredited, GlobalModel, GroupSkipped,
                         ModelChunk, ModelScored, ParticipantRegistered, ProducerElected, ProducerMissed, Register,
                         RewardPaid, RoundRecorded, TaskCancelled, TaskFinished, TrainerStakes, ValidatorPenalized,
                         ValidatorReport, ValidatorRewarded, Withdraw, encode_deposit_data)
from dapp.schema import TestSetChunk as SetChunk  # a Test* name would be collected by pytest
from dapp.state import UINT256_MAX, Notice, Voucher
from dapp.task import Entry, GroupReport

# Deadlines of every task here: registration until block 10 + 20 (tasks are created at block 10), reports
# 10 blocks after a round starts, reveals and contests 5 blocks after the last report (after the report deadline
# when a group is silent), posting disputed updates 5 more, then 5 blocks per producer in turn.
TERMS = dict(registration_blocks=20, report_blocks=10, close_blocks=5, contest_blocks=5)
REGISTRATION_DEADLINE = 30
# Two rounds of 10 milli-ETH of trainer budget (5 per group) and a 1 milli-ETH validator reward.
REQUIRED = 2 * (10 + 1) * MILLI
PAID_PER_TRAINER = 2 * MILLI  # a Positive, as every trainer of play_round (88.00% against 90.00%, MAD 25%)
PERFECT = 10_000  # the public accuracy of `validator_model`, and of their mean: the recorded global accuracy


def group_scores(group: int, trainers: int = 2, bps: int = 8800) -> dict[str, int]:
    return {trainer(group, i): bps for i in range(trainers)}


def balances(chain: Chain, *addresses: str) -> list[int]:
    return [chain.state.balance(a) for a in addresses]


def round_start(chain: Chain) -> int:
    """The first block of task 1's current round (the inspect test checks it against the inputs' blocks)."""
    return chain.state.tasks[1].current_start()


def ended_in_time(chain: Chain) -> bool:
    """The last input (the close or the cancel that ended task 1) came no later than its stated bound."""
    task = chain.state.tasks[1]
    return task.over and chain.block - 1 <= task.latest_end_block()


def reveal_of(group: int, round_: int) -> ModelChunk:
    """Validator ``group``'s reveal of its default model (a logreg: one chunk)."""
    model = validator_model(group, round_)
    return ModelChunk(1, round_, qmodel.digest(model), 0, 1, model)


def report_and_reveal(chain: Chain, round_: int, groups=(0, 1), models: dict[int, bytes] | None = None) -> None:
    """The validators of ``groups`` report their two trainers and, once the reveals open (every group reported,
    else after the report deadline), post the model they committed to."""
    models = {g: (models or {}).get(g) or validator_model(g, round_) for g in groups}
    for g in groups:
        chain.send(validator(g), report(1, round_, 9000, group_scores(g), model=models[g]))
    if not chain.task().reveal_open(chain.block):
        chain.mine_to(chain.task().report_deadline() + 1)
    for g in groups:
        post_blob(chain, validator(g), 1, round_, models[g])


# -------------------------------------------------------------------------------- slot squatting


def test_slot_squatter_is_refused_and_a_silent_named_validator_is_skipped_every_round():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, seats=[0], **TERMS)
    squat = chain.reject(STRANGER, Register(1, ROLE_VALIDATOR, 1))
    assert squat == f"group 1 of task 1 has named validator {validator(1)}, not {STRANGER}"
    chain.send(validator(1), Register(1, ROLE_VALIDATOR, 1))  # seats group 1, then never reports
    start = chain.block - 1  # funded, test set posted and every seat taken: round 1 starts
    assert round_start(chain) == start
    deadlines = []
    for round_, producer in ((1, PUBLISHER), (2, validator(0))):
        chain.send(validator(0), report(1, round_, 9000, group_scores(0)))
        deadline = start + 10
        early = chain.reject(producer, close(1, round_))
        assert early == (f"round {round_} of task 1 still lacks the report of group(s) 1 (their report deadline "
                         f"is block {deadline})")
        assert chain.reject(validator(0), reveal_of(0, round_)).startswith(
            f"validator models of round {round_} of task 1 are revealed once every group reported or after the "
            f"report deadline (block {deadline})")
        chain.mine_to(deadline + 1)
        post_blob(chain, validator(0), 1, round_, validator_model(0, round_))
        close_when_due(chain, 1, round_, producer)
        deadlines.append(deadline)
        start = chain.block - 1  # the next round starts at this close
    assert chain.of_type(ProducerElected)[0].producer == validator(0)  # it reported, the squatted seat did not
    assert chain.of_type(GroupSkipped) == [GroupSkipped(1, r, 1, validator(1), d) for r, d in zip((1, 2), deadlines)]
    assert balances(chain, trainer(0, 0), trainer(0, 1), validator(0)) == [2 * PAID_PER_TRAINER] * 2 + [2 * MILLI]
    assert balances(chain, trainer(1, 0), trainer(1, 1), validator(1)) == [0, 0, 0]
    spent = 4 * PAID_PER_TRAINER + 2 * MILLI
    assert chain.of_type(TaskFinished) == [TaskFinished(1, PUBLISHER, REQUIRED - spent, PERFECT)]
    assert chain.state.balance(PUBLISHER) == REQUIRED - spent == 12 * MILLI
    assert ended_in_time(chain)


def test_a_seat_never_taken_starts_the_round_after_the_registration_window_without_that_group():
    chain = Chain()
    create_task(chain, rounds=1, trainers_per_group=2, seats=[0], **TERMS)
    chain.mine_to(REGISTRATION_DEADLINE)
    not_yet = chain.reject(validator(0), report(1, 1, 9000, group_scores(0)))
    assert not_yet.startswith(f"task 1 has not started at block {REGISTRATION_DEADLINE}: it starts when every "
                              f"group's validator has registered (1 of 2) or after block {REGISTRATION_DEADLINE}")
    report_and_reveal(chain, 1, groups=(0,))
    close_when_due(chain, 1, 1, PUBLISHER)
    assert chain.of_type(GroupSkipped) == [GroupSkipped(1, 1, 1, validator(1), REGISTRATION_DEADLINE + 1 + 10)]
    refund = 11 * MILLI - 2 * PAID_PER_TRAINER - MILLI
    assert chain.of_type(TaskFinished) == [TaskFinished(1, PUBLISHER, refund, PERFECT)]
    assert balances(chain, trainer(0, 0), validator(0), trainer(1, 0), PUBLISHER) == [
        PAID_PER_TRAINER, MILLI, 0, refund]
    assert ended_in_time(chain)


# ---------------------------------------------------------------------------------- no test set


def test_a_task_whose_test_set_never_arrives_does_not_start_and_is_cancelled_after_its_window():
    chain = Chain()
    chain.send(PUBLISHER, task_message(rounds=2, **TERMS))
    chain.deposit(PUBLISHER, REQUIRED, encode_deposit_data(1))
    for g in range(2):
        chain.send(validator(g), Register(1, ROLE_VALIDATOR, g))
    assert chain.reject(validator(0), report(1, 1, 9000, {})).startswith("task 1 has not started")
    chain.mine_to(REGISTRATION_DEADLINE)
    assert chain.reject(PUBLISHER, CancelTask(1)).startswith(f"task 1 can still go on at block {REGISTRATION_DEADLINE}")
    assert chain.reject(STRANGER, CancelTask(1)) == f"only the publisher {PUBLISHER} may cancel task 1, not {STRANGER}"
    assert chain.reject(PUBLISHER, SetChunk(1, 0, 1, TEST_SET)) == (
        f"the test set of task 1 had to be posted by block {REGISTRATION_DEADLINE}")
    cancel = chain.send(PUBLISHER, CancelTask(1))
    assert cancel.outputs == (Voucher(PUBLISHER, REQUIRED),
                              Notice(TaskCancelled(1, PUBLISHER, 1, CANCEL_NO_TEST_SET, REQUIRED)))
    assert ended_in_time(chain)

# -------------------------------------------------------------------------- withholding producer


WORSE = band_model(dead={1}, salt=7)  # misses class 1: 9,000 bps, so group 1's perfect model is the closer one


def test_withholding_producer_loses_its_turn_to_the_next_in_the_election_order():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, **TERMS)
    play_round(chain, 1, 1, PUBLISHER, trainers_per_group=2, models={0: WORSE})
    assert chain.of_type(ProducerElected)[-1].producer == validator(1)  # its model was the closest to the global
    report_and_reveal(chain, 2)
    task = chain.task()
    contest, first, second = task.contest_deadline(), task.close_deadline(0), task.close_deadline(1)
    assert first == contest + 5 + 5 and second == first + 5  # after the contest and response windows
    assert chain.reject(validator(1), close(1, 2)) == (
        f"round 2 of task 1 is open for reveals, contests and challenges until block {contest}")
    chain.mine_to(contest + 1)
    wrong = chain.reject(validator(0), close(1, 2))
    assert wrong == (f"only {validator(1)} may close round 2 of task 1 at block {contest + 1} (turn 1 of 3, "
                     f"until block {first}), not {validator(0)}")
    chain.mine_to(first)
    too_early = chain.reject(validator(0), close(1, 2))
    assert too_early.startswith(f"only {validator(1)} may close round 2 of task 1 at block {first} (turn 1 of 3, "
                                f"until block {first})")
    assert chain.reject(PUBLISHER, close(1, 2)) == (
        f"only {validator(0)} may close round 2 of task 1 at block {first + 1} (turn 2 of 3, until block "
        f"{second}), not {PUBLISHER}")
    chain.send(validator(0), close(1, 2))
    assert chain.of_type(ProducerMissed) == [ProducerMissed(1, 2, validator(1), first, validator(0))]
    assert chain.state.tasks[1].history[-1].missed_producers == (validator(1),)
    # Trainers: 2 rounds x 2 milli; validator rewards: round 1 group 1 (closest), round 2 group 0 (group 1 missed).
    assert balances(chain, *[trainer(g, i) for g in range(2) for i in range(2)]) == [2 * PAID_PER_TRAINER] * 4
    assert balances(chain, validator(0), validator(1)) == [MILLI, MILLI]
    refund = REQUIRED - 8 * PAID_PER_TRAINER - 2 * MILLI
    accumulated = sum(n.accuracy_bps for n in chain.of_type(GlobalModel)) // 2
    assert chain.of_type(TaskFinished) == [TaskFinished(1, PUBLISHER, refund, accumulated)]
    assert chain.state.balance(PUBLISHER) == refund
    assert ended_in_time(chain)


def test_a_producer_that_let_its_turn_pass_is_not_paid_the_validator_reward_even_with_the_closest_model():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, **TERMS)
    play_round(chain, 1, 1, PUBLISHER, trainers_per_group=2, models={0: WORSE})  # validator(1) elected
    report_and_reveal(chain, 2, models={0: WORSE})
    chain.mine_to(chain.task().close_deadline(0) + 1)
    chain.send(validator(0), close(1, 2))
    [global_model] = [n for n in chain.of_type(GlobalModel) if n.round == 2]
    scored = {n.group: n.accuracy_bps for n in chain.of_type(ModelScored) if n.round == 2}
    assert abs(scored[1] - global_model.accuracy_bps) < abs(scored[0] - global_model.accuracy_bps)
    rewarded = chain.of_type(ValidatorRewarded)[-1]
    assert (rewarded.round, rewarded.validator, rewarded.group) == (2, validator(0), 0)
    assert balances(chain, validator(0), validator(1)) == [MILLI, MILLI]


def test_when_every_validator_that_reported_let_its_turn_pass_the_validator_reward_stays_in_escrow():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, **TERMS)
    play_round(chain, 1, 1, PUBLISHER, trainers_per_group=2, models={0: WORSE})  # validator(1) elected for round 2
    report_and_reveal(chain, 2, groups=(1,))  # group 0 silent this round
    order = chain.state.tasks[1].producer_order()
    assert order == (validator(1), validator(0), PUBLISHER)
    chain.mine_to(chain.state.tasks[1].close_deadline(1) + 1)  # validator(1), then validator(0), miss
    chain.send(PUBLISHER, close(1, 2))
    assert [n.round for n in chain.of_type(ValidatorRewarded)] == [1]
    assert chain.of_type(GroupSkipped)[-1].group == 0
    refund = REQUIRED - 6 * PAID_PER_TRAINER - MILLI
    assert chain.of_type(TaskFinished)[0].refund == refund


def test_every_producer_but_the_last_withholding_the_last_closes_and_each_miss_is_recorded():
    chain = Chain()
    create_task(chain, rounds=1, trainers_per_group=2, **TERMS)
    report_and_reveal(chain, 1)
    task = chain.task()
    chain.mine_to(task.close_deadline(1) + 1)  # past the publisher's and validator(0)'s close deadlines
    chain.send(validator(1), close(1, 1))
    assert chain.of_type(ProducerMissed) == [
        ProducerMissed(1, 1, PUBLISHER, task.close_deadline(0), validator(0)),
        ProducerMissed(1, 1, validator(0), task.close_deadline(1), validator(1))]
    refund = 11 * MILLI - 4 * PAID_PER_TRAINER - MILLI
    assert chain.of_type(TaskFinished)[0].refund == chain.state.balance(PUBLISHER) == refund
    assert ended_in_time(chain)


# ------------------------------------------------------------------------- a model committed, never revealed


def test_a_validator_that_reports_but_never_reveals_is_penalised_and_the_round_still_closes():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, **TERMS)
    play_round(chain, 1, 1, PUBLISHER, trainers_per_group=2)  # equal models: group 0 rewarded, elected
    assert balances(chain, validator(0), validator(1)) == [MILLI, 0]
    for g in range(2):
        chain.send(validator(g), report(1, 2, 9000, group_scores(g)))
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))  # validator(0) keeps its model to itself
    contest = chain.task().contest_deadline()
    chain.mine_to(contest + 1)
    assert chain.reject(validator(0), reveal_of(0, 2)) == (
        f"validator models of round 2 of task 1 had to be revealed by block {contest}")
    closed = chain.send(validator(0), close(1, 2)).outputs  # the elected producer closes all the same
    notices = [o.message for o in closed]
    assert ValidatorPenalized(1, 2, validator(0), 0, PENALTY_UNREVEALED, MILLI, 0) in notices
    [global_model] = [n for n in notices if isinstance(n, GlobalModel)]
    assert global_model.groups == (1,)  # the mean of what was revealed
    assert [(n.validator, n.group) for n in notices if isinstance(n, ValidatorRewarded)] == [(validator(1), 1)]
    # Its trainers are not punished for it: every Positive of both groups is paid.
    assert sorted(n.trainer for n in notices if isinstance(n, RewardPaid)) == sorted(
        trainer(g, i) for g in range(2) for i in range(2))
    assert chain.of_type(RoundRecorded)[-1].validator_stakes == (0, MILLI)  # the stake cut, the reward kept
    assert balances(chain, validator(0), validator(1)) == [MILLI, MILLI]  # a stake cut, not a fine on the balance
    assert ended_in_time(chain)


# ------------------------------------------------------------------------------ underfunded task


def test_underfunded_task_is_cancelled_after_its_window_with_a_voucher_for_exactly_its_deposit():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=1, fund=False, **TERMS)
    chain.deposit(PUBLISHER, 5 * MILLI, encode_deposit_data(1))
    assert chain.reject(STRANGER, CancelTask(1)) == f"only the publisher {PUBLISHER} may cancel task 1, not {STRANGER}"
    chain.mine_to(REGISTRATION_DEADLINE)  # the last block at which funding is still accepted
    early = chain.reject(PUBLISHER, CancelTask(1))
    assert early.startswith(f"task 1 can still go on at block {REGISTRATION_DEADLINE}: it may be cancelled only "
                            f"once it cannot (unfunded or unstaffed after block {REGISTRATION_DEADLINE}")
    late = chain.deposit(PUBLISHER, REQUIRED, encode_deposit_data(1))  # too late to start the task
    assert late.outputs[0] == Notice(DepositCredited(PUBLISHER, REQUIRED, REQUIRED))
    assert chain.state.tasks[1].escrow == 5 * MILLI
    assert chain.reject(validator(0), report(1, 1, 9000, {})) == (
        f"task 1 is not funded: {5 * MILLI} of {REQUIRED} wei")

    cancel = chain.send(PUBLISHER, CancelTask(1))
    assert cancel.outputs == (Voucher(PUBLISHER, 5 * MILLI),
                              Notice(TaskCancelled(1, PUBLISHER, 1, CANCEL_UNFUNDED, 5 * MILLI)))
    assert chain.state.tasks[1].escrow == 0 and chain.state.balance(PUBLISHER) == REQUIRED
    assert ended_in_time(chain)

    after = chain.deposit(STRANGER, 7, encode_deposit_data(1))  # to a cancelled task: the depositor's
    assert after.outputs[0] == Notice(DepositCredited(STRANGER, 7, 7))
    cancelled = f"task 1 was cancelled ({CANCEL_NAMES[CANCEL_UNFUNDED]})"
    assert chain.reject(validator(0), report(1, 1, 9000, {})) == cancelled
    assert chain.reject(trainer(0, 5), Register(1, ROLE_TRAINER, 0)) == cancelled
    assert chain.reject(PUBLISHER, CancelTask(1)) == cancelled
    assert chain.wei_held() == chain.deposited


def test_funded_task_whose_named_validators_never_come_is_cancelled_with_its_whole_escrow():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=1, seats=[], **TERMS)
    chain.mine_to(REGISTRATION_DEADLINE + 1)
    cancel = chain.send(PUBLISHER, CancelTask(1))
    assert cancel.outputs == (Voucher(PUBLISHER, REQUIRED),
                              Notice(TaskCancelled(1, PUBLISHER, 1, CANCEL_NO_VALIDATOR, REQUIRED)))


# --------------------------------------------------------------------- every group, every producer silent


def test_every_group_silent_the_publisher_cancels_and_trainers_keep_what_earlier_rounds_paid():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, **TERMS)
    play_round(chain, 1, 1, PUBLISHER, trainers_per_group=2)  # equal models: group 0's validator rewarded
    deadline = chain.block - 1 + 10  # round 2 started at the close; nobody reports it
    chain.mine_to(deadline)
    assert chain.reject(PUBLISHER, CancelTask(1)).startswith(f"task 1 can still go on at block {deadline}")
    assert chain.reject(validator(1), close(1, 2)) == (
        f"no group reported round 2 of task 1 by block {deadline}: the round cannot close; its publisher may "
        f"cancel the task")
    refund = REQUIRED - 4 * PAID_PER_TRAINER - MILLI
    cancel = chain.send(PUBLISHER, CancelTask(1))
    assert cancel.outputs == (Voucher(PUBLISHER, refund),
                              Notice(TaskCancelled(1, PUBLISHER, 2, CANCEL_GROUPS_SILENT, refund)))
    assert ended_in_time(chain)
    assert balances(chain, *[trainer(g, i) for g in range(2) for i in range(2)]) == [PAID_PER_TRAINER] * 4
    assert balances(chain, validator(0), PUBLISHER) == [MILLI, 0]  # the refund is the voucher, not a balance
    assert chain.send(trainer(0, 0), Withdraw()).outputs[0] == Voucher(trainer(0, 0), PAID_PER_TRAINER)
    assert "was cancelled" in chain.reject(validator(0), report(1, 2, 9000, group_scores(0)))
    assert chain.wei_held() == chain.deposited


def test_every_producer_misses_its_close_deadline_the_publisher_cancels_and_nothing_was_paid():
    """Reports and reveals are in, but payments wait for a close that never comes: the whole escrow goes back."""
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=2, **TERMS)
    report_and_reveal(chain, 1)
    last = chain.task().close_deadline(2)  # the close deadline of the third and last producer (publisher, v0, v1)
    assert answer(chain.state, "producer/1")["turns"][-1]["until_block"] == last
    chain.mine_to(last)
    assert chain.reject(PUBLISHER, CancelTask(1)).startswith(f"task 1 can still go on at block {last}")
    assert chain.reject(validator(1), close(1, 1)) == (
        f"every producer of round 1 of task 1 missed its close deadline (the last was block {last}); its publisher "
        f"may cancel the task")
    cancel = chain.send(PUBLISHER, CancelTask(1))
    assert cancel.outputs == (Voucher(PUBLISHER, REQUIRED),
                              Notice(TaskCancelled(1, PUBLISHER, 1, CANCEL_NO_PRODUCER, REQUIRED)))
    assert balances(chain, *[trainer(g, i) for g in range(2) for i in range(2)]) == [0] * 4
    assert not chain.of_type(RewardPaid)
    assert ended_in_time(chain)


# ----------------------------------------------------------------------------------- sybil bloat


def test_trainer_cap_per_group_is_enforced():
    chain = Chain()
    chain.send(PUBLISHER, task_message(trainers_per_group=2, **TERMS))
    for i in range(2):
        chain.send(trainer(0, i), Register(1, ROLE_TRAINER, 0))
    assert chain.reject(STRANGER, Register(1, ROLE_TRAINER, 0)) == "group 0 of task 1 is full (2 trainers)"
    chain.send(STRANGER, Register(1, ROLE_TRAINER, 1))  # another group still has room
    assert chain.reject(validator(0), Register(1, ROLE_TRAINER, 1)) == (
        f"{validator(0)} is named validator of group 0 of task 1; it registers as that group's validator")


SCALE_GROUPS = MAX_TASK_TRAINERS // REPORT_INPUT_TRAINERS  # 20 groups of 500: every report one input


def scale_task(chain: Chain, trainers: list[list[str]]) -> None:
    """Task 1 at the scale limit, funded, its test set posted, every trainer in ``trainers`` (by group) and every
    named validator registered. One wei per Positive, so that every trainer is paid (the most outputs)."""
    chain.send(PUBLISHER, task_message(rounds=1, groups=SCALE_GROUPS, budget=MAX_TASK_TRAINERS, per_positive=1,
                                       validator_reward=1, trainers_per_group=REPORT_INPUT_TRAINERS,
                                       registration_blocks=MAX_TASK_TRAINERS + 100, report_blocks=10,
                                       close_blocks=5, contest_blocks=SCALE_GROUPS + 5))  # room for 20 reveals
    post_test_set(chain, 1)
    chain.deposit(PUBLISHER, MAX_TASK_TRAINERS + 1, encode_deposit_data(1))
    for g, team in enumerate(trainers):
        for a in team:
            chain.send(a, Register(1, ROLE_TRAINER, g))
    for g in range(SCALE_GROUPS):
        chain.send(validator(g), Register(1, ROLE_VALIDATOR, g))


def stored_report(chain: Chain, group: int, team: list[str], model: bytes) -> GroupReport:
    """What the report handler stores for a report of ``team`` all at 88.00% against 90.00% (all Positive)."""
    return GroupReport(validator(group), 9000, qmodel.digest(model), {
        t: Entry(t, 8800, 600, qmodel.digest(update_of(t, 1)), True) for t in team}, chain.block - 1)


def test_a_full_round_at_the_scale_limit_stays_within_the_machine_limits():
    """20 groups x 500 trainers (the most a task holds, every report one input): every input fits the InputBox,
    every output and output count the machine. A full group's report carries 500 trainer signatures, whose
    checking (~5 ms each) is the slow part (the full signed report is accepted in
    `test_a_full_groups_signed_report_is_accepted`, slow); here the reports are entered into the state as the report
    handler stores them, and their size is that of a full signed report (a signature's value does not change its
    size). Registrations, the 20 reveals and the close run through the rules: the close pays all 10,000 trainers,
    the most outputs any input makes."""
    assert SCALE_GROUPS * REPORT_INPUT_TRAINERS == MAX_TASK_TRAINERS
    chain = Chain()
    sybils = [[addr(0x5B1_0000 + g * 0x1_0000 + i) for i in range(REPORT_INPUT_TRAINERS)]
              for g in range(SCALE_GROUPS)]
    scale_task(chain, sybils)
    assert chain.reject(STRANGER, Register(1, ROLE_TRAINER, 0)) == (
        f"group 0 of task 1 is full ({REPORT_INPUT_TRAINERS} trainers)")
    registered = [n for n in chain.of_type(ParticipantRegistered)]
    full = ValidatorReport(1, 1, 9000, bytes(32), (UINT256_MAX,) * REPORT_INPUT_TRAINERS,
                           (bytes(32),) * REPORT_INPUT_TRAINERS, (bytes(32),) * REPORT_INPUT_TRAINERS,
                           (bytes(32),) * REPORT_INPUT_TRAINERS)
    assert len(full.encode()) <= MAX_INPUT_PAYLOAD
    models = {g: validator_model(g, 1) for g in range(SCALE_GROUPS)}
    task = chain.task()
    chain.state = replace(chain.state, tasks={1: replace(task, reports=tuple(
        stored_report(chain, g, sybils[g], models[g]) for g in range(SCALE_GROUPS)))})
    reveals = [post_blob(chain, validator(g), 1, 1, models[g]) for g in range(SCALE_GROUPS)]
    closed = close_when_due(chain, 1, 1, PUBLISHER)
    assert len(closed.outputs) <= MAX_OUTPUTS_PER_INPUT
    assert max(len(o.payload) for result in reveals + [closed] for o in result.outputs) <= MAX_OUTPUT_BYTES
    assert max(len(n.encode()) for n in registered) <= MAX_OUTPUT_BYTES
    pages = chain.of_type(TrainerStakes)
    assert [p.first for p in pages] == list(range(0, MAX_TASK_TRAINERS, 1_000))
    assert sum(p.stakes.count(1) for p in pages) == len(chain.of_type(RewardPaid)) == MAX_TASK_TRAINERS
    assert chain.of_type(RoundRecorded)[0].trainers == MAX_TASK_TRAINERS
    assert chain.of_type(TaskFinished)[0].refund == 0


@pytest.mark.slow
def test_a_full_groups_signed_report_is_accepted():
    """A report of 500 trainers, each signature checked by the rules (~5 s in all): it fits the InputBox, its
    notices fit the machine, every trainer is classified."""
    chain = Chain()
    team = [keyed(f"sybil {i}") for i in range(REPORT_INPUT_TRAINERS)]
    scale_task(chain, [team] + [[] for _ in range(SCALE_GROUPS - 1)])
    signed = report(1, 1, 9000, {t: 8800 for t in team}, model=validator_model(0, 1))
    assert len(signed.encode()) <= MAX_INPUT_PAYLOAD
    accepted = chain.send(validator(0), signed)
    assert len(accepted.outputs) == REPORT_INPUT_TRAINERS <= MAX_OUTPUTS_PER_INPUT
    assert max(len(o.payload) for o in accepted.outputs) <= MAX_OUTPUT_BYTES
    assert chain.task().reports[0].positives == REPORT_INPUT_TRAINERS


def test_a_zero_validator_reward_credits_no_empty_balance():
    """State.balances holds "withdrawable wei, no zero entries": a round whose validator reward is 0 pays the
    rewarded validator nothing, and must not leave it a 0-wei balance (that breaks the ledger every auditor
    reconciles: balances = what the notices credited)."""
    chain = Chain()
    create_task(chain, rounds=1, trainers_per_group=1, validator_reward=0, **TERMS)
    play_round(chain, 1, 1, PUBLISHER, trainers_per_group=1)
    assert chain.of_type(ValidatorRewarded)[0].amount == 0
    assert 0 not in chain.state.balances.values(), chain.state.balances


# --------------------------------------------------------------------------------------- inspect


def test_inspect_shows_each_producer_turn_and_the_task_deadlines():
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=1, **TERMS)
    start = round_start(chain)
    assert start == 15  # CreateTask 10, test set 11, deposit 12, validator(0) 13, its trainer 14, validator(1) 15
    deadline = start + 10
    turns = answer(chain.state, "producer/1")
    assert turns["round"] == 1 and turns["round_start"] == start and turns["report_deadline"] == deadline
    # Until every group reports, the turns count from the report deadline: contest and response windows, then 5 each.
    assert turns["turns"] == [{"producer": to_checksum_address(a), "until_block": deadline + 5 + 5 + 5 * (i + 1)}
                              for i, a in enumerate((PUBLISHER, validator(0), validator(1)))]
    task = answer(chain.state, "task/1")
    assert (task["registration_deadline"], task["report_deadline"], task["start_block"]) == (
        REGISTRATION_DEADLINE, deadline, start)
    assert task["latest_end_block"] == REGISTRATION_DEADLINE + 1 + 2 * (10 + 2 * 5 + 3 * 5) + 1
    for g in range(2):
        chain.send(validator(g), report(1, 1, 9000, group_scores(g, trainers=1)))
    last_report = chain.block - 1  # every group reported: the windows now count from here
    turns = answer(chain.state, "producer/1")["turns"]
    assert [t["until_block"] for t in turns] == [last_report + 5 + 5 + 5 * (i + 1) for i in range(3)]
    chain.mine_to(turns[0]["until_block"] + 1)  # the publisher's turn passed: the failover is on the record too
    chain.send(validator(0), close(1, 1))
    closed = answer(chain.state, "rounds/1")["rounds"][0]
    assert closed["missed_producers"] == [to_checksum_address(PUBLISHER)]
    chain.mine_to(chain.block + 10)  # round 2: nobody reports
    chain.send(PUBLISHER, CancelTask(1))
    assert answer(chain.state, "task/1")["cancelled"] == CANCEL_NAMES[CANCEL_GROUPS_SILENT]
    assert answer(chain.state, "producer/1")["turns"] == []
