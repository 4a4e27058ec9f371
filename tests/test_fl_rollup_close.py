"""The RoundClose goes out before the reports are confirmed (one L1 block saved per round); when it still
reaches L1 before a report, the rollup turns it away and the producer sends it again.

The chain is replaced by a fake here (the ordering cannot be forced on anvil); the whole recorder runs
against real anvil and the node in tests/test_console_audit.py and tests/test_e2e_demo.py."""
from __future__ import annotations

from types import SimpleNamespace

from dapp.schema import ProducerElected, RoundClose
from flower_sim.records import RoundRecord
from flower_sim.rollup_roles import ChainTimings, RollupRecorder


class FakeL1Recorder(RollupRecorder):
    """A recorder whose L1 numbers inputs in the order given by `landing` (tx hash -> input index)."""

    def __init__(self, landing: dict[str, int]) -> None:  # no chain: only what on_round_closed uses
        self.landing, self.sent, self.confirmed = landing, [], []
        self.l1 = SimpleNamespace(priority_fee=1_000_000_000)
        self.key_of, self.producer, self.task_id = {"0xproducer": "key"}, "0xproducer", 7
        self.timings, self.say = ChainTimings(), lambda _: None
        self.silent, self.silent_id, self.withheld = None, None, set()
        self.pending = [("validator 0's report of round 1", "report-0"), ("validator 1's report of round 1",
                                                                          "report-1")]

    def _send(self, key, message=None, payload=None, tip=None):
        self.sent.append((message, tip))
        return f"close-{len(self.sent)}"

    def _input_index(self, tx_hash) -> int:
        return self.landing[tx_hash]

    def _confirm(self, what, tx_hash, timeout=120.0) -> int:
        self.confirmed.append(tx_hash)
        return self.landing[tx_hash]

    def who(self, address: str) -> str:
        return address

    def _notices(self, input_index):
        return [ProducerElected(task_id=7, round=2, producer="0xnext", stake=1, rule=0)]


RECORD = RoundRecord(round=1, global_accuracy=0.9, global_accuracy_bps=9000, global_loss=0.3,
                     global_model_file="round-001.npz", global_sha256=bytes(32), best_validator=0,
                     validators=(), contributions=())


def test_the_close_is_sent_at_once_with_a_lower_tip_and_confirmed_after_the_reports():
    recorder = FakeL1Recorder({"report-0": 10, "report-1": 11, "close-1": 12})
    recorder.on_round_closed(RECORD)
    (close, tip), = recorder.sent
    assert isinstance(close, RoundClose) and close.round == 1 and tip == 500_000_000
    assert recorder.confirmed == ["report-0", "report-1", "close-1"]
    assert recorder.producer == "0xnext"


def test_a_close_that_reached_l1_before_a_report_is_sent_again_and_the_resend_is_what_counts():
    recorder = FakeL1Recorder({"report-0": 10, "close-1": 11, "report-1": 12, "close-2": 13})
    recorder.on_round_closed(RECORD)
    assert [m for m, _ in recorder.sent] == [recorder.sent[0][0]] * 2     # the same RoundClose, twice
    assert recorder.sent[1][1] is None                                     # the resend at the normal fee
    assert recorder.confirmed == ["report-0", "report-1", "close-2"]       # the rejected first one is not awaited
    assert recorder.producer == "0xnext"
