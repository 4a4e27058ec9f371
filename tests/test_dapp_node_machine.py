"""`python -m dapp` driven by the host-mode node's own machine stand-in (rollups_node.machine.HostMachine):
the outputs the node stores are the notices and vouchers the rules produce, byte for byte."""
from __future__ import annotations

import sys

from dapp_fixtures import task_message, MILLI, PORTAL, PUBLISHER, STRANGER, Chain, close, report, trainer, validator

from dapp.portal import encode_ether_deposit
from dapp.schema import ROLE_TRAINER, ROLE_VALIDATOR, Register, Withdraw, encode_deposit_data
from dapp.state import Notice, Voucher, apply
from rollups_node.machine import HostMachine
from rollups_node.outputs import encode_notice, encode_voucher


def expected_output(out) -> bytes:
    if isinstance(out, Notice):
        return encode_notice(out.payload)
    assert isinstance(out, Voucher)
    return encode_voucher(out.destination, out.value, out.payload)


def test_backend_under_the_node_emits_exactly_what_the_rules_say():
    inputs = [
        (PUBLISHER, task_message(2500, 1, 1, 4 * MILLI, 3 * MILLI, 1 * MILLI).encode()),
        (PORTAL, encode_ether_deposit(PUBLISHER, 5 * MILLI, encode_deposit_data(1))),
        (validator(0), Register(1, ROLE_VALIDATOR, 0).encode()),
        (trainer(0, 0), Register(1, ROLE_TRAINER, 0).encode()),
        (trainer(0, 1), Register(1, ROLE_TRAINER, 0).encode()),
        (STRANGER, b"\x12\x34\x56\x78"),
        (validator(0), report(1, 1, 9000, {trainer(0, 0): 8000, trainer(0, 1): 3000}).encode()),
        (PUBLISHER, close(1, 1, 9100, [9050]).encode()),
        (trainer(0, 0), Withdraw().encode()),
    ]
    chain = Chain()  # the same inputs through the state machine directly: the reference
    machine = HostMachine([sys.executable, "-m", "dapp"], finish_timeout=5.0)
    machine.start()
    try:
        index = 0
        for sender, payload in inputs:
            adv = chain.advance(sender, payload)
            meta = {"chain_id": 31337, "app_contract": "0x" + "a9" * 20, "msg_sender": sender,
                    "block_number": adv.block_number, "block_timestamp": adv.block_timestamp,
                    "prev_randao": "0x" + adv.prev_randao.hex(), "input_index": adv.input_index}
            result = machine.advance({"metadata": meta, "payload": "0x" + payload.hex()}, index)
            if sender == STRANGER:
                assert result.status == "reject" and result.outputs == []
                assert b"unknown input tag 0x12345678" in result.reports[0]
                continue
            expected = apply(chain.state, adv, PORTAL)
            chain.state = expected.state
            assert result.status == "accept"
            assert result.outputs == [expected_output(o) for o in expected.outputs
                                      if isinstance(o, (Notice, Voucher))]
            index += len(result.outputs)
        inspected = machine.inspect(f"balance/{trainer(0, 0)}".encode())
        assert inspected.status == "accept" and b'"balance_wei": "0"' in inspected.reports[0]
    finally:
        machine.stop()
