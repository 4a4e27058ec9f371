"""One input shape and one output decoding: an InputBox input becomes the same `Advance` for the node's
backend and for the audit, the advance request's JSON goes both ways, and every reader decodes an output's
bytes with `rollups_client.outputs.decode_output`."""
from __future__ import annotations

from dapp.advance_request import encode_advance, parse_advance
from dapp.schema import RewardPaid, RoundRecorded
from dapp.state import Advance
from rollups_client.outputs import decode_output
from rollups_node.advance import advance_of
from rollups_node.describe import describe_outputs
from rollups_node.model import Input
from rollups_node.outputs import decoded_data as output_json_data
from rollups_node.outputs import encode_notice, encode_voucher
from flower_sim.manager_role import recorded_rounds

SENDER = "0x" + "cd" * 20
ITEM = Input(index=3, epoch_index=1, block_number=42, block_timestamp=1_700_000_000, chain_id=31337,
             app_contract="0x" + "AB" * 20, sender="0x" + "CD" * 20, prev_randao=7, payload=b"\x01\x02",
             raw_data=b"", transaction_reference="")


def test_an_input_is_one_advance_and_its_request_json_goes_both_ways():
    advance = advance_of(ITEM)
    assert advance == Advance(msg_sender=SENDER, payload=b"\x01\x02", input_index=3, block_number=42,
                              block_timestamp=1_700_000_000, prev_randao=(7).to_bytes(32, "big"), chain_id=31337,
                              app_contract="0x" + "ab" * 20)
    data = encode_advance(advance)
    assert data == {"metadata": {"chain_id": 31337, "app_contract": "0x" + "ab" * 20, "msg_sender": SENDER,
                                 "block_number": 42, "block_timestamp": 1_700_000_000,
                                 "prev_randao": "0x" + (7).to_bytes(32, "big").hex(), "input_index": 3},
                    "payload": "0x0102"}
    assert parse_advance(data) == advance


def test_outputs_decode_to_the_fedrollup_notice_or_what_the_voucher_pays():
    paid = RewardPaid(task_id=1, round=2, trainer=SENDER, amount=5, stake=9)
    notice = decode_output(encode_notice(paid.encode()), index=4, input_index=2)
    assert (notice.type, notice.name, notice.message, notice.index, notice.input_index) == \
        ("Notice", "RewardPaid", paid, 4, 2)
    voucher = decode_output(encode_voucher("0x" + "ee" * 20, 10**15, b""))
    assert (voucher.name, voucher.value, voucher.destination.lower(), voucher.message) == \
        ("Voucher", 10**15, "0x" + "ee" * 20, None)
    stranger = decode_output(encode_notice(b"\x12\x34\x56\x78"))
    assert stranger.name == "?" and stranger.message is None and "unknown notice tag" in stranger.error
    assert output_json_data(encode_voucher("0x" + "ee" * 20, 5, b"hi"))["value"] == "0x5"
    assert describe_outputs([encode_notice(paid.encode())] * 2, []) == "2 notices (2 RewardPaid)"


def test_the_manager_host_reads_its_round_records_back_through_the_client():
    def record(task_id: int) -> bytes:
        return encode_notice(RoundRecorded(task_id, 1, 0, b"\x0a" * 32, 9000, 9000, (), (), 0, 0, 0).encode())

    class Node:
        def notices(self):
            return [decode_output(record(7), index=12), decode_output(record(8), index=13),
                    decode_output(encode_notice(b"\x12\x34\x56\x78"), index=14)]

    assert recorded_rounds(Node(), 7) == [{"round": 1, "global_digest": "0a" * 32, "global_accuracy_bps": 9000,
                                           "output_index": "0xc"}]
