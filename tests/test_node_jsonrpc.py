"""The JSON-RPC reader: field names, hex indices, pagination, filters, and errors instead of crashes."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollups_node.jsonrpc import JsonRpcReader
from rollups_node.openrpc import METHODS
from reader_fixtures import APP, OTHER, SENDER, call, seeded_repository

@pytest.fixture
def reader(tmp_path):
    repo = seeded_repository(tmp_path / "node.sqlite")
    yield JsonRpcReader(repo, 31337)
    repo.close()


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
    # the released node (v2.0.0-alpha.12) answers -32001 for every "not found", the application's included
    ("cartesi_getOutput", {"application": "fedrollup", "output_index": "0x9"}, -32001),
    ("cartesi_getInput", {"application": "fedrollup", "input_index": "0x9"}, -32001),
    ("cartesi_getReport", {"application": "fedrollup", "report_index": "0x9"}, -32001),
    ("cartesi_getEpoch", {"application": "fedrollup", "epoch_index": "0x9"}, -32001),
    ("cartesi_getLastAcceptedEpochIndex", {"application": "fedrollup"}, -32001),
    ("cartesi_listOutputs", {"application": "someone-else"}, -32001),
    ("cartesi_listOutputs", {"application": "0x" + "12" * 20}, -32001),
    # indices are Go uint64s: beyond SQLite's integers nothing is stored (not found); beyond 2^64 invalid
    ("cartesi_getInput", {"application": "fedrollup", "input_index": hex(1 << 63)}, -32001),
    ("cartesi_getOutput", {"application": "fedrollup", "output_index": hex((1 << 64) - 1)}, -32001),
    ("cartesi_getInput", {"application": "fedrollup", "input_index": hex(1 << 64)}, -32602),
    ("cartesi_getInput", {"application": "fedrollup", "input_index": "0x"}, -32602),
    ("cartesi_getInput", {"application": "fedrollup", "input_index": "0x-1"}, -32602),
    ("cartesi_listOutputs", {"application": "fedrollup", "offset": 1 << 64}, -32602),
    ("cartesi_listOutputs", {"application": "fedrollup", "limit": 1.5}, -32602),
    ("cartesi_listOutputs", None, -32602),
    ("cartesi_getTournament", {"application": "fedrollup", "address": "0x" + "12" * 20}, -32001),
    ("cartesi_getTournament", {"application": "fedrollup"}, -32602),
    ("cartesi_getMatch", {"application": "fedrollup", "epoch_index": "0x0", "tournament_address": "0x" + "12" * 20,
                          "id_hash": "0x" + "ab" * 32}, -32001),
    ("cartesi_getCommitment", {"application": "fedrollup", "epoch_index": "0x0",
                               "tournament_address": "0x" + "12" * 20, "commitment": "0x12"}, -32602),
    ("cartesi_listMatchAdvances", {"application": "fedrollup"}, -32602),
    ("cartesi_listTournaments", {"application": "nobody"}, -32001),
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
    reply = call(reader, method, params) if params is not None else json.loads(reader.handle_bytes(
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode()))
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


def test_hex_indices_are_parsed_as_the_real_node_parses_them(reader):
    """Go's parseIndex: a "0x" or "0X" prefix, then any hex digits of a uint64 (leading zeros allowed)."""
    for written in ("0x1", "0X1", "0x0001", "0X00000000000000000001"):
        assert call(reader, "cartesi_getInput", {"application": "fedrollup", "input_index": written})["result"][
            "data"]["index"] == "0x1"
    huge = call(reader, "cartesi_listOutputs", {"application": "fedrollup", "offset": (1 << 64) - 1,
                                                 "input_index": hex(1 << 63)})["result"]
    assert huge["data"] == [] and huge["pagination"]["offset"] == (1 << 64) - 1


def test_prt_methods_answer_empty_lists_for_an_authority_application(reader):
    for method in ("cartesi_listTournaments", "cartesi_listCommitments", "cartesi_listMatches"):
        assert call(reader, method, {"application": "fedrollup"})["result"] == {
            "data": [], "pagination": {"total_count": 0, "limit": 50, "offset": 0}}
    advances = call(reader, "cartesi_listMatchAdvances", ["fedrollup", "0x0", "0x" + "12" * 20, "0x" + "ab" * 32])
    assert advances["result"]["data"] == []


def test_a_batch_answers_each_call(reader):
    body = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "cartesi_getChainId"},
                       {"jsonrpc": "2.0", "id": 2, "method": "nope"}, 5]).encode()
    replies = json.loads(reader.handle_bytes(body))
    assert replies[0]["result"] == {"data": "0x7a69"}
    assert replies[1]["error"]["code"] == -32601 and replies[2]["error"]["code"] == -32600


JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
                    | st.floats(allow_nan=False) | st.text(max_size=30)
                    | st.sampled_from(["fedrollup", "0x0", "0X1", hex(1 << 63), hex(1 << 64), "0x" + "ab" * 32,
                                       APP, "OPEN", "0xc258d6e5"]),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(
                        st.sampled_from(["application", "input_index", "output_index", "epoch_index", "limit",
                                         "offset", "descending", "status", "sender", "address", "id_hash"]),
                        children, max_size=5), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(METHODS)), params=JSON)
def test_any_params_of_any_method_get_an_answer_never_an_internal_error(reader, method, params):
    reply = call(reader, method, params)
    assert ("result" in reply) != ("error" in reply)
    assert "error" not in reply or reply["error"]["code"] in (-32602, -32001, -32600, -32005)


@pytest.mark.parametrize("body", [b"1" * 5000, b'{"jsonrpc": "2.0", "id": ' + b"9" * 5000 + b"}",
                                  b"[" * 65 + b"]" * 65, b'"' + b"\\" * 10001 + b'"', b"\x00" * 100])
def test_odd_bodies_get_json_rpc_errors(reader, body):
    assert json.loads(reader.handle_bytes(body))["error"]["code"] in (-32700, -32600)
