"""The rollup state machine, rule by rule: funding, registration, MAD, rewards, FLPoS, withdrawals, rejects."""
from __future__ import annotations

import json

import pytest
from dapp_fixtures import (ETH, MILLI, PORTAL, PUBLISHER, STRANGER, Chain, addr, band_model, close, close_when_due,
                           create_task, play_round, post_blob, post_test_set, report, settle, task_message, trainer, validator)
from eth_utils import keccak

from dapp.portal import encode_ether_deposit
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, RULE_BEST_CONTRIBUTION, RULE_GREATEST_STAKE,
                         RULE_RANDAO_DRAW, AdmitTrainers, ContributionClassified, DepositCredited,
                         ProducerElected, Register, RewardPaid, RoundRecorded, TaskFinished, TaskFunded,
                         TaskCreated, TrainersAdmitted, TrainerStakes, ValidatorRewarded, Withdraw, Withdrawal, encode_deposit_data)
from dapp.rewards import election_order
from dapp.state import Report, Voucher


@pytest.fixture
def chain() -> Chain:
    c = Chain()
    create_task(c)
    return c


# ------------------------------------------------------------------------------ tasks and funding


def test_task_starts_only_when_escrow_covers_every_round():
    c = Chain()
    c.send(PUBLISHER, task_message(2500, 3, 2, 10 * MILLI, 2 * MILLI, 1 * MILLI))
    assert c.of_type(TaskCreated)[0].required_escrow == 33 * MILLI
    post_test_set(c, 1)
    c.send(validator(0), Register(1, ROLE_VALIDATOR, 0))
    c.send(validator(1), Register(1, ROLE_VALIDATOR, 1))
    c.deposit(PUBLISHER, 20 * MILLI, encode_deposit_data(1))
    assert c.of_type(TaskFunded)[-1].funded is False
    reason = c.reject(validator(0), report(1, 1, 9000, {}))
    assert reason == f"task 1 is not funded: {20 * MILLI} of {33 * MILLI} wei"
    c.deposit(PUBLISHER, 13 * MILLI, encode_deposit_data(1))
    funded = c.of_type(TaskFunded)[-1]
    assert (funded.escrow, funded.funded) == (33 * MILLI, True)
    c.send(validator(0), report(1, 1, 9000, {}))


@pytest.mark.parametrize("params, why", [
    ((0, 3, 2, 1, 1, 1), "MAD 0 bps is not in (0, 10000)"),
    ((10_000, 3, 2, 1, 1, 1), "MAD 10000 bps is not in (0, 10000)"),
    ((2500, 0, 2, 1, 1, 1), "a task needs at least 1 round, got 0"),
    ((2500, 3, 0, 1, 1, 1), "a task needs at least 1 group, got 0"),
    ((2500, 3, 2, 2**256 - 1, 1, 1), "overflows uint256"),
])
def test_create_task_rejects_insane_parameters(params, why):
    assert why in Chain().reject(PUBLISHER, task_message(*params))


def test_the_rollup_assigns_task_ids_so_a_copied_create_task_cannot_take_the_publishers_id(chain):
    # A front-runner copies the publisher's CreateTask: it gets the next id as its own task, and the
    # publisher's task, created after it, gets the one after; neither input is refused.
    chain.send(STRANGER, task_message(2500, 3, 2, 1, 1, 1))
    chain.send(PUBLISHER, task_message(2500, 3, 2, 1, 1, 1))
    created = chain.of_type(TaskCreated)
    assert [(n.task_id, n.publisher) for n in created] == [(1, PUBLISHER), (2, STRANGER), (3, PUBLISHER)]
    assert chain.state.tasks[3].publisher == PUBLISHER


@pytest.mark.parametrize("data, why", [
    (b"", "the deposit names no task"),
    (encode_deposit_data(99), "task 99 does not exist"),
    (b"\x00" * 31 + b"\x01" + b"\x00", "extra data of 33 bytes is not abi.encode(uint64 taskId)"),
    ((1 << 64).to_bytes(32, "big"), "extra data of 32 bytes is not abi.encode(uint64 taskId)"),
])
def test_deposit_that_funds_no_task_is_credited_to_the_depositor(chain, data, why):
    escrow_before = chain.state.tasks[1].escrow
    result = chain.deposit(STRANGER, 5 * MILLI, data)
    notice = result.outputs[0].message
    assert isinstance(notice, DepositCredited) and (notice.depositor, notice.amount) == (STRANGER, 5 * MILLI)
    explanation = json.loads(result.outputs[1].payload)
    assert why in explanation["reason"] and explanation["deposit"] == "credited"
    assert chain.state.balance(STRANGER) == 5 * MILLI
    assert chain.state.tasks[1].escrow == escrow_before


def test_only_the_publisher_funds_its_task(chain):
    result = chain.deposit(STRANGER, 1 * MILLI, encode_deposit_data(1))
    assert isinstance(result.outputs[0].message, DepositCredited)
    assert f"only the publisher {PUBLISHER} funds task 1" in json.loads(result.outputs[1].payload)["reason"]


def test_deposit_too_short_to_name_a_sender_is_rejected(chain):
    assert "shorter than sender(20) + value(32)" in chain.reject(PORTAL, b"\x01" * 51)


def test_portal_address_is_compared_case_insensitively(chain):
    result = chain.send(PORTAL.upper().replace("0X", "0x"), encode_ether_deposit(STRANGER, 1, b""))
    assert isinstance(result.outputs[0].message, DepositCredited)


# ---------------------------------------------------------------------------------- registration


@pytest.mark.parametrize("sender, msg, why", [
    (addr(5), Register(2, ROLE_TRAINER, 0), "task 2 does not exist"),
    (addr(5), Register(1, 2, 0), "role 2 is neither 0 (trainer) nor 1 (validator)"),
    (addr(5), Register(1, ROLE_TRAINER, 2), "group 2 does not exist in task 1 (groups 0..1)"),
    (trainer(0, 0), Register(1, ROLE_VALIDATOR, 1), "is already registered in task 1 as trainer of group 0"),
    (addr(5), Register(1, ROLE_VALIDATOR, 1), f"group 1 of task 1 has named validator {validator(1)}, not {addr(5)}"),
    (validator(1), Register(1, ROLE_VALIDATOR, 1), "is already registered in task 1 as validator of group 1"),
])
def test_register_rejects(chain, sender, msg, why):
    assert why in chain.reject(sender, msg)


# ------------------------------------------------------------------------- reports, MAD, rewards


def test_rollup_classifies_with_mad_at_the_boundary(chain):
    # validator 80.00 %, MAD 25 %: 60.00 % is Positive, 59.99 % is Negative, whatever anyone claims
    chain.send(validator(0), report(1, 1, 8000, {trainer(0, 0): 6000, trainer(0, 1): 5999}))
    classified = {n.trainer: n.positive for n in chain.of_type(ContributionClassified)}
    assert classified == {trainer(0, 0): True, trainer(0, 1): False}
    assert chain.of_type(RewardPaid) == [], "the report pays nothing: payments wait for disputes, at the close"
    chain.send(validator(1), report(1, 1, 8000, {}, group=1))
    settle(chain, 1, 1, PUBLISHER)
    assert [n.trainer for n in chain.of_type(RewardPaid)] == [trainer(0, 0)]


def test_positives_paid_best_score_first_until_group_budget_runs_out():
    c = Chain()
    # budget 10 mETH over 2 groups = 5 mETH per group; 2 mETH per Positive -> 2, 2, then 1 (partial), then 0
    create_task(c, trainers_per_group=4, budget=10 * MILLI, per_positive=2 * MILLI)
    scores = {trainer(0, 3): 8800, trainer(0, 1): 9000, trainer(0, 0): 8700, trainer(0, 2): 8900}
    c.send(validator(0), report(1, 1, 9000, scores))
    c.send(validator(1), report(1, 1, 9000, {}, group=1))
    settle(c, 1, 1, PUBLISHER)
    paid = [(n.trainer, n.amount) for n in c.of_type(RewardPaid)]
    assert paid == [(trainer(0, 1), 2 * MILLI), (trainer(0, 2), 2 * MILLI), (trainer(0, 3), 1 * MILLI)]
    assert c.state.balance(trainer(0, 0)) == 0
    assert c.state.tasks[1].escrow == 3 * 11 * MILLI - 5 * MILLI - 1 * MILLI  # and the validator reward


def test_positives_with_the_same_score_share_what_is_left_pro_rata():
    c = Chain()
    create_task(c, trainers_per_group=4, budget=10 * MILLI, per_positive=2 * MILLI)
    c.send(validator(0), report(1, 1, 9000, {trainer(0, i): 8500 for i in (3, 1, 0, 2)}))
    c.send(validator(1), report(1, 1, 9000, {}, group=1))
    settle(c, 1, 1, PUBLISHER)
    # 5 mETH cannot pay 4 x 2 mETH: each gets a quarter, in report order
    assert [(n.trainer, n.amount) for n in c.of_type(RewardPaid)] == [
        (trainer(0, i), 5 * MILLI // 4) for i in (3, 1, 0, 2)]
    assert c.state.tasks[1].escrow == 3 * 11 * MILLI - 5 * MILLI - 1 * MILLI


def test_a_low_address_cannot_buy_its_place_in_the_payment_order():
    """The attack of issue 12: a key ground to sort first (0x00…) at 68% took the only reward from an
    honest trainer at 99%. By score, the honest trainer is paid."""
    c = Chain()
    create_task(c, trainers_per_group=2, budget=4 * MILLI, per_positive=2 * MILLI)  # 2 mETH: one reward
    low, high = sorted([trainer(0, 0), trainer(0, 1)], key=lambda a: int(a, 16))
    c.send(validator(0), report(1, 1, 9000, {low: 6800, high: 9900}))
    c.send(validator(1), report(1, 1, 9000, {}, group=1))
    settle(c, 1, 1, PUBLISHER)
    assert [(n.trainer, n.amount) for n in c.of_type(RewardPaid)] == [(high, 2 * MILLI)]
    assert c.state.balance(low) == 0


def test_budget_dust_stays_in_escrow_and_is_refunded_to_publisher():
    c = Chain()
    create_task(c, groups=3, rounds=1, budget=10, per_positive=100, validator_reward=0, trainers_per_group=1)
    play_round(c, 1, 1, PUBLISHER, groups=3, trainers_per_group=1)
    # 10 wei // 3 groups = 3 wei each; 1 wei of dust goes back to the publisher
    assert [n.amount for n in c.of_type(RewardPaid)] == [3, 3, 3]
    assert c.of_type(TaskFinished)[0].refund == 1
    assert c.state.balance(PUBLISHER) == 1


@pytest.mark.parametrize("sender, scores, why", [
    (STRANGER, {}, f"{STRANGER} is not a validator of task 1"),
    (trainer(0, 0), {}, f"{trainer(0, 0)} is not a validator of task 1"),
    (validator(0), {trainer(1, 0): 8000}, f"trainer {trainer(1, 0)} is in group 1, not in validator"),
    (validator(0), {addr(77): 8000}, f"{addr(77)} is not a registered trainer of task 1"),
    (validator(0), {validator(1): 8000}, f"{validator(1)} is not a registered trainer of task 1"),
    (validator(0), {trainer(0, 0): 10_001}, "accuracy of trainer"),
])
def test_validator_report_rejects(chain, sender, scores, why):
    assert why in chain.reject(sender, report(1, 1, 9000, scores))


def test_report_rejects_duplicate_trainer_wrong_round_and_second_report(chain):
    dup = report(1, 1, 9000, {trainer(0, 0): 8000})
    dup = type(dup)(1, 1, 9000, dup.model_digest, dup.contributions * 2, dup.update_digests * 2, dup.sig_r * 2,
                    dup.sig_vs * 2)
    assert f"trainer {trainer(0, 0)} appears twice" in chain.reject(validator(0), dup)
    assert chain.reject(validator(0), report(1, 2, 9000, {})) == "task 1 is in round 1, not round 2"
    assert "validator accuracy 10001 bps is above 10000" in chain.reject(validator(0), report(1, 1, 10_001, {}))
    chain.send(validator(0), report(1, 1, 9000, {}))
    assert "already reported round 1" in chain.reject(validator(0), report(1, 1, 9000, {}))


# --------------------------------------------------------------------------- round close, FLPoS


def test_round_close_only_by_elected_producer_with_every_report_in(chain):
    chain.send(validator(0), report(1, 1, 9000, {}))
    chain.send(validator(1), report(1, 1, 9000, {}, group=1))
    chain.mine_to(chain.task().contest_deadline() + 1)
    wrong = chain.reject(validator(0), close(1, 1))
    assert f"only {PUBLISHER} may close round 1 of task 1" in wrong


def test_round_close_waits_for_every_report_until_the_report_deadline(chain):
    chain.send(validator(0), report(1, 1, 9000, {}))
    assert "still lacks the report of group(s) 1" in chain.reject(PUBLISHER, close(1, 1))
    chain.send(validator(1), report(1, 1, 9000, {}, group=1))
    deadline = chain.task().contest_deadline()
    assert f"open for reveals, contests and challenges until block {deadline}" in chain.reject(PUBLISHER, close(1, 1))
    settle(chain, 1, 1, PUBLISHER)
    assert chain.state.tasks[1].current_round == 2


def test_validator_reward_goes_to_model_closest_to_global_accuracy(chain):
    # group 0's model misses class 1 (9,000 bps on the public set), group 1's is perfect; their mean keeps
    # class 1 at half weight: 10,000 bps. The rollup measures all three itself.
    play_round(chain, 1, 1, PUBLISHER, models={0: band_model(dead=(1,)), 1: band_model()})
    rewarded = chain.of_type(ValidatorRewarded)[-1]
    assert (rewarded.validator, rewarded.group, rewarded.distance_bps) == (validator(1), 1, 0)
    assert chain.of_type(RoundRecorded)[-1].global_accuracy_bps == 10_000
    assert chain.state.tasks[1].stakes[validator(1)] == 1 * MILLI


def test_validator_reward_exact_tie_goes_to_lower_group(chain):
    play_round(chain, 1, 1, PUBLISHER, models={0: band_model(dead=(1,)), 1: band_model(dead=(2,))})
    assert chain.of_type(ValidatorRewarded)[-1].group == 0


def test_flpos_greatest_stake_produces_then_ties_go_to_round_winner(chain):
    play_round(chain, 1, 1, PUBLISHER, models={0: band_model(dead=(1,)), 1: band_model()})
    elected = chain.of_type(ProducerElected)[-1]
    assert (elected.round, elected.producer, elected.rule) == (2, validator(1), RULE_GREATEST_STAKE)
    round2 = {0: band_model(salt=7), 1: band_model(dead=(1,))}
    for g in range(2):
        chain.send(validator(g), report(1, 2, 9000, {}, model=round2[g]))
    for g in range(2):
        post_blob(chain, validator(g), 1, 2, round2[g])
    chain.mine_to(chain.task().contest_deadline() + 1)
    assert f"only {validator(1)} may close round 2" in chain.reject(PUBLISHER, close(1, 2))
    # round 2: group 0 wins -> stakes tie at 1 mETH each -> this round's winner (group 0) produces
    chain.send(validator(1), close(1, 2))
    elected = chain.of_type(ProducerElected)[-1]
    assert (elected.round, elected.producer, elected.rule) == (3, validator(0), RULE_BEST_CONTRIBUTION)


def test_flpos_draw_from_prev_randao_when_round_winner_is_not_among_the_tied():
    validators = [validator(g) for g in range(3)]
    stakes = {validator(0): 5, validator(1): 5, validator(2): 3}
    for randao in (bytes(32), b"\x01" * 32, b"\xfe" * 32):
        expected = min([validator(0), validator(1)], key=lambda v: keccak(randao + bytes.fromhex(v[2:])))
        order, rule = election_order(validators, set(validators), stakes, validator(2), randao)
        assert (order[0], rule) == (expected, RULE_RANDAO_DRAW) and order[2] == validator(2)
    outcomes = {election_order(validators, set(validators), stakes, validator(2), bytes([i]) * 32)[0][0]
                for i in range(16)}
    assert outcomes == {validator(0), validator(1)}, "the draw never picks the lower stake and is not constant"


def test_flpos_puts_validators_that_reported_before_those_that_did_not():
    validators = [validator(g) for g in range(3)]
    stakes = {validator(0): 9, validator(1): 5, validator(2): 3}
    order, rule = election_order(validators, {validator(1), validator(2)}, stakes, validator(2), bytes(32))
    assert (order, rule) == ([validator(1), validator(2), validator(0)], RULE_GREATEST_STAKE)


def test_round_recorded_has_stakes_accuracies_and_budget_left(chain):
    play_round(chain, 1, 1, PUBLISHER, models={0: band_model(dead=(1,)), 1: band_model()})
    # round 2: 7,000 and 8,000 bps; classes 1 and 2 are dead in both, class 3 at half weight in the mean: 8,000
    play_round(chain, 1, 2, validator(1), models={0: band_model(dead=(1, 2, 3)), 1: band_model(dead=(1, 2))})
    rec = chain.of_type(RoundRecorded)[-1]
    assert rec.round == 2 and rec.global_accuracy_bps == 8000
    assert rec.accumulated_accuracy_bps == (10_000 + 8000) // 2
    page = chain.of_type(TrainerStakes)[-1]
    assert rec.trainers == 6 and (page.round, page.first) == (2, 0)
    assert page.trainers == tuple(trainer(g, i) for g in range(2) for i in range(3))
    # 5 mETH per group per round, 2 mETH per Positive, 3 Positives with the same score: a third each
    share = 5 * MILLI // 3
    assert page.stakes == (2 * share,) * 6
    assert rec.validators == (validator(0), validator(1)) and rec.validator_stakes == (0, 2 * MILLI)
    assert rec.trainer_paid == 6 * share and rec.escrow_left == 33 * MILLI - 2 * (6 * share + MILLI)
    assert rec.timestamp == chain.timestamp + 12 * (chain.block - 1 - 10)


def test_budget_exhausts_exactly_and_leftover_returns_to_publisher_after_last_round():
    c = Chain()
    create_task(c, rounds=3, budget=10 * MILLI, per_positive=1 * MILLI, validator_reward=1 * MILLI)
    producer = PUBLISHER
    for r in (1, 2, 3):
        play_round(c, 1, r, producer, trainer_bps=8000 if r < 3 else 1000)  # round 3: all Negative
        elected = c.of_type(ProducerElected)
        producer = elected[-1].producer if elected else producer
    finished = c.of_type(TaskFinished)[-1]
    paid_trainers = sum(n.amount for n in c.of_type(RewardPaid))
    assert paid_trainers == 2 * 6 * MILLI and finished.refund == 33 * MILLI - paid_trainers - 3 * MILLI
    assert c.state.tasks[1].escrow == 0 and c.state.tasks[1].finished
    total = sum(c.state.balances.values())
    assert total == 33 * MILLI, "every wei deposited is in someone's balance"
    assert "task 1 is finished" in c.reject(validator(0), report(1, 4, 9000, {}))
    credited = c.deposit(PUBLISHER, 1, encode_deposit_data(1)).outputs[0].message
    assert isinstance(credited, DepositCredited)


# ----------------------------------------------------------------------------------- withdrawals


def test_withdraw_pays_a_voucher_once(chain):
    play_round(chain, 1, 1, PUBLISHER)
    owed = chain.state.balance(trainer(0, 0))
    result = chain.send(trainer(0, 0), Withdraw())
    voucher, notice = result.outputs
    assert voucher == Voucher(trainer(0, 0), owed, b"")
    assert notice.message == Withdrawal(trainer(0, 0), owed)
    assert chain.state.balance(trainer(0, 0)) == 0
    assert chain.state.tasks[1].stakes[trainer(0, 0)] == owed, "withdrawing does not lower the stake"
    assert chain.reject(trainer(0, 0), Withdraw()) == f"{trainer(0, 0)} has nothing to withdraw"


# -------------------------------------------------------------------------------- malformed input


def test_unknown_tag_truncated_and_notice_tags_are_rejected(chain):
    assert chain.reject(STRANGER, b"\xde\xad\xbe\xef") == "unknown input tag 0xdeadbeef"
    assert "shorter than a 4-byte tag" in chain.reject(STRANGER, b"\x01")
    assert "malformed Register ABI" in chain.reject(STRANGER, Register(1, 0, 0).encode()[:-1])
    assert "unknown input tag" in chain.reject(STRANGER, Withdrawal(STRANGER, 1).encode())
    assert "not canonically ABI-encoded" in chain.reject(STRANGER, Withdraw().encode() + b"\x00" * 32)


def test_deposit_report_is_not_an_error_report(chain):
    outputs = chain.deposit(STRANGER, 1 * ETH).outputs
    assert isinstance(outputs[1], Report) and "error" not in json.loads(outputs[1].payload)


def test_a_deposit_shaped_payload_from_anyone_but_the_portal_is_rejected(chain):
    fake_deposit = encode_ether_deposit(STRANGER, 1 * ETH, encode_deposit_data(1))
    assert chain.reject(STRANGER, fake_deposit).startswith("unknown input tag")
    assert chain.state.balance(STRANGER) == 0


# ------------------------------------------------------------------------------- trainer approval


def test_a_task_with_trainer_approval_seats_only_the_trainers_its_publisher_admitted():
    c = Chain()
    c.send(PUBLISHER, task_message(2500, 3, 2, 10 * MILLI, 2 * MILLI, 1 * MILLI, trainers_per_group=2,
                                   trainer_approval=True))
    honest = [trainer(0, 0), trainer(0, 1)]
    assert f"{STRANGER} is not admitted to group 0 of task 1" in c.reject(STRANGER, Register(1, ROLE_TRAINER, 0))
    assert f"only the publisher {PUBLISHER} admits trainers" in c.reject(STRANGER, AdmitTrainers(1, 0, (STRANGER,)))
    c.send(PUBLISHER, AdmitTrainers(1, 0, tuple(honest)))
    assert c.of_type(TrainersAdmitted)[-1].admitted == 2
    assert "makes 3, above its 2 trainers" in c.reject(PUBLISHER, AdmitTrainers(1, 0, (trainer(0, 2),)))
    assert "already admitted to group 0" in c.reject(PUBLISHER, AdmitTrainers(1, 1, (honest[0],)))
    assert "a named validator" in c.reject(PUBLISHER, AdmitTrainers(1, 1, (validator(0),)))
    assert "not admitted to group 1" in c.reject(honest[0], Register(1, ROLE_TRAINER, 1))
    for t in honest:
        c.send(t, Register(1, ROLE_TRAINER, 0))
    assert c.state.tasks[1].group_trainers == (2, 0)


def test_admission_is_refused_in_an_open_task_and_after_the_registration_window(chain):
    assert "registers trainers without approval" in chain.reject(PUBLISHER, AdmitTrainers(1, 0, (STRANGER,)))
    c = Chain()
    c.send(PUBLISHER, task_message(trainer_approval=True, registration_blocks=5))
    c.mine(10)
    assert "registration for task 1 closed at block" in c.reject(PUBLISHER, AdmitTrainers(1, 0, (STRANGER,)))
