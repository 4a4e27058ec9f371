"""The FL roles follow the rollup's schedule: a silent validator's group is skipped after the report deadline,
a silent elected producer's turn passes to the next in the election order after its close deadline, and the
publisher withdraws its refund at the end.

The L1 and the node are stand-ins here (tests/rollup_fakes.py) that run the rollup's own rules; the same
recorder runs against anvil and the node in tests/test_e2e_demo.py."""
from __future__ import annotations

import pytest

from common.errors import ConfigError
from console_fixtures import record_history
from eth_utils import keccak

from dapp.schema import (CancelTask, GlobalModel, GroupSkipped, ModelScored, ProducerMissed, TaskFinished,
                         ValidatorPenalized, Withdrawal)
from dapp.state import Voucher
from flower_sim.rollup_roles import RollupRejected
from flower_sim.rollup_schedule import Schedule, SilentValidator, Turn, plan_close
from rollup_fakes import CFG, TERMS, FakeRollup, recorder_on
from rollups_client.l1 import L1

A, B, P = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20  # two validators and the publisher


def schedule(reports_in: set[int], deadline: int = 100, contest: int = 104, contest_blocks: int = 4,
             close_blocks: int = 10) -> Schedule:
    """Round 2: reports until `deadline`, reveals and contests until `contest`, the turns counted from the
    response deadline `contest + contest_blocks`."""
    turns = tuple(Turn(a, contest + contest_blocks + (i + 1) * close_blocks) for i, a in enumerate((A, B, P)))
    return Schedule(round=2, report_deadline=deadline, contest_deadline=contest, turns=turns, groups=2,
                    reports_in=frozenset(reports_in))


# ------------------------------------------------------------------------------ the plan, pure
def test_the_elected_producer_closes_once_the_contest_window_has_passed():
    plan = plan_close(schedule({0, 1}), now=50, silent=frozenset(), held=frozenset({A, B, P}))
    assert (plan.producer, plan.turn, plan.first_block, plan.passed_over) == (A, 0, 105, ())


def test_with_a_silent_group_the_contest_window_follows_the_report_deadline():
    plan = plan_close(schedule({0}, contest=102), now=50, silent=frozenset(), held=frozenset({A, B, P}))
    assert (plan.producer, plan.first_block) == (A, 103)


def test_a_silent_elected_producer_hands_the_turn_on_after_its_close_deadline():
    plan = plan_close(schedule({1}), now=50, silent=frozenset({A}), held=frozenset({A, B, P}))
    assert (plan.producer, plan.turn, plan.first_block) == (B, 1, 119)
    assert [t.producer for t in plan.passed_over] == [A]
    # Even when every group reported, the next producer may close only after the elected one's deadline.
    assert plan_close(schedule({0, 1}), now=50, silent=frozenset({A}), held=frozenset({A, B, P})).first_block == 119


def test_a_turn_whose_window_has_passed_is_lost_and_no_usable_producer_means_no_plan():
    late = plan_close(schedule({0, 1}), now=125, silent=frozenset(), held=frozenset({A, B, P}))
    assert (late.producer, late.first_block) == (B, 119)  # A's window ended at 118; B's turn has begun
    # the log says why A was passed over: its turn is over, not that the run lacks its key (a 1,000-trainer run
    # on a loaded machine once said "is not a role of this run" of a validator whose key it held)
    assert late.passed_why == ("let its turn pass: it ended at block 118, and L1 is at block 125",)
    keyless = plan_close(schedule({0, 1}), now=50, silent=frozenset({B}), held=frozenset({B, P}))
    assert (keyless.producer, keyless.passed_why) == (P, ("is not a role of this run: waiting for its close "
                                                          "deadline at block 118", "is silent: waiting for its "
                                                          "close deadline at block 128"))
    assert plan_close(schedule({0}), now=50, silent=frozenset({A, B}), held=frozenset({A, B})) is None
    assert plan_close(schedule({0}), now=50, silent=frozenset(), held=frozenset({P})).producer == P


def test_the_schedule_is_read_from_the_rollups_inspect_answers():
    producer = {"finished": False, "round": 3, "report_deadline": 40, "contest_deadline": 43,
                "turns": [{"producer": A.upper().replace("0X", "0x"), "until_block": 51}]}
    s = Schedule.from_inspect(producer, {"groups": 2, "reports_in": [1]})
    assert (s.round, s.report_deadline, s.contest_deadline, s.turns, s.missing) == (3, 40, 43, (Turn(A, 51),), (0,))
    with pytest.raises(ValueError, match="over"):
        Schedule.from_inspect({"finished": True, "task_id": 1}, {})


@pytest.mark.parametrize("silent, validators, rounds, message", [
    (SilentValidator(2), 2, 3, "validator id in 0..1"),
    (SilentValidator(0), 1, 3, "at least 2 validators"),
    (SilentValidator(0, from_round=4), 2, 3, "round in 1..3"),
    (SilentValidator(0, from_round=0), 2, 3, "round in 1..3"),
    (SilentValidator(None, from_round=1), 2, 3, "publisher closes round 1"),
])
def test_a_silence_the_run_cannot_stage_is_a_one_line_error(silent, validators, rounds, message):
    with pytest.raises(ConfigError, match=message):
        silent.validate(validators, rounds)


# ------------------------------------------------------------------------ the recorder, on the rules
def test_without_a_silent_validator_every_round_closes_after_its_contest_window_with_no_one_late(monkeypatch,
                                                                                                 tmp_path):
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, None)
    record_history(recorder, CFG, tmp_path)
    task = rollup.chain.state.tasks[1]
    assert task.finished and all(r.missed_producers == () and None not in r.reports for r in task.history)
    assert not rollup.all(GroupSkipped) and not rollup.all(ProducerMissed) and not rollup.all(ValidatorPenalized)
    assert "REJECTED" not in rollup.statuses.values()
    # Both validators revealed and the rollup scored their models; its global model is the manager's, each round.
    assert [(n.round, n.group) for n in rollup.all(ModelScored)] == [(r, g) for r in (1, 2, 3) for g in (0, 1)]
    globals_ = rollup.all(GlobalModel)
    assert [g.digest for g in globals_] == [keccak((tmp_path / f"round-{r:03d}.frq").read_bytes()) for r in (1, 2, 3)]
    assert recorder.round_figures(1)["global_accuracy_bps"] == globals_[0].accuracy_bps
    assert recorder.round_figures(1)["models_bps"] == {str(n.group): n.accuracy_bps for n in rollup.all(ModelScored)
                                                       if n.round == 1}
    assert any("validator 1 reveals its model of round 1 (7,892 bytes, 1 input)" in s for s in said), said
    assert any("the rollup's global model of round 3 is the manager's, bit for bit" in s for s in said), said


def test_a_validator_silent_from_round_2_is_skipped_and_its_missed_turn_passes_to_the_next(monkeypatch, tmp_path):
    # record_history makes validator 0's model the closest to the global one: the rollup elects it for round 2.
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, SilentValidator(None, from_round=2))
    record_history(recorder, CFG, tmp_path)
    task = rollup.chain.state.tasks[1]
    v0, v1 = (L1.address(k) for k in recorder.validator_keys)
    assert recorder.silent_id == 0 and task.finished
    assert "REJECTED" not in rollup.statuses.values()  # the recorder never sent what the rules refuse
    # Round 1 as usual; rounds 2 and 3 without group 0, nothing paid to it.
    assert [tuple(g for g, r in enumerate(h.reports) if r is None) for h in task.history] == [(), (0,), (0,)]
    assert [(n.round, n.group, n.validator) for n in rollup.all(GroupSkipped)] == [(2, 0, v0), (3, 0, v0)]
    # Round 2: validator 0 was elected and kept silent; validator 1 closed after its close deadline.
    (missed,) = rollup.all(ProducerMissed)
    assert (missed.round, missed.producer, missed.next_producer) == (2, v0, v1)
    round2 = task.history[1]
    assert round2.producer == v1 and round2.missed_producers == (v0,) and round2.block > missed.close_deadline
    # Round 3: validator 1 reported round 2, so the rollup elected it; it closed after the report deadline.
    assert task.history[2].producer == v1 and task.history[2].missed_producers == ()
    assert task.history[2].block > rollup.all(GroupSkipped)[1].report_deadline
    # In words a researcher understands.
    assert any(f"validator 0 is silent: group 0 skipped in round 2 after the report deadline at block "
               f"{rollup.all(GroupSkipped)[0].report_deadline}" in s for s in said), said
    assert f"validator 0 missed its close deadline at block {missed.close_deadline}: validator 1 closes round 2" \
        in "\n".join(said)


def test_a_named_silent_validator_that_is_not_elected_only_loses_its_group(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, SilentValidator(1, from_round=3))
    record_history(recorder, CFG, tmp_path)
    task = rollup.chain.state.tasks[1]
    assert [(n.round, n.group) for n in rollup.all(GroupSkipped)] == [(3, 1)]
    assert not rollup.all(ProducerMissed) and task.finished
    assert any("withholds its report of round 3" in s for s in said)


def test_the_publisher_withdraws_the_refund_of_the_skipped_groups_as_a_voucher(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, SilentValidator(0, from_round=2))
    record_history(recorder, CFG, tmp_path)
    (finished,) = rollup.all(TaskFinished)
    publisher = L1.address(recorder.manager_key)
    assert finished.refund > 0
    assert recorder.withdraw_refund() == finished.refund
    last = max(rollup.outputs)
    (voucher,) = [o for o in rollup.outputs[last] if isinstance(o, Voucher)]
    assert (voucher.destination, voucher.value) == (publisher, finished.refund)
    assert rollup.of_input(last, Withdrawal)[0].amount == finished.refund
    assert recorder.withdraw_refund() == 0  # nothing left: no input sent
    assert max(rollup.outputs) == last


def test_when_no_producer_the_run_may_use_is_left_the_run_stops_saying_so(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, SilentValidator(1, from_round=1))
    recorder.open_task(1)
    recorder.key_of.pop(L1.address(recorder.manager_key))  # without the publisher's and validator 0's keys
    recorder.key_of.pop(L1.address(recorder.validator_keys[0]))
    with pytest.raises(RollupRejected, match="no producer this run may use"):
        recorder._plan(1, frozenset({L1.address(recorder.validator_keys[1])}))


def test_waiting_for_a_block_on_a_chain_that_mines_none_stops_saying_so(monkeypatch):
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, None)
    rollup.block_number = lambda: 7  # a dev chain without interval mining
    with pytest.raises(RollupRejected, match="L1 mined no block for 0 s at block 7 while the run waits for block 9"):
        recorder.wait_for_block(9, stall_s=0.05)
    assert recorder.wait_for_block(7) == 7


def test_a_task_that_ended_without_the_run_stops_it_saying_so(monkeypatch):
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, SilentValidator(1, from_round=1))
    recorder.open_task(1)
    rollup.chain.mine(TERMS.report_blocks + 1)
    rollup.send_input(recorder.manager_key, CancelTask(1).encode())  # the publisher cancelled meanwhile
    with pytest.raises(RollupRejected, match="task 1 is over"):
        recorder._plan(1, frozenset())
