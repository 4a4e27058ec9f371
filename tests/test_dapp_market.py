"""Issue 15, part 2 on the state machine: a market of tasks. Two publishers' tasks run at once on one rollup, each
paying from its own escrow; the broker set at deployment takes its fee (basis points of a task's budget, reserved
in the required escrow) by voucher once a task that started ends, and nothing from a task that never started."""
from __future__ import annotations

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, STRANGER, Chain, addr, close_when_due, post_blob, post_test_set, report,
                           task_message, trainer, validator, validator_model)

from dapp.inspect_routes import InspectError, answer
from dapp.market import BROKER_ENV, BROKER_FEE_ENV, DEFAULT_FEE_BPS, Market, market_from_env, reputation, top
from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_UNFUNDED, ROLE_TRAINER, ROLE_VALIDATOR, BrokerFeePaid,
                         CancelTask, Register, RewardPaid, TaskCancelled, TaskCreated, TaskFinished,
                         ValidatorRewarded, encode_deposit_data)
from dapp.state import State, Voucher
from frontend_console.views import contest_room, open_tasks_table
from rich.console import Console
from rollups_node.config import DEFAULT_BROKER_FEE_BPS

BROKER = addr(0xB40CE4)
RIVAL = addr(0xB0B)  # the second publisher
MARKET = Market.of(BROKER, DEFAULT_FEE_BPS)


def market_chain(market: Market = MARKET) -> Chain:
    """A rollup deployed with `market`; every input checked to neither create nor lose a wei."""
    return Chain(state=State(market=market), audit=True)


def publish(chain: Chain, publisher: str, task_id: int, rounds: int = 1, budget: int = 10 * MILLI,
            validator_reward: int = 1 * MILLI, fund: bool = True, seats: bool = True, **terms) -> None:
    """`publisher` creates task `task_id` (2 groups, `validator(g)` named, 3 trainers each: the same addresses
    may join several tasks), posts the test set, deposits the required escrow (budget and fee), staffs it."""
    chain.send(publisher, task_message(rounds=rounds, budget=budget, validator_reward=validator_reward, **terms))
    post_test_set(chain, task_id, sender=publisher)
    if fund:
        chain.deposit(publisher, chain.task(task_id).required_escrow, encode_deposit_data(task_id))
    for g in range(2):
        if seats:
            chain.send(validator(g), Register(task_id, ROLE_VALIDATOR, g))
        for i in range(3):
            chain.send(trainer(g, i), Register(task_id, ROLE_TRAINER, g))


def report_and_reveal(chain: Chain, task_id: int, round_: int, bps: dict[int, int]) -> None:
    """Both validators report their trainers at `bps[g]` (against their own 90 %) and reveal their models."""
    for g in range(2):
        chain.send(validator(g), report(task_id, round_, 9000, {trainer(g, i): bps[g] for i in range(3)},
                                        model=validator_model(g, round_)))
    for g in range(2):
        post_blob(chain, validator(g), task_id, round_, validator_model(g, round_))


def vouchers(chain: Chain, destination: str) -> list[int]:
    return [o.value for o in chain.outputs if isinstance(o, Voucher) and o.destination == destination]


def paid_in(chain: Chain, task_id: int) -> int:
    return sum(n.amount for n in chain.of_type(RewardPaid) if n.task_id == task_id)


def test_two_publishers_tasks_run_at_once_each_pays_from_its_own_escrow_and_the_broker_is_paid_by_voucher():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, per_positive=MILLI)
    publish(chain, RIVAL, 2, budget=20 * MILLI, per_positive=MILLI)  # the same trainers and validators join both
    created = chain.of_type(TaskCreated)
    assert [c.publisher for c in created] == [PUBLISHER, RIVAL]
    budgets = {1: 11 * MILLI, 2: 21 * MILLI}
    assert [c.required_escrow for c in created] == [b + b * 200 // 10_000 for b in budgets.values()]
    # interleaved: both rounds are open at once, task 2's trainers in group 1 are Negative
    report_and_reveal(chain, 1, 1, {0: 8800, 1: 8800})
    report_and_reveal(chain, 2, 1, {0: 8800, 1: 1000})
    close_when_due(chain, 2, 1, RIVAL)
    close_when_due(chain, 1, 1, PUBLISHER)

    assert paid_in(chain, 1) == 6 * MILLI and paid_in(chain, 2) == 3 * MILLI
    assert {n.trainer for n in chain.of_type(RewardPaid) if n.task_id == 2} == {trainer(0, i) for i in range(3)}
    finished = {n.task_id: n for n in chain.of_type(TaskFinished)}
    fees = {n.task_id: n for n in chain.of_type(BrokerFeePaid)}
    for task_id, publisher in ((1, PUBLISHER), (2, RIVAL)):
        fee = budgets[task_id] * 200 // 10_000
        assert fees[task_id] == BrokerFeePaid(task_id, BROKER, 200, fee)
        spent = paid_in(chain, task_id) + sum(n.amount for n in chain.of_type(ValidatorRewarded)
                                              if n.task_id == task_id)
        assert finished[task_id].refund == budgets[task_id] + fee - spent - fee
        assert finished[task_id].publisher == publisher
    assert sorted(vouchers(chain, BROKER)) == sorted(b * 200 // 10_000 for b in budgets.values())
    assert chain.state.balance(PUBLISHER) == finished[1].refund and chain.state.balance(RIVAL) == finished[2].refund


def test_a_task_funded_with_its_budget_but_not_the_fee_does_not_start():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, fund=False)
    chain.deposit(PUBLISHER, chain.task().budget, encode_deposit_data(1))
    assert not chain.task().funded
    why = chain.reject(validator(0), report(1, 1, 9000, {trainer(0, 0): 8800}, model=validator_model(0, 1)))
    assert f"task 1 is not funded: {11 * MILLI} of {11 * MILLI + 11 * MILLI // 50} wei" in why


def test_a_task_cancelled_before_it_started_owes_no_fee_and_is_refunded_in_full():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, seats=False)  # funded, but no named validator ever registers
    chain.mine_to(chain.task().registration_deadline + 1)
    result = chain.send(PUBLISHER, CancelTask(1))
    (cancelled,) = chain.of_type(TaskCancelled)
    assert cancelled.refund == chain.deposited and vouchers(chain, PUBLISHER) == [chain.deposited]
    assert not chain.of_type(BrokerFeePaid) and not vouchers(chain, BROKER)
    assert "to the broker" not in result.summary


def test_a_publisher_who_abandons_a_started_task_pays_the_fee_and_gets_the_rest_back():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, rounds=2)
    deadline = chain.task().report_deadline()
    assert chain.reject(PUBLISHER, CancelTask(1)).startswith("task 1 can still go on")
    chain.mine_to(deadline + 1)  # nobody reported: the task cannot go on
    chain.send(PUBLISHER, CancelTask(1))
    fee = 22 * MILLI * 200 // 10_000
    (cancelled,) = chain.of_type(TaskCancelled)
    assert cancelled.reason == CANCEL_GROUPS_SILENT and cancelled.refund == 22 * MILLI
    assert vouchers(chain, BROKER) == [fee] and vouchers(chain, PUBLISHER) == [22 * MILLI]
    assert "task 1 was cancelled" in chain.reject(PUBLISHER, CancelTask(1))  # the fee is never taken twice


def test_an_unfunded_task_pays_no_fee_and_its_partial_deposit_comes_back():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, fund=False)
    chain.deposit(PUBLISHER, 3 * MILLI, encode_deposit_data(1))
    chain.mine_to(chain.task().registration_deadline + 1)
    chain.send(PUBLISHER, CancelTask(1))
    assert chain.of_type(TaskCancelled)[0].reason == CANCEL_UNFUNDED
    assert vouchers(chain, PUBLISHER) == [3 * MILLI] and not vouchers(chain, BROKER)


def test_nobody_but_the_deployment_names_the_broker_and_the_fee_rounds_down_leaving_the_dust_to_the_publisher():
    chain = market_chain(Market.of(BROKER, 333))
    budget = 10 * MILLI + 7  # 333 bps of an odd budget: the fee rounds down
    publish(chain, STRANGER, 1, budget=budget, validator_reward=0)
    report_and_reveal(chain, 1, 1, {0: 8800, 1: 8800})
    close_when_due(chain, 1, 1, STRANGER)
    fee = budget * 333 // 10_000
    assert fee * 10_000 < budget * 333 < (fee + 1) * 10_000
    assert vouchers(chain, BROKER) == [fee]  # the publisher sent every input: none could name another payee
    (finished,) = chain.of_type(TaskFinished)
    assert finished.refund + paid_in(chain, 1) + fee == chain.deposited  # not a wei created or destroyed


@pytest.mark.parametrize("market", [Market(), Market.of(BROKER, 0)], ids=["no broker", "zero fee"])
def test_without_a_fee_a_task_needs_its_budget_alone_and_ends_with_no_broker_output(market):
    chain = market_chain(market)
    publish(chain, PUBLISHER, 1)
    assert chain.task().required_escrow == chain.task().budget == 11 * MILLI
    report_and_reveal(chain, 1, 1, {0: 8800, 1: 8800})
    close_when_due(chain, 1, 1, PUBLISHER)
    assert not chain.of_type(BrokerFeePaid) and not [o for o in chain.outputs if isinstance(o, Voucher)]


def test_the_backend_reads_its_market_from_the_environment_and_refuses_a_malformed_one():
    assert market_from_env({}) == Market()
    assert market_from_env({BROKER_ENV: BROKER.upper().replace("0X", "0x")}) == Market(BROKER, DEFAULT_FEE_BPS)
    assert market_from_env({BROKER_ENV: BROKER, BROKER_FEE_ENV: "50"}) == Market(BROKER, 50)
    for env, words in (({BROKER_FEE_ENV: "200"}, "needs FEDROLLUP_BROKER"),
                       ({BROKER_ENV: BROKER, BROKER_FEE_ENV: "2%"}, "whole number of basis points"),
                       ({BROKER_ENV: BROKER, BROKER_FEE_ENV: "10001"}, "not in 0..10000"),
                       ({BROKER_ENV: "0x" + "00" * 20}, "zero address"),
                       ({BROKER_ENV: "broker"}, "not an address")):
        with pytest.raises(ValueError, match=words):
            market_from_env(env)


def test_inspect_shows_the_market_and_lists_the_tasks_open_for_registration_with_their_terms():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, trainers_per_group=4)
    chain.send(RIVAL, task_message(rounds=2, groups=1, trainers_per_group=1, registration_blocks=500))
    chain.send(trainer(0, 0), Register(2, ROLE_TRAINER, 0))  # task 2's only seat is taken
    chain.send(RIVAL, task_message(rounds=2, groups=1, trainers_per_group=4, registration_blocks=500))
    assert answer(chain.state, "market") == {"broker": "0x0000000000000000000000000000000000B40ce4",
                                             "fee_bps": 200, "tasks": 3}
    block = chain.task(1).registration_deadline
    listed = answer(chain.state, f"tasks?open={block}")
    assert [t["task_id"] for t in listed["tasks"]] == [1, 3]
    one = listed["tasks"][0]
    assert (one["seats_left"], one["budget_wei"], one["broker_fee_wei"]) == ([1, 1], str(11 * MILLI),
                                                                              str(11 * MILLI // 50))
    assert (one["publisher"].lower(), one["payout"], listed["tasks"][1]["seats_left"]) == (PUBLISHER, "per-positive",
                                                                                          [4])
    assert [t["task_id"] for t in answer(chain.state, f"tasks?open={block + 1}")["tasks"]] == [3]
    assert [t["status"] for t in answer(chain.state, "tasks")["tasks"]] == ["running", "registering", "registering"]
    for path in ("tasks/1", "market/x", "tasks?open=soon", "tasks?closed=1"):
        with pytest.raises(InspectError):
            answer(chain.state, path)


def test_the_command_line_default_fee_is_the_markets():
    assert DEFAULT_BROKER_FEE_BPS == DEFAULT_FEE_BPS == 200


def test_the_console_lists_the_open_tasks_as_the_rollup_answers_them():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, trainers_per_group=4, trainer_approval=False)
    chain.send(RIVAL, task_message(rounds=2, groups=1, trainers_per_group=2, trainer_approval=True))
    block = chain.task(1).registration_deadline
    console = Console(width=250, record=True)
    console.print(open_tasks_table(answer(chain.state, f"tasks?open={block}")["tasks"], block, 30_000_000))
    text = console.export_text()
    assert f"tasks open for registration at L1 block {block}" in text
    rows = [line for line in text.splitlines() if line.startswith("│")]
    assert len(rows) == 2
    assert "running" in rows[0] and "0.00022 ETH" in rows[0] and "g0 1 · g1 1" in rows[0]
    assert "registering" in rows[1] and "g0 2 (by approval)" in rows[1] and "0.00044 ETH" in rows[1]  # 2 rounds
    assert rows[0].rstrip("│ ").endswith("all 8") and rows[1].rstrip("│ ").endswith("all 2")  # all can contest
    room = contest_room(answer(chain.state, f"tasks?open={block}")["tasks"][0], 400_000)  # a tiny L1 block
    assert room.endswith(" of 8 (too short)") and int(room.split()[0]) < 8


def test_a_trainers_reputation_spans_every_task_and_the_top_kappa_are_the_most_accepted():
    chain = market_chain()
    publish(chain, PUBLISHER, 1, per_positive=MILLI)
    publish(chain, RIVAL, 2, per_positive=MILLI)
    report_and_reveal(chain, 1, 1, {0: 8800, 1: 1000})  # group 1's trainers Negative in task 1
    report_and_reveal(chain, 2, 1, {0: 8800, 1: 8800})
    close_when_due(chain, 1, 1, PUBLISHER)
    close_when_due(chain, 2, 1, RIVAL)
    good, mixed, stranger = trainer(0, 0), trainer(1, 0), addr(0xFACE)
    assert answer(chain.state, f"reputation/{good}") == {
        "address": answer(chain.state, f"balance/{good}")["address"], "tasks": 2, "reported": 2, "accepted": 2,
        "earned_wei": str(2 * MILLI)}
    assert (answer(chain.state, f"reputation/{mixed}")["accepted"], answer(chain.state, f"reputation/{stranger}")
            ["tasks"]) == (1, 0)
    records = [reputation(chain.state.tasks, a) for a in (stranger, mixed, good, trainer(0, 1))]
    assert [r.address for r in top(records, 2)] == sorted([good, trainer(0, 1)])  # 2 accepted each, ties by address
    assert [r.address for r in top(records, 3)][-1] == mixed and top(records, 0) == []
    with pytest.raises(InspectError, match="not an address"):
        answer(chain.state, "reputation/me")


def test_a_node_hands_its_backend_the_deployments_market_and_overrides_a_stale_shell():
    assert Market().environment() == {BROKER_ENV: "", BROKER_FEE_ENV: "0"}  # no broker: said, not left unset
    assert market_from_env({**{BROKER_ENV: BROKER, BROKER_FEE_ENV: "50"}, **Market().environment()}) == Market()
    assert market_from_env(MARKET.environment()) == MARKET
