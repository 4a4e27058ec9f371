"""Each validator reveals its model as soon as the last group has reported, before the reports are confirmed (a
lower priority fee, so that in a shared block the reveals follow the reports); a reveal that still reached L1
before a report is turned away by the rollup (reveals open once every group reported) and is sent again. After the close, the rollup's global model must be the
manager's, bit for bit, or the run stops.

The chain is replaced by fakes here (the ordering cannot be forced on anvil); the whole recorder runs against real
anvil and the node in tests/test_console_audit.py and tests/test_e2e_demo.py."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from console_fixtures import logreg_model, record_history
from dapp.qmodel import digest
from dapp.schema import ModelChunk, ModelScored
from flower_sim.records import RoundRecord
from flower_sim.rollup_roles import ChainTimings, RollupRecorder, RollupRejected
from rollup_fakes import CFG, FakeRollup, recorder_on

MODELS = (logreg_model(1, 0), logreg_model(1, 1))


class FakeL1Recorder(RollupRecorder):
    """A recorder whose L1 numbers inputs in the order given by `landing` (tx hash -> input index)."""

    def __init__(self, landing: dict[str, int]) -> None:  # no chain: only what _reveal uses
        self.landing, self.sent, self.confirmed = landing, [], []
        self.l1 = SimpleNamespace(priority_fee=1_000_000_000)
        self.validator_keys, self.task_id = ["key-0", "key-1"], 7
        self.timings, self.say = ChainTimings(), lambda _: None
        self.silent, self.silent_id, self.withheld = None, None, set()
        self.pending = {1: [("validator 0's report of round 1", "report-0"), ("validator 1's report of round 1",
                                                                              "report-1")]}
        self.committed = {1: {v: (digest(m), m) for v, m in enumerate(MODELS)}}
        self.reveals = {1: self._send_reveals(1)}  # as the last report does

    def _send(self, key, message=None, payload=None, tip=None):
        self.sent.append((key, message, tip))
        return f"chunk-{len(self.sent)}"

    def _input_index(self, tx_hash) -> int:
        return self.landing[tx_hash]

    def _confirm(self, what, tx_hash, timeout=120.0) -> int:
        self.confirmed.append(tx_hash)
        return self.landing[tx_hash]

    def _notices(self, input_index):
        group = 0 if input_index in (12, 14) else 1
        return [ModelScored(7, 1, group, digest(MODELS[group]), 0, 9_000 + group)]


def test_each_validator_reveals_at_once_from_its_own_key_with_a_lower_tip_confirmed_after_the_reports():
    recorder = FakeL1Recorder({"report-0": 10, "report-1": 11, "chunk-1": 12, "chunk-2": 13})
    assert recorder._reveal(1) == {"0": 9_000, "1": 9_001}
    (k0, c0, tip0), (k1, c1, tip1) = recorder.sent
    assert (k0, k1) == ("key-0", "key-1") and tip0 == tip1 == 500_000_000
    assert isinstance(c0, ModelChunk) and (c0.digest, c0.index, c0.count, c0.data) == (digest(MODELS[0]), 0, 1,
                                                                                      MODELS[0])
    assert recorder.confirmed == ["report-0", "report-1", "chunk-1", "chunk-2"]


def test_a_reveal_that_reached_l1_before_a_report_is_sent_again_and_the_resend_is_what_counts():
    recorder = FakeL1Recorder({"report-0": 10, "chunk-1": 11, "report-1": 12, "chunk-2": 13, "chunk-3": 14})
    recorder._reveal(1)
    assert [(k, m) for k, m, _ in recorder.sent] == [("key-0", recorder.sent[0][1]), ("key-1", recorder.sent[1][1]),
                                                    ("key-0", recorder.sent[0][1])]  # validator 0's chunk, again
    assert recorder.sent[2][2] is None                                              # at the normal fee
    assert recorder.confirmed == ["report-0", "report-1", "chunk-3", "chunk-2"]     # the early one is not awaited


def test_a_global_model_of_the_rollup_that_differs_from_the_managers_stops_the_run(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, None)
    real = recorder.on_round_closed

    def with_another_global(record: RoundRecord) -> None:  # a manager whose mean is not the rollup's
        real(replace(record, global_digest=b"\x01" * 32))

    recorder.on_round_closed = with_another_global
    with pytest.raises(RollupRejected, match=r"the rollup's global model of round 1 \(groups 0, 1\) has digest "
                                             r"[0-9a-f]{16}…, the manager's 0101010101010101…"):
        record_history(recorder, CFG, tmp_path)
