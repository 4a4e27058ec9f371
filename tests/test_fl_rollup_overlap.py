"""Issue 16 item 3 off chain: with `openRounds` K > 1 the recorder never stalls the round loop on the chain. Round
r+1's reports go out while round r's close is still with the worker (its RoundClose not even confirmed), and round
r+1's close too (its producer is known in advance); only round r+1-K's close is awaited; a validator that accepted
nothing commits digest 0 and reveals nothing, and the rollup's global model is still the manager's, bit for bit.

L1 and the node are tests/rollup_fakes.py (the rollup's own rules); the same recorder runs against anvil and the node
in tests/test_e2e_demo.py with the demo's default K."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from console_fixtures import logreg_model, record_history
from dapp.qmodel import digest
from dapp.schema import GlobalModel, ModelScored, ValidatorPenalized
from dapp.task import KEEP_DIGEST
from flower_sim.manager import global_model
from flower_sim.records import RoundRecord
from flower_sim.rollup_roles import RUN_OPEN_ROUNDS, RollupRejected
from rollup_fakes import CFG, TERMS, FakeRollup, RefusesClose, recorder_on

HOLD_LIMIT_S = 60  # a deadlock guard only


class HoldsFirstClose(FakeRollup):
    """Holds the confirmation of round 1's RoundClose until `count` inputs `(type, round)` were sent: a recorder that
    waited for round 1's close before sending them would deadlock here (until the guard)."""

    def __init__(self, sent: tuple[str, int], count: int) -> None:
        super().__init__()
        self.sent, self.count, self.released = sent, count, threading.Event()

    def _apply(self, sender: str, payload: bytes) -> int:
        index = super()._apply(sender, payload)
        if sum(e == ("sent", *self.sent) for e in self.events) == self.count:
            self.released.set()
        return index

    def confirmed(self, index: int) -> None:
        if self.kinds[index] == ("RoundClose", 1) and not self.released.wait(HOLD_LIMIT_S):
            raise AssertionError(f"the recorder waited for round 1's close before sending {self.sent}")
        super().confirmed(index)


def test_the_next_rounds_report_while_round_1_closes_and_the_rollup_closes_them_all_in_order(monkeypatch, tmp_path):
    assert TERMS.open_rounds == RUN_OPEN_ROUNDS > CFG.rounds  # the runs' default: every round of CFG may be open
    rollup = HoldsFirstClose(("ValidatorReport", CFG.rounds), CFG.validators)
    recorder, said = recorder_on(rollup, monkeypatch, None)
    record_history(recorder, CFG, tmp_path)
    assert rollup.chain.state.tasks[1].finished and "REJECTED" not in rollup.statuses.values()
    first_close = rollup.events.index(("confirmed", "RoundClose", 1))
    assert rollup.events.index(("sent", "ValidatorReport", CFG.rounds)) < first_close
    assert [n.round for n in rollup.all(GlobalModel)] == list(range(1, CFG.rounds + 1))
    assert rollup.chain.state.tasks[1].open_rounds == RUN_OPEN_ROUNDS
    assert [s.split()[1] for s in said if " recorded on the rollup" in s] == [str(r) for r in range(1, CFG.rounds + 1)]


def test_round_2s_close_goes_out_before_round_1s_is_confirmed_its_producer_known_in_advance(monkeypatch, tmp_path):
    rollup = HoldsFirstClose(("RoundClose", 2), 1)
    recorder, _ = recorder_on(rollup, monkeypatch, None)
    record_history(recorder, CFG, tmp_path)
    assert rollup.chain.state.tasks[1].finished and "REJECTED" not in rollup.statuses.values()
    assert rollup.events.index(("sent", "RoundClose", 2)) < rollup.events.index(("confirmed", "RoundClose", 1))
    assert [n.round for n in rollup.all(GlobalModel)] == list(range(1, CFG.rounds + 1))  # each checked, in order


def test_with_two_rounds_open_round_3_waits_for_round_1s_close_only(monkeypatch, tmp_path):
    rollup = FakeRollup()
    cfg = replace(CFG, rounds=4)
    recorder, _ = recorder_on(rollup, monkeypatch, None, terms=replace(TERMS, open_rounds=2), cfg=cfg)
    record_history(recorder, cfg, tmp_path)
    assert rollup.chain.state.tasks[1].finished and "REJECTED" not in rollup.statuses.values()
    events = rollup.events
    for r in (3, 4):
        assert events.index(("sent", "ValidatorReport", r)) > events.index(("confirmed", "RoundClose", r - 2))


def test_a_validator_that_accepted_nothing_commits_digest_0_and_the_globals_still_match(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, None)
    real_report, real_close = recorder.on_validator_report, recorder.on_round_closed
    globals_: dict[int, bytes] = {}  # round -> the manager's global model

    def keeps(report):  # validator 1 accepts nothing in round 2: its model is the round's starting model
        if report.round == 2 and report.validator_id == 1:
            report = replace(report, model=globals_[1], model_digest=digest(globals_[1]),
                             contributions=tuple(replace(c, accepted=False, accuracy_bps=1000)
                                                 for c in report.contributions))
        real_report(report)

    def closed(record: RoundRecord):  # the manager's mean of round 2 counts validator 1's kept model
        if record.round == 2:
            glob = global_model([logreg_model(2, 0), globals_[1]])
            record = replace(record, global_model=glob, global_digest=digest(glob))
        globals_[record.round] = record.global_model
        real_close(record)

    recorder.on_validator_report, recorder.on_round_closed = keeps, closed
    record_history(recorder, CFG, tmp_path)
    task = rollup.chain.state.tasks[1]
    assert task.finished and "REJECTED" not in rollup.statuses.values()
    assert task.history[1].reports[1].model_digest == KEEP_DIGEST
    assert not [n for n in rollup.all(ModelScored) if n.round == 2 and n.group == 1]  # nothing to reveal
    assert not [n for n in rollup.all(ValidatorPenalized) if n.round == 2]
    assert rollup.all(GlobalModel)[1].groups == (0, 1)  # counted, and the recorder checked: the manager's, bit for bit
    assert any("commits digest 0" in s for s in said)


def test_a_failed_close_still_stops_the_run_with_the_rollups_reason(monkeypatch, tmp_path):
    rollup = RefusesClose()
    recorder, _ = recorder_on(rollup, monkeypatch, None)
    with pytest.raises(RollupRejected, match=r"the RoundClose of round 1 .*: round 1 cannot be closed$"):
        record_history(recorder, CFG, tmp_path)
    # closes stay in order: round 2's may already be on its way (its producer is known), none after it
    later = [e for e in rollup.events if e[:2] == ("sent", "RoundClose") and e[2] > 1]
    assert later in ([], [("sent", "RoundClose", 2)])
