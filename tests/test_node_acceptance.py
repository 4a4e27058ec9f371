"""The host-mode node against a real anvil with the official contracts: inputs in, outputs out, provable on L1."""
from __future__ import annotations

import subprocess

import pytest
import requests
from web3.exceptions import ContractLogicError

from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.transactions import connect
from node_fixtures import (DEV_KEYS, ECHO_BACKEND, add_input, claimed, fresh_deployment, node_command, node_process,
                           outputs_of, processed, proof_of, rpc, running_anvil, wait_until)
from rollups_node.outputs import encode_notice

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain():
    with running_anvil() as url:
        yield url


def test_a_notice_is_listed_and_proven_on_l1_after_its_epoch_claim(chain, tmp_path):
    deployment = fresh_deployment(chain)
    with node_process(deployment, tmp_path) as (url, _):
        add_input(deployment, b"hello rollup")
        outs = wait_until(lambda: claimed(url, "fedrollup", 1), 30, "the notice's claim")
        notice = outs[0]
        assert notice["decoded_data"] == {"type": "Notice", "payload": "0x" + b"hello rollup".hex()}
        assert bytes.fromhex(notice["raw_data"][2:]) == encode_notice(b"hello rollup")
        index, siblings = proof_of(notice)
        assert len(siblings) == 63
        epochs = rpc(url, "cartesi_listEpochs", application="fedrollup", status="CLAIM_ACCEPTED")["data"]
        assert epochs and epochs[0]["index"] == notice["epoch_index"]

        w3 = connect(deployment.rpc_url)
        app = w3.eth.contract(address=deployment.application, abi=deployment.abi("Application"))
        app.functions.validateOutput(bytes.fromhex(notice["raw_data"][2:]), (index, siblings)).call()
        with pytest.raises(ContractLogicError):
            app.functions.validateOutput(encode_notice(b"hello rollup!"), (index, siblings)).call()
        with pytest.raises(ContractLogicError):  # a notice is provable, never executable
            app.functions.executeOutput(bytes.fromhex(notice["raw_data"][2:]), (index, siblings)).call()

        item = rpc(url, "cartesi_getInput", application="fedrollup", input_index="0x0")["data"]
        assert item["status"] == "ACCEPTED" and item["decoded_data"]["payload"] == "0x" + b"hello rollup".hex()
        assert item["decoded_data"]["sender"].lower() == w3.eth.account.from_key(DEV_KEYS[1]).address.lower()

        inspect = requests.post(f"{url}/inspect/fedrollup", data=b"ping").json()
        assert inspect["status"] == "Accepted" and inspect["processed_input_count"] == 1
        assert bytes.fromhex(inspect["reports"][0]["payload"][2:]) == b"ping|accepted=1"
        assert requests.get(f"{url}/inspect/fedrollup").status_code == 405
        assert requests.post(f"{url}/inspect/nobody", data=b"x").status_code == 404

        # malformed JSON-RPC gets JSON-RPC errors and the node keeps serving
        assert requests.post(url + "/rpc", data=b"{oops").json()["error"]["code"] == -32700
        bad = requests.post(url + "/rpc", json={"jsonrpc": "2.0", "id": 3, "method": "cartesi_getOutput",
                                                "params": {"application": "fedrollup", "output_index": 5}}).json()
        assert bad["error"]["code"] == -32602
        assert requests.post(url + "/rpc", data=b" " * ((1 << 20) + 1)).status_code == 400
        assert requests.post(f"{url}/inspect/fedrollup", data=b"x" * ((1 << 21) + 1)).status_code == 413
        assert requests.get(url + "/livez").status_code == 200


def test_rejected_and_excepted_inputs_keep_reports_and_discard_outputs(chain, tmp_path):
    deployment = fresh_deployment(chain)
    with node_process(deployment, tmp_path) as (url, _):
        for payload in (b"first", b"reject:bad", b"exception:boom", b"after"):
            add_input(deployment, payload)
        wait_until(lambda: processed(url, "fedrollup") == 4, 30, "four inputs processed")
        inputs = rpc(url, "cartesi_listInputs", application="fedrollup")["data"]
        assert [i["status"] for i in inputs] == ["ACCEPTED", "REJECTED", "EXCEPTION", "ACCEPTED"]
        outs = outputs_of(url, "fedrollup")
        assert [(o["index"], o["input_index"]) for o in outs] == [("0x0", "0x0"), ("0x1", "0x3")]
        assert outs[1]["decoded_data"]["payload"] == "0x" + b"after".hex()
        rejected_reports = rpc(url, "cartesi_listReports", application="fedrollup", input_index="0x1")["data"]
        assert [bytes.fromhex(r["raw_data"][2:]) for r in rejected_reports] == [b"rejected reject:bad"]
        assert outputs_of(url, "fedrollup", input_index="0x1") == []
        # the exception restarted the backend, which was rebuilt from the accepted inputs only
        inspect = requests.post(f"{url}/inspect/fedrollup", data=b"n").json()
        assert bytes.fromhex(inspect["reports"][0]["payload"][2:]) == b"n|accepted=2"


def test_a_killed_node_resumes_without_losing_or_repeating_outputs(chain, tmp_path):
    deployment = fresh_deployment(chain)
    with node_process(deployment, tmp_path) as (url, process):
        for _ in range(3):
            add_input(deployment, b"notices:3")
        wait_until(lambda: processed(url, "fedrollup") >= 2, 30, "inputs processed before the kill")
        process.kill()  # SIGKILL: no chance to clean up
        process.wait()
    for _ in range(2):
        add_input(deployment, b"notices:3")  # inputs that arrive while the node is down
    with node_process(deployment, tmp_path) as (url, _):
        wait_until(lambda: processed(url, "fedrollup") == 5, 30, "all five inputs processed after restart")
        outs = outputs_of(url, "fedrollup")
        assert [int(o["index"], 16) for o in outs] == list(range(15))
        payloads = [bytes.fromhex(o["decoded_data"]["payload"][2:]) for o in outs]
        assert payloads == [b"notice %d of input %d" % (n, i) for i in range(5) for n in range(3)]
        inspect = requests.post(f"{url}/inspect/fedrollup", data=b"n").json()
        assert bytes.fromhex(inspect["reports"][0]["payload"][2:]) == b"n|accepted=5"

        # every output, over several epochs and claims on both sides of the restart, is provable on L1
        outs = wait_until(lambda: claimed(url, "fedrollup", 15), 30, "all epochs claimed")
        assert len({o["epoch_index"] for o in outs}) > 1
        w3 = connect(deployment.rpc_url)
        app = w3.eth.contract(address=deployment.application, abi=deployment.abi("Application"))
        for out in outs:
            app.functions.validateOutput(bytes.fromhex(out["raw_data"][2:]), proof_of(out)).call()


def test_the_node_refuses_to_start_when_replay_diverges(chain, tmp_path):
    deployment = fresh_deployment(chain)
    with node_process(deployment, tmp_path) as (url, _):
        add_input(deployment, b"state")
        wait_until(lambda: processed(url, "fedrollup") == 1, 30, "the input processed")
    command = node_command(tmp_path / "deployment.json", tmp_path / "node.sqlite", 0,
                           ECHO_BACKEND + ["--prefix", "other"])
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "input 0" in result.stderr


def test_the_node_refuses_a_database_from_another_chain(tmp_path):
    """A restarted anvil gives the same CREATE2 addresses but none of the stored inputs."""
    template = "0x" + "5e" * 32
    with running_anvil() as first_chain:
        deployment = deploy(first_chain, ANVIL_KEY_0, epoch_length=4, template_hash=template)
        with node_process(deployment, tmp_path) as (url, _):
            add_input(deployment, b"only on the first chain")
            wait_until(lambda: processed(url, "fedrollup") == 1, 30, "the input processed")
    with running_anvil() as second_chain:
        again = deploy(second_chain, ANVIL_KEY_0, epoch_length=4, template_hash=template)
        assert again.application == deployment.application
        (tmp_path / "deployment.json").write_text(again.to_json())
        command = node_command(tmp_path / "deployment.json", tmp_path / "node.sqlite", 0, ECHO_BACKEND)
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "fresh --db" in result.stderr and "Traceback" not in result.stderr
