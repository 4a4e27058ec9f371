"""Issue 12's liveness attacks played on the real parts: anvil, the official @cartesi/rollups 2.2.0 contracts,
the host-mode node and the backend (`python -m dapp`), each input a web3 transaction from its own key, on the
issue-13 rules (the publisher posts the public test set; validators sign-checked reports, reveal their models;
the rounds close after the contest window and pay at the close).

One chain for the module, mining on every transaction, so an input's L1 block is known and the deadlines
(a few blocks) are passed with `anvil_mine` instead of waiting; each scenario is a task of its own.
1. Slot squatting: an outsider's Register for group 1's seat is rejected; group 1's named validator stays
   silent; after the report deadline the honest group reveals and the publisher closes without group 1
   (GroupSkipped); the task goes on and ends; the publisher's unspent escrow comes back on L1 through its
   Withdraw voucher.
2. Withholding producer: the validator elected for round 2 never closes; the next in the election order
   closes once the elected one's close deadline has passed (ProducerMissed); the task ends.
3. Underfunded: after the registration window the publisher cancels; the voucher pays back its deposit.
After each the node still answers `cartesi_getChainId`, the auditors' audit passes on the history so far, and
the Application holds exactly the Ether the rules account for.
"""
from __future__ import annotations

import pytest
from dapp_fixtures import update_of, validator_model
from onchain_fixtures import MILLI, Entry, Rollup, of, rollup, signed_report, task  # noqa: F401 (the fixture)

from dapp.schema import (CANCEL_UNFUNDED, ROLE_TRAINER, ROLE_VALIDATOR, CancelTask, GroupSkipped, ProducerElected,
                         ProducerMissed, Register, RewardPaid, RoundClose, TaskCancelled, TaskCreated, TaskFinished,
                         ValidatorRewarded, Withdraw, Withdrawal)
from rollups_client.l1 import L1

pytestmark = pytest.mark.slow


def report(rollup: Rollup, t: int, round_: int, group: int, trainers: list[str]):
    """Every trainer Positive (8,800 bps against the validator's 9,000), each signing its update; the validator
    commits to `validator_model` of its group and round."""
    entries = [Entry(k, 8800, update_of(L1.address(k), round_)) for k in trainers]
    return signed_report(rollup.domain, t, round_, group, 9000, validator_model(group, round_), entries)


def reveal(rollup: Rollup, validator_key: str, t: int, round_: int, group: int) -> None:
    rollup.post_blob(validator_key, t, round_, validator_model(group, round_))


def close_when_due(rollup: Rollup, key: str, t: int, round_: int) -> list:
    """Past the contest deadline, `key` closes the round; its notices."""
    rollup.mine_to(rollup.contest_deadline(t))
    return rollup.accepted(key, RoundClose(t, round_))


def open_task(rollup: Rollup, publisher: str, validators: tuple[str, ...], **terms) -> TaskCreated:
    """CreateTask, the public test set and the exact escrow, all from the publisher."""
    (created,) = rollup.accepted(publisher, task(validators, **terms))
    rollup.post_test_set(publisher, created.task_id)
    rollup.deposit(publisher, created.task_id, created.required_escrow)
    return created


def test_a_squatter_is_refused_and_a_silent_group_is_skipped_then_the_publisher_is_refunded_on_l1(rollup):
    publisher, squatter, honest = rollup.key(), rollup.key(), rollup.key()
    trainers = [rollup.key() for _ in range(3)]  # two in the honest group 0, one in the silent group 1
    silent = L1.address(rollup.key())  # named for group 1, never sends anything
    addr = [L1.address(k) for k in (publisher, honest, *trainers)]
    (created,) = rollup.accepted(publisher, task((addr[1], silent)))
    assert isinstance(created, TaskCreated)
    t = created.task_id  # assigned by the rollup

    why = rollup.rejected(squatter, Register(t, ROLE_VALIDATOR, 1))  # right after CreateTask
    assert why == f"group 1 of task {t} has named validator {silent}, not {L1.address(squatter)}"
    rollup.post_test_set(publisher, t)
    required = 2 * (4 + 1) * MILLI
    rollup.deposit(publisher, t, required)
    rollup.accepted(honest, Register(t, ROLE_VALIDATOR, 0))
    for key, group in zip(trainers, (0, 0, 1)):
        rollup.accepted(key, Register(t, ROLE_TRAINER, group))

    rollup.mine_to(created.registration_deadline)  # group 1's seat stays empty: round 1 starts after the window
    rollup.accepted(honest, report(rollup, t, 1, 0, trainers[:2]))
    order, _, report_deadline = rollup.turns(t)
    assert order == [addr[0], addr[1]]  # the publisher, then the seated validator
    assert "lacks the report of group(s) 1" in rollup.rejected(publisher, RoundClose(t, 1))  # before the deadline

    rollup.mine_to(report_deadline)  # the reveals open once the silent group's deadline has passed
    reveal(rollup, honest, t, 1, 0)
    notices = close_when_due(rollup, publisher, t, 1)
    assert of(notices, GroupSkipped) == [GroupSkipped(t, 1, 1, silent, report_deadline)]
    paid = of(notices, RewardPaid)
    assert [(p.trainer, p.amount) for p in paid] == [(addr[2], MILLI), (addr[3], MILLI)]
    assert of(notices, ValidatorRewarded)[0].validator == addr[1]
    (elected,) = of(notices, ProducerElected)
    assert elected.producer == addr[1]  # the only validator that reported

    rollup.accepted(honest, report(rollup, t, 2, 0, trainers[:2]))  # the task goes on
    rollup.mine_to(rollup.turns(t)[2])
    reveal(rollup, honest, t, 2, 0)
    notices = close_when_due(rollup, honest, t, 2)
    assert [g.group for g in of(notices, GroupSkipped)] == [1]
    paid += of(notices, RewardPaid)
    (finished,) = of(notices, TaskFinished)
    assert {p.trainer for p in paid} == {addr[2], addr[3]}  # group 1's trainer, unreported, got nothing
    assert finished.refund == required - 4 * MILLI - 2 * MILLI  # four Positives, two validator rewards

    index = rollup.send(publisher, Withdraw())
    assert rollup.node.input_status(index) == "ACCEPTED"
    assert of([o.message for o in rollup.node.notices(input_index=index)], Withdrawal) == [
        Withdrawal(addr[0], finished.refund)]
    voucher = rollup.voucher_of(index)
    assert (voucher.destination.lower(), voucher.value) == (addr[0], finished.refund)
    assert rollup.execute(voucher) == finished.refund  # real Ether back on L1
    rollup.assert_serving_and_audited()


def test_a_withholding_producer_loses_its_turn_and_the_task_finishes(rollup):
    publisher, v0, v1, t0, t1 = (rollup.key() for _ in range(5))
    addr = {k: L1.address(k) for k in (publisher, v0, v1, t0, t1)}
    t = open_task(rollup, publisher, (addr[v0], addr[v1])).task_id
    for key, role, group in ((t0, ROLE_TRAINER, 0), (t1, ROLE_TRAINER, 1), (v0, ROLE_VALIDATOR, 0),
                             (v1, ROLE_VALIDATOR, 1)):
        rollup.accepted(key, Register(t, role, group))
    for r in (1, 2):
        rollup.accepted(v0, report(rollup, t, r, 0, [t0]))
        rollup.accepted(v1, report(rollup, t, r, 1, [t1]))
        reveal(rollup, v0, t, r, 0)  # every group reported: the reveals are open
        reveal(rollup, v1, t, r, 1)
        if r == 1:
            (elected,) = of(close_when_due(rollup, publisher, t, 1), ProducerElected)

    order, until, _ = rollup.turns(t)
    assert order[0] == elected.producer and sorted(order[:2]) == sorted([addr[v0], addr[v1]])
    assert order[2] == addr[publisher]
    withholder, successor = (v0, v1) if order[0] == addr[v0] else (v1, v0)

    # The elected producer withholds its RoundClose; during its turn the others are refused.
    rollup.mine_to(rollup.contest_deadline(t))
    for key in (successor, publisher):
        assert rollup.rejected(key, RoundClose(t, 2)).startswith(f"only {addr[withholder]} may close round 2")
    rollup.mine_to(until[0])
    notices = rollup.accepted(successor, RoundClose(t, 2))
    assert of(notices, ProducerMissed) == [ProducerMissed(t, 2, addr[withholder], until[0], addr[successor])]
    assert [p.trainer for p in of(notices, RewardPaid)] == [addr[t0], addr[t1]]
    assert len(of(notices, TaskFinished)) == 1
    assert rollup.inspect(f"producer/{t}")["finished"]
    rounds = rollup.inspect(f"rounds/{t}")["rounds"]
    assert rounds[1]["producer"].lower() == addr[successor]
    assert [a.lower() for a in rounds[1]["missed_producers"]] == [addr[withholder]]
    assert "is finished" in rollup.rejected(withholder, RoundClose(t, 2))  # too late now
    rollup.assert_serving_and_audited()


def test_an_underfunded_task_is_cancelled_and_its_deposit_paid_back_on_l1(rollup):
    publisher, named = rollup.key(), rollup.key()
    (created,) = rollup.accepted(publisher, task((L1.address(named),), rounds=1))
    t = created.task_id
    deposit = created.required_escrow // 2 + 1  # an odd amount, short of the 5 mETH required
    rollup.deposit(publisher, t, deposit)
    rollup.accepted(named, Register(t, ROLE_VALIDATOR, 0))
    assert "can still go on" in rollup.rejected(publisher, CancelTask(t))  # inside the registration window

    rollup.mine_to(created.registration_deadline)
    assert "closed at block" in rollup.rejected(rollup.key(), Register(t, ROLE_TRAINER, 0))
    assert "not funded" in rollup.rejected(named, report(rollup, t, 1, 0, []))
    assert "only the publisher" in rollup.rejected(named, CancelTask(t))
    index = rollup.send(publisher, CancelTask(t))
    assert rollup.node.input_status(index) == "ACCEPTED", rollup.reason(index)
    (cancelled,) = [o.message for o in rollup.node.notices(input_index=index)]
    assert cancelled == TaskCancelled(t, L1.address(publisher), 1, CANCEL_UNFUNDED, deposit)
    voucher = rollup.voucher_of(index)
    assert (voucher.destination.lower(), voucher.value) == (L1.address(publisher), deposit)
    assert rollup.execute(voucher) == deposit  # exactly what it deposited
    assert "was cancelled" in rollup.rejected(publisher, CancelTask(t))  # no second refund
    rollup.assert_serving_and_audited()
