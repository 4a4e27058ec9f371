"""The chain never stalls a round: the recorder hands round r's close to its worker and returns, round r+1 trains
meanwhile, and nothing of round r+1 reaches the rollup before round r's close is confirmed; an error in round r's
close (a refused input, a global model that is not the manager's) stops the run with the rollup's reason before any
input of round r+1 is sent.

L1 and the node are tests/rollup_fakes.py, which logs every input sent and every confirmation in the order the
recorder's two threads did them; the same recorder runs against anvil and the node in tests/test_e2e_demo.py."""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from console_fixtures import record_history
from dapp.schema import GlobalModel
from flower_sim.records import RoundRecord
from flower_sim.rollup_roles import RollupRejected
from rollup_fakes import CFG, TERMS, FakeRollup, RefusesClose, recorder_on

HOLD_LIMIT_S = 60  # a deadlock guard only: a held close is released by the round loop's wait for it
ONE_OPEN = replace(TERMS, open_rounds=1)  # one round at a time: nothing of round r+1 before round r's close


class HeldCloses(FakeRollup):
    """Holds the confirmation of round r's RoundClose until the round loop waits for that close (an input of
    round r+1 sent meanwhile would be logged before the confirmation; a close awaited inside `on_round_closed`
    would never be released)."""

    def __init__(self) -> None:
        super().__init__()
        self.waited: dict[int, threading.Event] = {}

    def wait_for(self, round_: int) -> threading.Event:
        return self.waited.setdefault(round_, threading.Event())

    def confirmed(self, index: int) -> None:
        kind, round_ = self.kinds[index]
        if kind == "RoundClose" and not self.wait_for(round_).wait(HOLD_LIMIT_S):
            raise AssertionError(f"the round loop never waited for round {round_}'s close")
        super().confirmed(index)


def test_round_r_plus_1_sends_nothing_before_round_rs_close_is_confirmed_and_trains_meanwhile(monkeypatch,
                                                                                            tmp_path):
    rollup = HeldCloses()
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=ONE_OPEN)
    await_close, on_round_closed = recorder._await_close, recorder.on_round_closed

    def awaited(*args, **kwargs) -> None:  # the round loop waits for the close with the worker: release it
        for round_ in recorder._closes:
            rollup.wait_for(round_).set()
        await_close(*args, **kwargs)

    def handed_over(record: RoundRecord) -> None:
        on_round_closed(record)
        rollup.events.append(("returned", "on_round_closed", record.round))

    recorder._await_close, recorder.on_round_closed = awaited, handed_over
    record_history(recorder, CFG, tmp_path)
    assert rollup.chain.state.tasks[1].finished and "REJECTED" not in rollup.statuses.values()
    for r in range(1, CFG.rounds + 1):
        close = rollup.events.index(("confirmed", "RoundClose", r))
        assert rollup.events.index(("returned", "on_round_closed", r)) < close  # round r+1 trains meanwhile
        assert all(i > close for i, (what, _, round_) in enumerate(rollup.events) if what == "sent" and round_ == r + 1)
    # The log stays in order, each line naming its round.
    recorded = [s for s in said if " recorded on the rollup" in s]
    assert [s.split()[1] for s in recorded] == [str(r) for r in range(1, CFG.rounds + 1)], recorded
    assert [n.round for n in rollup.all(GlobalModel)] == list(range(1, CFG.rounds + 1))


def refused_close(monkeypatch):
    rollup = RefusesClose()
    return (rollup, *recorder_on(rollup, monkeypatch, None, terms=ONE_OPEN))


def another_global(monkeypatch):  # a manager whose mean of round 1 is not the rollup's
    rollup = FakeRollup()
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=ONE_OPEN)
    real = recorder.on_round_closed

    def with_another_global(record: RoundRecord) -> None:
        real(replace(record, global_digest=b"\x01" * 32) if record.round == 1 else record)

    recorder.on_round_closed = with_another_global
    return rollup, recorder, said


@pytest.mark.parametrize("stage, reason", [
    (refused_close, r"^the rollup rejected the RoundClose of round 1 by the publisher \(input \d+, REJECTED\): round 1 "
                    r"cannot be closed$"),
    (another_global, r"^the rollup's global model of round 1 \(groups 0, 1\) has digest [0-9a-f]{16}…, the manager's "
                     r"0101010101010101…: the FL plane and the rollup disagree on the next round's model$"),
])
def test_an_error_in_round_1s_close_stops_the_run_with_its_reason_before_any_input_of_round_2(monkeypatch, tmp_path,
                                                                                             stage, reason):
    rollup, recorder, said = stage(monkeypatch)
    with pytest.raises(RollupRejected, match=reason):
        record_history(recorder, CFG, tmp_path)
    assert not [e for e in rollup.events if e[0] == "sent" and e[2] == 2], rollup.events
    assert said[-1] == ("round 1's close failed: the run stops before round 2 sends anything to the rollup (round 2's "
                        "training, done meanwhile, is wasted)")
    assert recorder.round_figures(2) is None
