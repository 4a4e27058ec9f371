"""An input L1 accepted and then forgot (neither mined nor pending) is said as such and sent again, never waited
for until a timeout: a 1,000-trainer run with rounds open at once stopped after 120 s on a trainer's contest chunk
that anvil no longer knew. Played on a real anvil, whose `anvil_dropTransaction` forgets a pending transaction."""
from __future__ import annotations

import threading

import pytest
from node_fixtures import fresh_deployment, running_anvil

from contracts_config.deploy import ANVIL_KEY_0
from flower_sim.rollup_roles import RollupRecorder
from rollups_client.l1 import L1, Dropped

pytestmark = pytest.mark.slow


def sending_plumbing(l1: L1, said: list[str]) -> RollupRecorder:
    """A recorder with only what sending and confirming an input's L1 index needs (no task, no node)."""
    recorder = RollupRecorder.__new__(RollupRecorder)
    recorder.l1, recorder._sent, recorder.say, recorder._sending = l1, {}, said.append, threading.Lock()
    return recorder


def test_a_dropped_input_is_reported_and_the_recorder_sends_it_again(monkeypatch):
    monkeypatch.setattr("rollups_client.l1.DROPPED_AFTER_S", 0.5)  # 5 s in a run: a slow anvil's pool stays known
    with running_anvil(block_time=None) as chain:
        l1 = L1(chain, fresh_deployment(chain))
        rpc = l1.w3.provider.make_request
        rpc("evm_setAutomine", [False])
        sent = l1.send_input(ANVIL_KEY_0, b"lost")
        rpc("anvil_dropTransaction", ["0x" + bytes(sent).hex()])
        with pytest.raises(Dropped, match="neither mined nor pending"):
            l1.receipt(sent)

        said: list[str] = []
        recorder = sending_plumbing(l1, said)
        lost = recorder._send(ANVIL_KEY_0, payload=b"input 0")
        rpc("anvil_dropTransaction", ["0x" + bytes(lost).hex()])
        rpc("evm_setAutomine", [True])
        assert recorder._input_index(lost) == 0  # the first input the application got: sent again, once
        assert [i.payload for i in l1.inputs()] == [b"input 0"]
        assert len(said) == 1 and "sending that input again" in said[0]
