"""Issue 12's liveness attacks played on the real parts: anvil, the official @cartesi/rollups 2.2.0 contracts,
the host-mode node and the backend (`python -m dapp`), each input a web3 transaction from its own key.

One chain for the module, mining on every transaction, so an input's L1 block is known and the deadlines
(a few blocks) are passed with `anvil_mine` instead of waiting; each scenario is a task of its own.
1. Slot squatting: an outsider's Register for group 1's seat is rejected; group 1's named validator stays
   silent; after the report deadline the publisher closes without it (GroupSkipped); the task goes on and
   ends; the publisher's unspent escrow comes back on L1 through its Withdraw voucher.
2. Withholding producer: the validator elected for round 2 never closes; the next in the election order
   closes once the elected one's close deadline has passed (ProducerMissed); the task ends.
3. Underfunded: after the registration window the publisher cancels; the voucher pays back its deposit.
After each the node still answers `cartesi_getChainId`, the auditors' audit passes on the history so far, and
the Application holds exactly the Ether the rules account for.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import pytest
from eth_account import Account

from attack_fixtures import chain_id_of, ether_the_rules_hold
from common import accounts
from contracts_config.transactions import send_transaction
from dapp.schema import (CANCEL_UNFUNDED, ROLE_TRAINER, ROLE_VALIDATOR, CancelTask, CreateTask, GroupSkipped,
                         Message, ProducerElected, ProducerMissed, Register, RewardPaid, RoundClose, TaskCancelled,
                         TaskCreated, TaskFinished, ValidatorReport, ValidatorRewarded, Withdraw, Withdrawal,
                         encode_deposit_data, pack_contribution)
from frontend_console.audit import audit
from node_fixtures import DAPP_BACKEND, fresh_deployment, node_process, running_anvil, wait_until
from rollups_client.l1 import L1
from rollups_client.node import NodeClient
from rollups_client.outputs import RollupOutput

pytestmark = pytest.mark.slow
MILLI = 10**15
EPOCH_LENGTH = 4
FUNDER, EXECUTOR = accounts.private_key(9), accounts.private_key(8)  # no role in any task
TERMS = {"registration_blocks": 10, "report_blocks": 6, "close_blocks": 5}  # > the claims mined in between
_next_key = iter(range(20, 1000))


@dataclass
class Rollup:
    """The running stack as the test's parties see it: L1 to send and mine, the node to read back."""

    l1: L1
    node: NodeClient
    url: str

    def key(self) -> str:
        """A new party: a key of its own, with Ether for gas."""
        key = accounts.private_key(next(_next_key))
        send_transaction(self.l1.w3, FUNDER, {"to": Account.from_key(key).address, "value": 10**18})
        return key

    def _processed(self, index: int) -> int:
        wait_until(lambda: self.node.processed_input_count() > index, 60, f"the node to process input {index}")
        return index

    def send(self, key: str, message: Message) -> int:
        """`InputBox.addInput` from `key`; the input's index once the node has processed it."""
        return self._processed(self.l1.add_input(key, message.encode()))

    def deposit(self, key: str, task_id: int, value: int) -> int:
        return self._processed(self.l1.input_index(self.l1.send_deposit(key, value, encode_deposit_data(task_id))))

    def accepted(self, key: str, message: Message) -> list[Message]:
        """Send; the input must be ACCEPTED; its notices, read back through the node's JSON-RPC."""
        index = self.send(key, message)
        assert self.node.input_status(index) == "ACCEPTED", self.reason(index)
        return [o.message for o in self.node.notices(input_index=index)]

    def rejected(self, key: str, message: Message) -> str:
        """Send; the input must be REJECTED with no output; the reason the backend reported."""
        index = self.send(key, message)
        assert self.node.input_status(index) == "REJECTED"
        assert self.node.outputs(input_index=index) == []
        return self.reason(index)

    def reason(self, index: int) -> str:
        (report,) = self.node.reports(input_index=index)
        return json.loads(report.raw_data)["error"]

    def inspect(self, path: str) -> dict:
        answer = self.node.inspect(path.encode())
        assert answer.status == "Accepted", answer
        return json.loads(answer.reports[0])

    def turns(self, task_id: int) -> tuple[list[str], list[int], int]:
        """Who may close the task's current round, in turn (lowercase), until which block each, and the
        round's report deadline: as inspect `producer/<id>` answers."""
        answer = self.inspect(f"producer/{task_id}")
        return ([t["producer"].lower() for t in answer["turns"]], [t["until_block"] for t in answer["turns"]],
                answer["report_deadline"])

    def mine_to(self, block: int) -> None:
        """Mine until L1's latest block is `block`: the next input lands after it."""
        behind = block - self.l1.w3.eth.block_number
        if behind > 0:
            self.l1.mine(behind)

    def execute(self, voucher: RollupOutput) -> int:
        """Close the voucher's epoch, wait for its claim on L1, execute it from a bystander's key; the wei
        its destination received."""
        self.l1.mine(EPOCH_LENGTH + 1)
        proven = wait_until(lambda: self._proven(voucher.index), 60, f"the claim of voucher {voucher.index}")
        before = self.l1.balance(voucher.destination)
        self.l1.execute_output(EXECUTOR, proven.raw, proven.index, proven.siblings)
        return self.l1.balance(voucher.destination) - before

    def _proven(self, index: int) -> RollupOutput | None:
        out = self.node.output(index)
        return out if out.siblings and out.epoch_index in self.node.accepted_epochs() else None

    def assert_serving_and_audited(self) -> None:
        """The node still answers; the audit re-derives and proves the history so far (it has rejected
        inputs); the Application's L1 balance is what the rules hold (refunds executed or still owed)."""
        assert chain_id_of(self.url) == hex(self.l1.w3.eth.chain_id)
        result = audit(self.node, self.l1)
        assert result.accepted + result.rejected == result.inputs and result.rejected > 0
        assert result.outputs == result.proven > 0
        assert self.l1.balance(self.l1.deployment.application) == ether_the_rules_hold(self.l1)

    def voucher_of(self, index: int) -> RollupOutput:
        (voucher,) = [o for o in self.node.outputs(input_index=index) if o.type == "Voucher"]
        return voucher


@pytest.fixture(scope="module")
def rollup(tmp_path_factory) -> Iterator[Rollup]:
    folder = tmp_path_factory.mktemp("liveness")
    with running_anvil(block_time=None) as chain:  # a block per transaction; deadlines passed by mining
        deployment = fresh_deployment(chain, epoch_length=EPOCH_LENGTH)
        with node_process(deployment, folder, backend=DAPP_BACKEND) as (url, process):
            yield Rollup(L1(chain, deployment), NodeClient.at(url, deployment.application), url)
            assert process.poll() is None, "the node died"


def task(validators: tuple[str, ...], rounds: int = 2, **terms) -> CreateTask:
    """Budget 4 mETH a round (2 mETH per group), 1 mETH per Positive, validator reward 1 mETH."""
    return CreateTask(2500, rounds, len(validators), 4 * MILLI, 1 * MILLI, 1 * MILLI,
                      validators=validators, trainers_per_group=3, **{**TERMS, **terms})


def report(task_id: int, round_: int, trainers: list[str]) -> ValidatorReport:
    """Every trainer Positive (8,800 bps against the validator's 9,000)."""
    return ValidatorReport(task_id, round_, 9000, bytes([round_]) * 32,
                           tuple(pack_contribution(t, 8800, 600) for t in trainers))


def close(task_id: int, round_: int, groups: int) -> RoundClose:
    return RoundClose(task_id, round_, bytes([0xC0 + round_]) * 32, 9100, tuple(9000 + g for g in range(groups)))


def of(notices: list[Message], kind: type) -> list:
    return [n for n in notices if isinstance(n, kind)]


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
    required = 2 * (4 + 1) * MILLI
    rollup.deposit(publisher, t, required)
    rollup.accepted(honest, Register(t, ROLE_VALIDATOR, 0))
    for key, group in zip(trainers, (0, 0, 1)):
        rollup.accepted(key, Register(t, ROLE_TRAINER, group))

    rollup.mine_to(created.registration_deadline)  # group 1's seat stays empty: round 1 starts after the window
    paid = of(rollup.accepted(honest, report(t, 1, addr[2:4])), RewardPaid)
    assert [(p.trainer, p.amount) for p in paid] == [(addr[2], MILLI), (addr[3], MILLI)]
    order, _, report_deadline = rollup.turns(t)
    assert order == [addr[0], addr[1]]  # the publisher, then the seated validator
    assert "lacks the report of group(s) 1" in rollup.rejected(publisher, close(t, 1, 2))  # before the deadline

    rollup.mine_to(report_deadline)
    notices = rollup.accepted(publisher, close(t, 1, 2))
    assert of(notices, GroupSkipped) == [GroupSkipped(t, 1, 1, silent, report_deadline)]
    assert of(notices, ValidatorRewarded)[0].validator == addr[1]
    (elected,) = of(notices, ProducerElected)
    assert elected.producer == addr[1]  # the only validator that reported

    paid += of(rollup.accepted(honest, report(t, 2, addr[2:4])), RewardPaid)  # the task goes on
    rollup.mine_to(rollup.turns(t)[2])
    notices = rollup.accepted(honest, close(t, 2, 2))
    assert [g.group for g in of(notices, GroupSkipped)] == [1]
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
    (created,) = rollup.accepted(publisher, task((addr[v0], addr[v1])))
    t = created.task_id
    rollup.deposit(publisher, t, 2 * (4 + 1) * MILLI)
    for key, role, group in ((v0, ROLE_VALIDATOR, 0), (v1, ROLE_VALIDATOR, 1), (t0, ROLE_TRAINER, 0),
                             (t1, ROLE_TRAINER, 1)):
        rollup.accepted(key, Register(t, role, group))
    rollup.accepted(v0, report(t, 1, [addr[t0]]))
    rollup.accepted(v1, report(t, 1, [addr[t1]]))
    (elected,) = of(rollup.accepted(publisher, close(t, 1, 2)), ProducerElected)  # every report in: closes now

    order, until, _ = rollup.turns(t)
    assert order[0] == elected.producer and sorted(order[:2]) == sorted([addr[v0], addr[v1]])
    assert order[2] == addr[publisher]
    withholder, successor = (v0, v1) if order[0] == addr[v0] else (v1, v0)
    paid = of(rollup.accepted(v0, report(t, 2, [addr[t0]])), RewardPaid)
    paid += of(rollup.accepted(v1, report(t, 2, [addr[t1]])), RewardPaid)
    assert [p.trainer for p in paid] == [addr[t0], addr[t1]]

    # The elected producer withholds its RoundClose; during its turn the others are refused.
    for key in (successor, publisher):
        assert rollup.rejected(key, close(t, 2, 2)).startswith(f"only {addr[withholder]} may close round 2")
    rollup.mine_to(until[0])
    notices = rollup.accepted(successor, close(t, 2, 2))
    assert of(notices, ProducerMissed) == [ProducerMissed(t, 2, addr[withholder], until[0],
                                                          addr[successor])]
    assert len(of(notices, TaskFinished)) == 1
    assert rollup.inspect(f"producer/{t}")["finished"]
    rounds = rollup.inspect(f"rounds/{t}")["rounds"]
    assert rounds[1]["producer"].lower() == addr[successor]
    assert [a.lower() for a in rounds[1]["missed_producers"]] == [addr[withholder]]
    assert "is finished" in rollup.rejected(withholder, close(t, 2, 2))  # too late now
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
    assert "not funded" in rollup.rejected(named, report(t, 1, []))
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
