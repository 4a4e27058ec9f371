"""Issue 12's "Done when", as a Hypothesis property over random schedules of honest and silent parties:
after every input no wei is created or lost, and from every reachable state the honest publisher (cancelling
as soon as the rules let it) and the honest parties (going on) end the task, finished or cancelled, by
`Task.latest_end_block()`, the publisher getting back exactly the unspent escrow and everyone else exactly
what the rules' notices paid them. Attackers' inputs in between are all refused."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, STRANGER, Chain, close, task_message, trainer, validator,
                           validator_model)
from hypothesis import event, given, settings
from hypothesis import strategies as st
from schedule_fixtures import Cast, Eager, refunded, run_task, unspent_escrow

from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_NAMES, CANCEL_NO_PRODUCER, ROLE_VALIDATOR, CancelTask,
                         ContributionClassified, DepositCredited, GroupSkipped, ModelChunk, ProducerMissed, Register,
                         RewardPaid, TaskCancelled, TaskFinished, ValidatorPenalized, ValidatorRewarded, Withdraw,
                         Withdrawal, encode_deposit_data)
from dapp.state import Voucher
from dapp.task import Task

ATTACKS = ("squat", "stranger closes", "out of turn close", "early cancel", "stranger cancels", "stranger deposit",
           "withdraw", "reveal out of its window")


class Drawn:
    """A schedule's choices drawn by Hypothesis as the task goes on."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def wait(self) -> int:
        return self.data.draw(st.sampled_from((0, 0, 0, 1, 4)), label="wait")

    def pick(self, moves: int) -> int:
        return self.data.draw(st.integers(0, moves - 1), label="pick")

    def bps(self) -> int:
        return self.data.draw(st.integers(0, 10_000), label="bps")

    def dead(self) -> frozenset[int]:
        return self.data.draw(st.frozensets(st.integers(0, 9), max_size=3), label="dead classes")


def attacker(data: st.DataObject):
    """Now and then an input the rules must refuse (or, for a deposit or withdrawal, keep to its sender)."""
    def attack(chain: Chain, task: Task) -> None:
        kind = data.draw(st.one_of(st.just(None), st.just(None), st.just(None), st.sampled_from(ATTACKS)))
        if kind is None:
            return
        event(f"attack: {kind}")
        round_, block = task.current_round, chain.block
        parties = [task.publisher] + list(task.seats)
        if kind == "squat":
            chain.reject(STRANGER, Register(task.task_id, ROLE_VALIDATOR, data.draw(st.integers(0, task.groups - 1))))
        elif kind == "stranger closes":
            chain.reject(STRANGER, close(task.task_id, round_))
        elif kind == "out of turn close":
            if task.started(block):
                order = task.producer_order()
                parties = [p for p in parties if p != order[min(task.turn_at(block), len(order) - 1)]]
            if parties:
                sender = data.draw(st.sampled_from(parties))
                chain.reject(sender, close(task.task_id, round_))
        elif kind == "early cancel":  # the driver cancels as soon as the task is stalled: here it is not
            chain.reject(task.publisher, CancelTask(task.task_id))
        elif kind == "stranger cancels":
            chain.reject(STRANGER, CancelTask(task.task_id))
        elif kind == "stranger deposit":
            escrow = task.escrow
            chain.deposit(STRANGER, data.draw(st.integers(1, 9)), encode_deposit_data(task.task_id))
            assert chain.state.tasks[task.task_id].escrow == escrow
        elif kind == "reveal out of its window":
            reveal_out_of_its_window(chain, task, block)
        else:
            who = data.draw(st.sampled_from(parties + [STRANGER, trainer(0, 0)]))
            if chain.state.balance(who):
                chain.send(who, Withdraw())
            else:
                chain.reject(who, Withdraw())
    return attack


def reveal_out_of_its_window(chain: Chain, task: Task, block: int) -> None:
    """A committed model sent before the reveals open or after the contest deadline (or again) is refused."""
    committed = [rep for rep in task.reports if rep is not None]
    if committed and not (task.reveal_open(block) and block <= task.contest_deadline()):
        chain.reject(committed[0].validator, ModelChunk(task.task_id, task.current_round, committed[0].model_digest,
                                                        0, 1, validator_model(0, task.current_round)))


FUNDINGS = ("exact", "exact in two", "over", "part", "none")


@st.composite
def tasks(draw, staffed: bool) -> tuple[dict, Cast]:
    """Random terms (short deadlines, small wei so budgets run out and leave dust) and a random cast; when
    ``staffed``, every named validator comes (maybe late: at the end of the window round 1 starts the latest)
    and the escrow is funded."""
    groups, rounds, cap = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    budget, per_positive, validator_reward = draw(st.integers(0, 30)), draw(st.integers(0, 12)), draw(st.integers(0, 5))
    seats = tuple(PUBLISHER if g == 0 and draw(st.booleans()) else validator(g) for g in range(groups))
    parties = tuple(dict.fromkeys((PUBLISHER,) + seats))
    terms = dict(rounds=rounds, groups=groups, budget=budget, per_positive=per_positive,
                 validator_reward=validator_reward, validators=seats, trainers_per_group=cap,
                 registration_blocks=draw(st.integers(4 if staffed else 1, 30)),
                 report_blocks=draw(st.integers(1, 10)), close_blocks=draw(st.integers(1, 4)),
                 contest_blocks=draw(st.integers(1, 4)))
    required = rounds * (budget + validator_reward)
    funding = draw(st.sampled_from(FUNDINGS[:3] if staffed else FUNDINGS))
    deposits = {"none": (), "part": (draw(st.integers(0, max(0, required - 1))),), "exact": (required,),
                "over": (required, draw(st.integers(1, 9)))}.get(funding, (required // 2, required - required // 2))
    event(f"funding: {funding}")
    cast = Cast(deposits=tuple(d for d in deposits if d),
                seated=frozenset(range(groups)) if staffed else frozenset(draw(st.sets(st.integers(0, groups - 1)))),
                trainers=tuple(tuple(trainer(g, i) for i in range(draw(st.integers(0, cap)))) for g in range(groups)),
                silent_reports=frozenset(draw(st.sets(st.tuples(st.integers(1, rounds), st.integers(0, groups - 1)),
                                                     max_size=2))),
                unrevealed=frozenset(draw(st.sets(st.tuples(st.integers(1, rounds), st.integers(0, groups - 1)),
                                                  max_size=2))),
                test_set=staffed or draw(st.sampled_from((True, True, True, False))),
                withholders=frozenset((r, p) for r in range(1, rounds + 1)
                                      for p in draw(st.sets(st.sampled_from(parties),
                                                            max_size=len(parties) - staffed))),
                seats_after=draw(st.integers(0, terms["registration_blocks"])), lazy=draw(st.booleans()),
                quit_after=draw(st.one_of(st.none(), st.integers(0, 40))))
    return terms, cast


def ledger_holds(chain: Chain) -> bool:
    """Every balance is exactly what the notices credited that address minus what it withdrew."""
    owed: Counter = Counter()
    for n in chain.notices:
        if isinstance(n, (RewardPaid, ValidatorRewarded)):
            owed[n.trainer if isinstance(n, RewardPaid) else n.validator] += n.amount
        elif isinstance(n, TaskFinished):
            owed[n.publisher] += n.refund
        elif isinstance(n, DepositCredited):
            owed[n.depositor] += n.amount
        elif isinstance(n, Withdrawal):
            owed[n.account] -= n.amount
    return {a: b for a, b in owed.items() if b} == dict(chain.state.balances)


def play(terms: dict, cast: Cast, choices, attack=None, randao: bytes = bytes(32)) -> Chain:
    """Create task 1 with ``terms``, play it to its end and check what the property promises."""
    chain = Chain(audit=True, prev_randao=randao)  # audit: wei conserved after every input
    chain.send(PUBLISHER, task_message(**terms))
    ended = run_task(chain, 1, cast, choices, attack)
    task = chain.state.tasks[1]
    assert task.over and ended <= task.latest_end_block()
    assert refunded(chain, 1) == unspent_escrow(chain, 1), "the publisher did not get the unspent escrow back"
    if task.cancelled is not None and refunded(chain, 1):
        assert Voucher(PUBLISHER, refunded(chain, 1)) in chain.outputs
    assert ledger_holds(chain), "someone was paid what no rule says"
    assert chain.wei_held() == chain.deposited
    return chain


def outcome(chain: Chain) -> None:
    """Hypothesis statistics (pytest --hypothesis-show-statistics): how the schedules ended."""
    t = chain.state.tasks[1]
    event("finished" if t.finished else f"cancelled: {CANCEL_NAMES[t.cancelled]}")
    event(f"rounds closed: {len(t.history)}")
    for kind in (GroupSkipped, ProducerMissed, ValidatorPenalized):
        if chain.of_type(kind):
            event(f"some {kind.__name__}")


@pytest.mark.parametrize("staffed", [False, True], ids=["from creation", "staffed and funded"])
@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=st.data())
def test_every_schedule_ends_by_the_bound_with_the_unspent_escrow_back_to_the_publisher(staffed, data):
    """From creation, deposits and seats may come late or never; staffed and funded, every named validator
    comes (maybe at the window's end) and the escrow is there, so the rounds' silences and failovers are
    explored."""
    terms, cast = data.draw(tasks(staffed))
    outcome(play(terms, cast, Drawn(data), attacker(data), data.draw(st.binary(min_size=32, max_size=32))))


def test_all_honest_the_task_finishes_and_only_the_budget_dust_returns():
    chain = play(dict(rounds=2, groups=2, trainers_per_group=3, registration_blocks=20),
                 Cast(deposits=(22 * MILLI,), seated=frozenset({0, 1}),
                      trainers=tuple(tuple(trainer(g, i) for i in range(3)) for g in range(2))), Eager())
    assert chain.state.tasks[1].finished
    # Per round and group, 3 Positives at the same score share 5 milli pro rata: the wei that do not divide stay.
    assert chain.of_type(TaskFinished)[0].refund == 2 * 2 * (5 * MILLI % 3)


def test_everyone_but_the_publisher_quits_after_the_reports_the_publisher_still_gets_its_escrow_back():
    chain = play(dict(rounds=2, groups=2, trainers_per_group=1, registration_blocks=10),
                 Cast(deposits=(22 * MILLI,), seated=frozenset({0, 1}), trainers=((trainer(0, 0),), (trainer(1, 0),)),
                      withholders=frozenset({(1, PUBLISHER), (2, PUBLISHER)}), quit_after=8), Eager())
    [cancelled] = chain.of_type(TaskCancelled)
    assert chain.of_type(ContributionClassified) and not chain.of_type(RewardPaid)  # reported, paid only at a close
    assert (cancelled.reason, cancelled.refund) == (CANCEL_NO_PRODUCER, 22 * MILLI)


def test_silent_groups_after_round_one_the_publisher_cancels():
    chain = play(dict(rounds=3, groups=2, trainers_per_group=1, registration_blocks=10),
                 Cast(deposits=(33 * MILLI,), seated=frozenset({0, 1}), trainers=((trainer(0, 0),), (trainer(1, 0),)),
                      silent_reports=frozenset({(2, 0), (2, 1)})), Eager())
    [cancelled] = chain.of_type(TaskCancelled)
    assert (cancelled.round, cancelled.reason) == (2, CANCEL_GROUPS_SILENT)


def test_the_slowest_schedule_the_rules_allow_ends_within_the_bound():
    """Seats taken at the window's last block, reports in the last blocks before their deadline (so the contest
    and response windows count from it), then every round closed by the last producer in its order at the last
    block of its turn: the latest a task can finish. Every producer missing the last round instead lets the
    publisher cancel one block later, still within `Task.latest_end_block` (which has one block to spare)."""
    terms = dict(rounds=2, groups=2, trainers_per_group=1, registration_blocks=20, report_blocks=10, close_blocks=5,
                 contest_blocks=5)
    window_end = 10 + 20  # CreateTask lands in block 10
    slowest = Cast(deposits=(22 * MILLI,), seated=frozenset({0, 1}), trainers=((), ()), seats_after=19,
                   withholders=frozenset({(1, PUBLISHER), (1, validator(0)), (2, validator(0)), (2, validator(1))}),
                   lazy=True)
    chain = play(terms, slowest, Eager())
    per_round = 10 + 2 * 5 + 3 * 5  # report window, contest and response windows, three turns to close
    assert chain.state.tasks[1].history[0].block == window_end + per_round  # v1, the third producer
    finished = chain.state.tasks[1].history[-1].block
    assert finished == window_end + 2 * per_round == chain.state.tasks[1].latest_end_block() - 2
    stuck = replace(slowest, withholders=slowest.withholders | {(2, PUBLISHER)})
    chain = play(terms, stuck, Eager())
    assert chain.of_type(TaskCancelled)[0].reason == CANCEL_NO_PRODUCER
    assert chain.block - 1 == finished + 1 == chain.state.tasks[1].latest_end_block() - 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.data())
def test_with_several_rounds_open_every_schedule_still_ends_by_the_bound(data):
    """openRounds 3 (issue 16): round r's deadlines count from the end of round r-1's reporting or round r-3's close,
    and its close turns from the later of its response deadline and round r-1's close; the bound grows a block per
    round, and the same schedules (each round reported once the one before closed) still end by it."""
    terms, cast = data.draw(tasks(True))
    outcome(play({**terms, "open_rounds": 3}, cast, Drawn(data), attacker(data),
                 data.draw(st.binary(min_size=32, max_size=32))))
