"""Issue 15 part 2 on the real parts: two publishers' tasks at once on one rollup whose deployment fixed a broker
taking 2 % (anvil, the official @cartesi/rollups 2.2.0 contracts, the host-mode node started with the deployment's
market, `python -m dapp`), each input a transaction from its party's own key. A trainer joins both tasks; each task
pays from its own escrow; the broker's fee vouchers are executed on L1 and the broker's balance grows by exactly the
fees; the audit, replaying under the deployment's market, passes and the Application holds what the rules say."""
from __future__ import annotations

from typing import Iterator

import pytest
from eth_account import Account
from onchain_fixtures import MILLI, Rollup, of, running_rollup
from test_dapp_liveness_on_chain import close_when_due, open_task, report, reveal

from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, BrokerFeePaid, CancelTask, Register, RewardPaid,
                         TaskFinished, ValidatorRewarded)
from rollups_client.l1 import L1

pytestmark = pytest.mark.slow

FEE_BPS = 200
BROKER = Account.create().address.lower()  # holds nothing and never sends: its balance is the fees it was paid


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Iterator[Rollup]:
    with running_rollup(tmp_path_factory.mktemp("market"), broker=BROKER, broker_fee_bps=FEE_BPS) as started:
        yield started


def test_two_publishers_tasks_run_at_once_each_pays_from_its_own_escrow_and_the_broker_fee_arrives_on_l1(market):
    publishers = [market.key(), market.key()]
    validators = [market.key(), market.key()]  # one group each, each task its own validator
    shared, own = market.key(), [market.key(), market.key()]  # a trainer in both tasks, one more in each
    created = [open_task(market, p, (L1.address(v),), rounds=1) for p, v in zip(publishers, validators)]
    tasks = [c.task_id for c in created]
    budget = 1 * (4 + 1) * MILLI  # one round: 4 mETH for trainers, 1 mETH for the validator
    assert [c.required_escrow for c in created] == [budget + budget * FEE_BPS // 10_000] * 2
    assert market.inspect("market")["fee_bps"] == FEE_BPS
    listed = market.inspect(f"tasks?open={market.l1.w3.eth.block_number}")["tasks"]
    assert [t["task_id"] for t in listed] == tasks and {t["broker_fee_wei"] for t in listed} == {str(budget // 50)}
    assert "only the publisher" in market.rejected(publishers[1], CancelTask(tasks[0]))

    for t, v, mine in zip(tasks, validators, own):
        market.accepted(v, Register(t, ROLE_VALIDATOR, 0))
        for trainer in (shared, mine):
            market.accepted(trainer, Register(t, ROLE_TRAINER, 0))
    for t, v, mine in zip(tasks, validators, own):  # both rounds open at once: reports, then reveals, then closes
        market.accepted(v, report(market, t, 1, 0, [shared, mine]))
    for t, v in zip(tasks, validators):
        reveal(market, v, t, 1, 0)
    closes = [close_when_due(market, p, t, 1) for p, t in zip(publishers, tasks)]

    for t, p, notices, mine in zip(tasks, publishers, closes, own):
        assert {(n.task_id, n.trainer) for n in of(notices, RewardPaid)} == {(t, L1.address(shared)),
                                                                            (t, L1.address(mine))}
        spent = sum(n.amount for n in of(notices, RewardPaid)) + sum(n.amount for n in of(notices, ValidatorRewarded))
        (finished,) = of(notices, TaskFinished)
        (fee,) = of(notices, BrokerFeePaid)
        assert fee == BrokerFeePaid(t, BROKER, FEE_BPS, budget * FEE_BPS // 10_000)
        assert finished.refund == created[tasks.index(t)].required_escrow - spent - fee.amount  # its own escrow
    assert market.inspect(f"balance/{L1.address(shared)}")["balance_wei"] == str(2 * MILLI)  # paid by both

    before = market.l1.balance(BROKER)
    received = [market.execute(market.voucher_of(_close_index(market, t))) for t in tasks]
    assert received == [budget * FEE_BPS // 10_000] * 2
    assert market.l1.balance(BROKER) - before == sum(received)
    market.assert_serving_and_audited()


def _close_index(market: Rollup, task_id: int) -> int:
    """The input that finished `task_id` (the one whose outputs hold its BrokerFeePaid)."""
    (out,) = [o for o in market.node.notices() if isinstance(o.message, BrokerFeePaid) and o.message.task_id == task_id]
    return out.input_index
