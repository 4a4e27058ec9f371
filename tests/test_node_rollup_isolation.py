"""An outsider on loopback who found the port of the backend's rollup HTTP API, on a running node.

Before the secret path, any local process could POST `/voucher` while an input was processed (the voucher
became part of the accepted input: it drained the Application on L1), `/exception` (the input became
EXCEPTION) or `/finish` (it took the next input away from the backend). Now all of it must change nothing:
no output, no status, no Ether; the node keeps answering, every output still proves on L1, and a restarted
node replays to the same outputs.
"""
from __future__ import annotations

import pytest

from attack_fixtures import ONE_ETHER, Outsider
from contracts_config.anvil import free_port
from contracts_config.transactions import connect
from node_fixtures import (DEV_KEYS, ECHO_BACKEND, add_input, claimed, deposit_ether, fresh_deployment, node_process,
                           outputs_of, processed, proof_of, rpc, running_anvil, wait_until)
from rollups_node.outputs import encode_notice, unpack_output

pytestmark = pytest.mark.slow


def test_an_outsider_posting_to_the_rollup_http_api_changes_nothing(tmp_path):
    with running_anvil() as chain:
        deployment = fresh_deployment(chain)
        w3 = connect(chain)
        thief = w3.eth.account.from_key(DEV_KEYS[3]).address
        app = w3.eth.contract(address=deployment.application, abi=deployment.abi("Application"))
        rollup_port = free_port()
        with node_process(deployment, tmp_path, backend=ECHO_BACKEND, rollup_http_port=rollup_port) as (url, _):
            deposit_ether(deployment, ONE_ETHER)
            wait_until(lambda: processed(url, "fedrollup") == 1, 60, "the deposit processed")
            outsider = Outsider(rollup_port, thief)
            outsider.start()
            try:
                add_input(deployment, b"hold:3")  # the backend holds this input open for 3 s: the attack's window
                add_input(deployment, b"after")  # and the outsider keeps going between the two
                wait_until(lambda: processed(url, "fedrollup") == 3, 60, "the inputs processed under attack")
            finally:
                outsider.halt()
            assert set(outsider.answers) == {404}  # before the secret path: 201 and 202, the attack landed
            assert len(outsider.answers) > 50

            inputs = rpc(url, "cartesi_listInputs", application="fedrollup")["data"]
            assert [i["status"] for i in inputs] == ["ACCEPTED"] * 3
            outputs = wait_until(lambda: claimed(url, "fedrollup", 3), 60, "the three notices' claim")
            assert len(outputs_of(url, "fedrollup")) == 3  # one echo notice per input, nothing else
            payloads = [unpack_output(bytes.fromhex(o["raw_data"][2:])) for o in outputs]
            assert [p.type for p in payloads] == ["Notice"] * 3
            assert [p.payload for p in payloads[1:]] == [b"hold:3", b"after"]
            reports = rpc(url, "cartesi_listReports", application="fedrollup")["data"]
            assert all(b"owned" not in bytes.fromhex(r["raw_data"][2:]) for r in reports)
            for output in outputs:  # the audit's proof: each output validates against the claim on L1
                app.functions.validateOutput(bytes.fromhex(output["raw_data"][2:]), proof_of(output)).call()
            assert w3.eth.get_balance(deployment.application) == ONE_ETHER
            assert rpc(url, "cartesi_getChainId")["data"] == hex(w3.eth.chain_id)
        with node_process(deployment, tmp_path, backend=ECHO_BACKEND) as (url, _):  # replays without divergence
            assert [o["raw_data"] for o in outputs_of(url, "fedrollup")] == [o["raw_data"] for o in outputs]
            assert bytes.fromhex(outputs[2]["raw_data"][2:]) == encode_notice(b"after")
