"""Conformance with the released rollups-node's JSON-RPC (rollups_node.openrpc.CONFORMANCE_TARGET): every
method's answer and every error validates against the JSON Schema written from the real node's OpenRPC
document, the document `rpc.discover` serves is that schema, and clients (ours, Cartesi's TypeScript one)
read the node as they read a real one."""
from __future__ import annotations

import json
import re
import subprocess
import threading
from pathlib import Path

import jsonschema
import pytest
import requests

from reader_fixtures import APP, OTHER, call, seeded_repository
from rollups_client.node import NodeClient, NodeError
from rollups_node.jsonrpc import JsonRpcReader
from rollups_node.openrpc import ERRORS, METHODS, SCHEMAS, document
from rollups_node.server import NodeHttpServer

REPO = Path(__file__).resolve().parents[1]
TOURNAMENT, HASH = "0x" + "12" * 20, "0x" + "ab" * 32
STANDARD_CODES = {-32700, -32600, -32601, -32602, -32603}

# One valid call of every method, and what it answers: a result ("result") or an error code.
CALLS: dict[str, tuple[object, object]] = {
    "rpc.discover": (None, "result"),
    "cartesi_listApplications": ({}, "result"),
    "cartesi_getApplication": ({"application": "fedrollup"}, "result"),
    "cartesi_listEpochs": ({"application": APP}, "result"),
    "cartesi_getEpoch": ({"application": "fedrollup", "epoch_index": "0x1"}, "result"),
    "cartesi_getLastAcceptedEpochIndex": ({"application": "fedrollup"}, "result"),
    "cartesi_listInputs": ({"application": "fedrollup"}, "result"),
    "cartesi_getInput": ({"application": "fedrollup", "input_index": "0x0"}, "result"),
    "cartesi_getProcessedInputCount": ({"application": "fedrollup"}, "result"),
    "cartesi_listOutputs": ({"application": "fedrollup"}, "result"),
    "cartesi_getOutput": ({"application": "fedrollup", "output_index": "0x1"}, "result"),
    "cartesi_listReports": ({"application": "fedrollup"}, "result"),
    "cartesi_getReport": ({"application": "fedrollup", "report_index": "0x0"}, "result"),
    "cartesi_listTournaments": ({"application": "fedrollup"}, "result"),
    "cartesi_getTournament": ({"application": "fedrollup", "address": TOURNAMENT}, -32001),
    "cartesi_listCommitments": ({"application": "fedrollup"}, "result"),
    "cartesi_getCommitment": ({"application": "fedrollup", "epoch_index": "0x0", "tournament_address": TOURNAMENT,
                               "commitment": HASH}, -32001),
    "cartesi_listMatches": ({"application": "fedrollup"}, "result"),
    "cartesi_getMatch": ({"application": "fedrollup", "epoch_index": "0x0", "tournament_address": TOURNAMENT,
                          "id_hash": HASH}, -32001),
    "cartesi_listMatchAdvances": ({"application": "fedrollup", "epoch_index": "0x0", "tournament_address": TOURNAMENT,
                                   "id_hash": HASH}, "result"),
    "cartesi_getMatchAdvanced": ({"application": "fedrollup", "epoch_index": "0x0", "tournament_address": TOURNAMENT,
                                  "id_hash": HASH, "parent": HASH}, -32001),
    "cartesi_getChainId": (None, "result"),
    "cartesi_getNodeVersion": (None, "result"),
}
ERROR_CALLS = [("cartesi_getInput", {"application": "fedrollup", "input_index": "0x9"}),
               ("cartesi_getInput", {"application": "nobody", "input_index": "0x0"}),
               ("cartesi_getInput", {"application": "fedrollup", "input_index": "9"}),
               ("cartesi_listOutputs", {"application": "fedrollup", "offset": -1}),
               ("cartesi_nope", {})]


def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}",
                                            "components": {"schemas": SCHEMAS}})


@pytest.fixture(params=[(False, False), (True, False), (True, True)],
                ids=["open-epochs", "claimed-epoch", "quorum-inoperable"])
def reader(request, tmp_path):
    claimed, quorum = request.param
    repo = seeded_repository(tmp_path / "node.sqlite", claimed=claimed, quorum=quorum)
    reader = JsonRpcReader(repo, 31337)
    reader.claimed = claimed
    yield reader
    repo.close()


def test_a_quorum_members_inoperable_application_is_answered_as_the_real_node_does(tmp_path):
    """What a Quorum member's node answers once L1 settled another root: QUORUM, INOPERABLE and why, in the shape of
    the real node's document (the other tests run every method against this application too)."""
    repo = seeded_repository(tmp_path / "node.sqlite", claimed=True, quorum=True)
    reply = call(JsonRpcReader(repo, 31337), "cartesi_getApplication", {"application": "fedrollup"})["result"]
    validator(METHODS["cartesi_getApplication"][1]).validate(reply)
    assert (reply["data"]["consensus_type"], reply["data"]["state"]) == ("QUORUM", "INOPERABLE")
    assert reply["data"]["reason"] == "L1 settled another outputs root for epoch 1"
    repo.close()


def test_every_method_of_the_document_is_exercised():
    assert set(CALLS) == set(METHODS)


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_answer_validates_against_the_schema_from_the_real_nodes_document(reader, method):
    params, expected = CALLS[method]
    if method == "cartesi_getLastAcceptedEpochIndex" and not reader.claimed:
        expected = -32001  # no epoch accepted yet
    reply = call(reader, method, params)
    if expected == "result":
        assert "error" not in reply, reply
        validator(METHODS[method][1]).validate(reply["result"])
    else:
        validator("Error").validate(reply)
        assert reply["error"]["code"] == expected


@pytest.mark.parametrize("method, params", ERROR_CALLS)
def test_every_error_validates_and_uses_a_documented_code(reader, method, params):
    reply = call(reader, method, params)
    validator("Error").validate(reply)
    assert reply["error"]["code"] in STANDARD_CODES | {code for code, _ in ERRORS.values()}


def test_the_schema_is_strict_enough_to_catch_drift(reader):
    """The old field names fail: an epoch with `claim_hash`, an application without `execution_parameters`."""
    epoch = call(reader, "cartesi_getEpoch", {"application": "fedrollup", "epoch_index": "0x1"})["result"]
    drifted = dict(epoch["data"], claim_hash=epoch["data"].pop("outputs_merkle_root"))
    with pytest.raises(jsonschema.ValidationError):
        validator("EpochGetResult").validate({"data": drifted})
    app = call(reader, "cartesi_getApplication", {"application": "fedrollup"})["result"]["data"]
    del app["execution_parameters"]
    with pytest.raises(jsonschema.ValidationError):
        validator("Application").validate(app)


def test_rpc_discover_serves_this_nodes_openrpc_document(reader):
    served = call(reader, "rpc.discover")["result"]
    assert served == json.loads(json.dumps(document()))
    assert [m["name"] for m in served["methods"]] == list(METHODS)
    assert "v2.0.0-alpha.12" in served["info"]["description"]
    refs = set(re.findall(r'"\$ref": "#/components/(\w+)/(\w+)"', json.dumps(served)))
    assert refs and all(name in served["components"][kind] for kind, name in refs)


@pytest.fixture(params=[False, True], ids=["authority", "quorum-inoperable"])
def node_url(request, tmp_path):
    """The node's HTTP server on loopback over the seeded database (no L1, no backend needed to read); also as a
    Quorum member's node that turned the application INOPERABLE."""
    repo = seeded_repository(tmp_path / "node.sqlite", claimed=True, quorum=request.param)
    server = NodeHttpServer("127.0.0.1", 0, JsonRpcReader(repo, 31337), inspector=None, healthy=lambda: True,
                            cors=["http://localhost:5173"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.url
    server.shutdown()
    server.server_close()
    repo.close()


def test_our_client_tells_a_missing_input_from_a_missing_application(node_url):
    client = NodeClient.at(node_url, "fedrollup")
    assert client.input_status(0) == "ACCEPTED" and client.input_status(9) == "NONE"
    with pytest.raises(NodeError) as err:
        NodeClient.at(node_url, "nobody").input_status(0)
    assert err.value.code == -32001


@pytest.mark.parametrize("code, message, missing_item", [
    (-32001, "Input not found", True),  # the released node
    (-32001, "Application not found", False),  # the released node
    (-32002, "Application not found", False),  # nodes after rollups-node#783
])
def test_the_fl_roles_polling_accepts_the_real_nodes_codes(monkeypatch, code, message, missing_item):
    class Answer:
        status_code = 200

        @staticmethod
        def json():
            return {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}

    client = NodeClient("http://127.0.0.1:1/rpc", "http://127.0.0.1:1/inspect/x", "fedrollup")
    monkeypatch.setattr(client, "_post", lambda url, **kwargs: Answer())
    if missing_item:
        assert client.input_status(4) == "NONE"
    else:
        with pytest.raises(NodeError):
            client.input_status(4)


def test_cors_preflight_and_grant_as_the_real_node(node_url):
    preflight = requests.options(node_url + "/rpc", headers={"Origin": "http://localhost:5173",
                                                             "Access-Control-Request-Method": "POST"}, timeout=5)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert requests.options(node_url + "/inspect/fedrollup", headers={"Origin": "http://localhost:5173"},
                            timeout=5).status_code == 204
    stranger = requests.options(node_url + "/rpc", headers={"Origin": "http://evil.example",
                                                            "Access-Control-Request-Method": "POST"}, timeout=5)
    assert stranger.status_code == 204 and "Access-Control-Allow-Origin" not in stranger.headers
    answer = requests.post(node_url + "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "cartesi_getChainId"},
                           headers={"Origin": "http://localhost:5173"}, timeout=5)
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert answer.json()["result"] == {"data": "0x7a69"}


NODE_MODULES = REPO / "contracts-config" / "node_modules"
CARTESI_RPC = NODE_MODULES / "@cartesi" / "rpc" / "dist" / "index.js"


def test_cartesis_typescript_client_reads_the_node(node_url, request):
    """@cartesi/rpc 2.0.0-alpha.19 (pinned in contracts-config/package.json, installed by `make setup`), on an
    Authority's node and on a Quorum member's node that turned the application INOPERABLE."""
    assert CARTESI_RPC.exists(), "run `make setup` (npm ci in contracts-config/) to install @cartesi/rpc"
    script = REPO / "tests" / "cartesi_rpc_client.mjs"
    run = subprocess.run(["node", str(script), str(CARTESI_RPC), node_url + "/rpc", "fedrollup"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["chainId"] == "0x7a69"
    quorum = request.node.callspec.params["node_url"]  # the fixture's parameter: a Quorum member's node
    assert seen["application"] == APP
    assert (seen["consensus"], seen["state"]) == (("QUORUM", "INOPERABLE") if quorum else ("AUTHORITY", "ENABLED"))
    assert (seen["reason"] is not None) == quorum
    assert seen["inputs"] == ["0x0", "0x1", "0x2"] and seen["input1"] == "REJECTED"
    assert seen["voucherDestination"] == OTHER
    assert seen["epochRoot"] == "0x" + "33" * 32 and seen["tournaments"] == []
    assert seen["missingInputCode"] == -32001


def test_cartesis_viem_extension_reads_the_node(node_url):
    """@cartesi/viem 2.0.0-alpha.26, the extension of the released node's line (it decodes every field: the
    application's data availability as ABI call data, hex quantities as bigints)."""
    assert (NODE_MODULES / "@cartesi" / "viem").exists(), "run `make setup` to install @cartesi/viem"
    run = subprocess.run(["node", str(REPO / "tests" / "cartesi_viem_client.mjs"), str(NODE_MODULES),
                          node_url + "/rpc", "fedrollup"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout)
    assert seen["chainId"] == 31337 and seen["application"] == APP
    assert seen["inputs"] == ["0", "1", "2"] and seen["input1"] == "REJECTED" and seen["outputs"] == 2
    assert seen["epochRoot"] == "0x" + "33" * 32 and seen["tournaments"] == [] and seen["processed"] == "2"
    assert seen["missingInput"] == -32001
