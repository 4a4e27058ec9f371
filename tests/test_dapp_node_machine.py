"""`python -m dapp` driven by the host-mode node's own machine stand-in (rollups_node.machine.HostMachine):
the outputs the node stores are the notices and vouchers the rules produce, byte for byte."""
from __future__ import annotations

import sys

from dapp_fixtures import PORTAL, STRANGER, Chain, trainer
from schedule_fixtures import one_round_inputs

from dapp.eip712 import Domain
from dapp.state import Advance, Notice, Voucher, apply
from rollups_node.machine import HostMachine
from rollups_node.outputs import encode_notice, encode_voucher

CHAIN_ID, APP = 31337, "0x" + "a9" * 20


def expected_output(out) -> bytes:
    if isinstance(out, Notice):
        return encode_notice(out.payload)
    assert isinstance(out, Voucher)
    return encode_voucher(out.destination, out.value, out.payload)


def test_backend_under_the_node_emits_exactly_what_the_rules_say():
    chain = Chain()  # the same inputs through the state machine directly: the reference
    machine = HostMachine([sys.executable, "-m", "dapp"], finish_timeout=5.0)
    machine.start()
    try:
        index = 0
        for i, (sender, payload, block) in enumerate(one_round_inputs(Domain(CHAIN_ID, APP))):
            adv = Advance(sender, payload, i, block, 1_700_000_000 + 12 * block, bytes(32), CHAIN_ID, APP)
            meta = {"chain_id": CHAIN_ID, "app_contract": APP, "msg_sender": sender,
                    "block_number": adv.block_number, "block_timestamp": adv.block_timestamp,
                    "prev_randao": "0x" + adv.prev_randao.hex(), "input_index": adv.input_index}
            result = machine.advance({"metadata": meta, "payload": "0x" + payload.hex()}, index)
            if sender == STRANGER:
                assert result.status == "reject" and result.outputs == []
                assert b"unknown input tag 0x12345678" in result.reports[0]
                continue
            expected = apply(chain.state, adv, PORTAL)
            chain.state = expected.state
            assert result.status == "accept", result.reports
            assert result.outputs == [expected_output(o) for o in expected.outputs
                                      if isinstance(o, (Notice, Voucher))]
            index += len(result.outputs)
        assert chain.state.tasks[1].finished and chain.state.tasks[1].history[0].trainer_paid > 0
        inspected = machine.inspect(f"balance/{trainer(0, 0)}".encode())
        assert inspected.status == "accept" and b'"balance_wei": "0"' in inspected.reports[0]  # withdrawn
    finally:
        machine.stop()
