"""A node database with an application, inputs, outputs, reports and a claimed epoch, and a JSON-RPC call helper."""
from __future__ import annotations

import json
from pathlib import Path

from rollups_node.jsonrpc import JsonRpcReader
from rollups_node.model import EPOCH_CLAIM_ACCEPTED, INPUT_ACCEPTED, INPUT_REJECTED, Application, Input, Output, Report
from rollups_node.outputs import encode_notice, encode_voucher, output_hash
from rollups_node.sqlite_repository import SqliteRepository

APP = "0x5a09A1F06f8BbcA41B1F2588e6F2c888b102355F"
SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def seeded_repository(path: Path, claimed: bool = False, quorum: bool = False) -> SqliteRepository:
    """Three inputs (accepted, rejected, unprocessed) in epochs 1 and 2, a notice and a voucher, two reports;
    `claimed`: epoch 1's claim computed (outputs proven) and accepted on L1; `quorum`: the application is settled by
    a Quorum and its node turned it INOPERABLE (what a member node that diverged from L1 answers)."""
    repo = SqliteRepository(path)
    input_box = "0x1b51e2992A2755Ba4D6F7094032DF91991a0Cfac"
    repo.save_application(Application(name="fedrollup", address=APP, consensus="0x" + "22" * 20,
                                      input_box=input_box, input_box_block=1, template_hash="0x" + "00" * 32,
                                      epoch_length=4, chain_id=31337,  # DataAvailability.InputBox(input_box):
                                      data_availability="0xb12c9ede" + input_box[2:].lower().rjust(64, "0"),
                                      **({"consensus_type": "QUORUM", "state": "INOPERABLE",
                                          "reason": "L1 settled another outputs root for epoch 1"} if quorum else {})))
    inputs = [Input(index=i, epoch_index=(5 + 2 * i) // 4, block_number=5 + 2 * i, block_timestamp=1700000000 + i,
                    chain_id=31337, app_contract=APP, sender=SENDER if i != 2 else OTHER, prev_randao=i,
                    payload=b"p%d" % i, raw_data=b"raw%d" % i, transaction_reference="0x" + "aa" * 32, log_index=i)
              for i in range(3)]
    repo.add_inputs(inputs, 9)
    notice, voucher = encode_notice(b"hello"), encode_voucher(OTHER, 7, b"")
    repo.store_advance_result(0, INPUT_ACCEPTED, [
        Output(index=0, input_index=0, epoch_index=1, raw_data=notice, hash=output_hash(notice)),
        Output(index=1, input_index=0, epoch_index=1, raw_data=voucher, hash=output_hash(voucher))],
        [Report(index=0, input_index=0, epoch_index=1, raw_data=b"r0")], "0x" + "11" * 32)
    repo.store_advance_result(1, INPUT_REJECTED, [], [Report(index=1, input_index=1, epoch_index=1, raw_data=b"r1")],
                              "0x" + "11" * 32)
    if claimed:
        repo.store_claim(1, "0x" + "33" * 32, {0: [bytes([i]) * 32 for i in range(63)],
                                               1: [bytes([i + 1]) * 32 for i in range(63)]})
        repo.set_epoch_status(1, EPOCH_CLAIM_ACCEPTED, claim_transaction_hash="0x" + "44" * 32)
    return repo


def call(reader: JsonRpcReader, method: str, params=None, request_id=1) -> dict:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return json.loads(reader.handle_bytes(json.dumps(body).encode()))
