"""The JSON-RPC reader: field names, hex indices, pagination, filters, and errors instead of crashes."""
from __future__ import annotations

import json

import pytest

from rollups_node.jsonrpc import JsonRpcReader
from rollups_node.model import INPUT_ACCEPTED, INPUT_REJECTED, Application, Input, Output, Report
from rollups_node.outputs import encode_notice, encode_voucher, output_hash
from rollups_node.sqlite_repository import SqliteRepository

APP = "0x5a09A1F06f8BbcA41B1F2588e6F2c888b102355F"
SENDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
OTHER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


@pytest.fixture
def reader(tmp_path):
    repo = SqliteRepository(tmp_path / "node.sqlite")
    repo.save_application(Application(name="fedrollup", address=APP, consensus="0x" + "22" * 20,
                                      input_box="0x1b51e2992A2755Ba4D6F7094032DF91991a0Cfac", input_box_block=1,
                                      template_hash="0x" + "00" * 32, epoch_length=4, data_availability="0xb12c9ede",
                                      chain_id=31337))
    inputs = [Input(index=i, epoch_index=(5 + 2 * i) // 4, block_number=5 + 2 * i, block_timestamp=1700000000 + i,
                    chain_id=31337, app_contract=APP, sender=SENDER if i != 2 else OTHER, prev_randao=i,
                    payload=b"p%d" % i, raw_data=b"raw%d" % i, transaction_reference="0x" + "aa" * 32)
              for i in range(3)]
    repo.add_inputs(inputs, 9)
    notice, voucher = encode_notice(b"hello"), encode_voucher(OTHER, 7, b"")
    repo.store_advance_result(0, INPUT_ACCEPTED, [
        Output(index=0, input_index=0, epoch_index=1, raw_data=notice, hash=output_hash(notice)),
        Output(index=1, input_index=0, epoch_index=1, raw_data=voucher, hash=output_hash(voucher))],
        [Report(index=0, input_index=0, epoch_index=1, raw_data=b"r0")], "0x" + "11" * 32)
    repo.store_advance_result(1, INPUT_REJECTED, [], [Report(index=1, input_index=1, epoch_index=1, raw_data=b"r1")],
                              "0x" + "11" * 32)
    yield JsonRpcReader(repo, 31337)
    repo.close()


def call(reader: JsonRpcReader, method: str, params=None, request_id=1) -> dict:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return json.loads(reader.handle_bytes(json.dumps(body).encode()))


def test_list_outputs_has_the_real_node_shape_and_filters(reader):
    result = call(reader, "cartesi_listOutputs", {"application": "fedrollup"})["result"]
    assert result["pagination"] == {"total_count": 2, "limit": 50, "offset": 0}
    notice = result["data"][0]
    assert set(notice) >= {"epoch_index", "input_index", "index", "raw_data", "decoded_data", "hash",
                           "output_hashes_siblings", "execution_transaction_hash", "created_at", "updated_at"}
    assert notice["index"] == "0x0" and notice["input_index"] == "0x0" and notice["epoch_index"] == "0x1"
    assert notice["decoded_data"] == {"type": "Notice", "payload": "0x" + b"hello".hex()}
    assert notice["raw_data"].startswith("0xc258d6e5")
    vouchers = call(reader, "cartesi_listOutputs", {"application": APP.lower(), "output_type": "0x237a816f"})
    assert [o["index"] for o in vouchers["result"]["data"]] == ["0x1"]
    by_address = call(reader, "cartesi_listOutputs", {"application": "fedrollup", "voucher_address": OTHER})
    assert [o["index"] for o in by_address["result"]["data"]] == ["0x1"]
    page = call(reader, "cartesi_listOutputs", {"application": "fedrollup", "limit": 1, "offset": 1})["result"]
    assert [o["index"] for o in page["data"]] == ["0x1"] and page["pagination"]["total_count"] == 2


def test_inputs_reports_and_counts(reader):
    inputs = call(reader, "cartesi_listInputs", {"application": "fedrollup"})["result"]["data"]
    assert [i["status"] for i in inputs] == ["ACCEPTED", "REJECTED", "NONE"]
    assert inputs[0]["decoded_data"]["sender"] == SENDER and inputs[0]["decoded_data"]["payload"] == "0x" + b"p0".hex()
    mine = call(reader, "cartesi_listInputs", {"application": "fedrollup", "sender": OTHER})["result"]
    assert [i["index"] for i in mine["data"]] == ["0x2"]
    assert call(reader, "cartesi_getInput", {"application": "fedrollup", "input_index": "0x1"})["result"]["data"][
        "status"] == "REJECTED"
    reports = call(reader, "cartesi_listReports", {"application": "fedrollup", "input_index": "0x1"})["result"]
    assert [r["raw_data"] for r in reports["data"]] == ["0x" + b"r1".hex()]
    assert call(reader, "cartesi_getProcessedInputCount", {"application": "fedrollup"})["result"] == {"data": "0x2"}
    assert call(reader, "cartesi_getChainId")["result"] == {"data": "0x7a69"}
    app = call(reader, "cartesi_getApplication", {"application": "fedrollup"})["result"]["data"]
    assert app["iapplication_address"] == APP and app["epoch_length"] == "0x4"
    epochs = call(reader, "cartesi_listEpochs", {"application": "fedrollup"})["result"]["data"]
    assert [(e["index"], e["status"], e["first_block"], e["last_block"]) for e in epochs] == [
        ("0x1", "OPEN", "0x4", "0x7"), ("0x2", "OPEN", "0x8", "0xb")]
    assert [(e["input_index_lower_bound"], e["input_index_upper_bound"], e["virtual_index"]) for e in epochs] == [
        ("0x0", "0x2", "0x0"), ("0x2", "0x3", "0x1")]


def test_params_by_position_descending_order_and_the_real_nodes_limit_rules(reader):
    by_position = call(reader, "cartesi_getOutput", ["fedrollup", "0x1"])["result"]["data"]
    assert by_position["index"] == "0x1" and by_position["decoded_data"]["type"] == "Voucher"
    newest_first = call(reader, "cartesi_listInputs", {"application": "fedrollup", "descending": True})["result"]
    assert [i["index"] for i in newest_first["data"]] == ["0x2", "0x1", "0x0"]
    assert call(reader, "cartesi_listInputs", {"application": "fedrollup", "limit": 0})["result"]["pagination"][
        "limit"] == 50
    assert call(reader, "cartesi_listInputs", {"application": "fedrollup", "limit": 10**6})["result"]["pagination"][
        "limit"] == 10_000
    unknown_ignored = call(reader, "cartesi_listReports", {"application": "fedrollup", "colour": "red"})
    assert len(unknown_ignored["result"]["data"]) == 2


@pytest.mark.parametrize("method, params, code", [
    ("cartesi_getOutput", {"application": "fedrollup", "output_index": "0x9"}, -32003),
    ("cartesi_getInput", {"application": "fedrollup", "input_index": "0x9"}, -32002),
    ("cartesi_getReport", {"application": "fedrollup", "report_index": "0x9"}, -32002),
    ("cartesi_getEpoch", {"application": "fedrollup", "epoch_index": "0x9"}, -32002),
    ("cartesi_getLastAcceptedEpochIndex", {"application": "fedrollup"}, -32002),
    ("cartesi_listOutputs", {"application": "someone-else"}, -32000),
    ("cartesi_listOutputs", {"application": "0x" + "12" * 20}, -32000),
    ("cartesi_listOutputs", {"application": "X!"}, -32602),
    ("cartesi_listOutputs", {}, -32602),
    ("cartesi_listOutputs", "fedrollup", -32602),
    ("cartesi_getOutput", ["fedrollup", "0x0", "extra"], -32602),
    ("cartesi_getOutput", {"application": "fedrollup", "output_index": 0}, -32602),
    ("cartesi_getOutput", {"application": "fedrollup", "output_index": "zero"}, -32602),
    ("cartesi_getOutput", {"application": "fedrollup"}, -32602),
    ("cartesi_listOutputs", {"application": "fedrollup", "limit": -1}, -32602),
    ("cartesi_listOutputs", {"application": "fedrollup", "limit": "10"}, -32602),
    ("cartesi_listOutputs", {"application": "fedrollup", "output_type": "Notice"}, -32602),
    ("cartesi_listOutputs", {"application": "fedrollup", "descending": "yes"}, -32602),
    ("cartesi_listEpochs", {"application": "fedrollup", "status": "FINE"}, -32602),
    ("cartesi_doesNotExist", {}, -32601),
])
def test_bad_calls_get_json_rpc_errors(reader, method, params, code):
    reply = call(reader, method, params)
    assert reply["error"]["code"] == code and reply["id"] == 1 and "result" not in reply


@pytest.mark.parametrize("body, code", [
    (b"{not json", -32700),
    (b"\xff\xfe", -32700),
    (b"[]", -32600),
    (b"42", -32600),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "cartesi_getChainId"}', -32600),
    (b'{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600),
    (b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "cartesi_getChainId"}', -32600),
])
def test_malformed_requests_get_json_rpc_errors(reader, body, code):
    reply = json.loads(reader.handle_bytes(body))
    assert reply["error"]["code"] == code


def test_a_batch_answers_each_call(reader):
    body = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "cartesi_getChainId"},
                       {"jsonrpc": "2.0", "id": 2, "method": "nope"}, 5]).encode()
    replies = json.loads(reader.handle_bytes(body))
    assert replies[0]["result"] == {"data": "0x7a69"}
    assert replies[1]["error"]["code"] == -32601 and replies[2]["error"]["code"] == -32600
