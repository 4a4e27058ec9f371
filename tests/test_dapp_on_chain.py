"""End to end on the local rollup stack (anvil + official @cartesi/rollups 2.2.0 contracts + host-mode node):
a task funded through the real EtherPortal and its public test set posted, a round played from each role's own
key (the trainer's signature under the real chain id and Application, the validator's model revealed, the close
after the contest window), and the trainer's Withdraw voucher executed on L1 paying real Ether."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from eth_account import Account

from contracts_config.anvil import free_port
from contracts_config.deploy import ANVIL_KEY_0
from contracts_config.deployment import load
from contracts_config.transactions import call_function, connect, send_transaction
from dapp_fixtures import TEST_SET, task_message, update_of, validator_model
from onchain_fixtures import Entry, signed_report

from dapp import qmodel
from dapp.eip712 import Domain
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, ModelChunk, Register, RoundClose, TaskFunded, Withdraw,
                         Withdrawal, decode_notice, encode_deposit_data)
from dapp.schema import TestSetChunk as SetChunk  # a Test* name would be collected by pytest

MILLI = 10**15


def fedrollup(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "fedrollup", *args], check=True, capture_output=True, timeout=240)


@pytest.mark.slow
def test_round_on_the_local_rollup_stack_pays_a_trainer_on_l1(tmp_path: Path):
    l1_port = free_port(4)  # L1, then the three Quorum members' nodes
    node_port = l1_port + 1
    fedrollup("chain", "up", "--run-dir", str(tmp_path), "--l1-port", str(l1_port), "--node-port", str(node_port),
              "--name", "dapp-test", "--deployment-file", str(tmp_path / "deployment.json"))
    try:
        d = load(str(tmp_path / "deployment.json"))
        w3 = connect(d.rpc_url)
        app = d.contracts["Application"]
        input_box = w3.eth.contract(address=d.contracts["InputBox"], abi=d.abi("InputBox"))
        portal = w3.eth.contract(address=d.contracts["EtherPortal"], abi=d.abi("EtherPortal"))
        application = w3.eth.contract(address=app, abi=d.abi("Application"))
        validator, trainer = Account.create(), Account.create()
        for account in (validator, trainer):
            send_transaction(w3, ANVIL_KEY_0, {"to": account.address, "value": 10**18})

        def send(key: str, message) -> None:
            call_function(w3, key, input_box.functions.addInput(app, message.encode()))

        created = task_message(2500, 1, 1, 4 * MILLI, 3 * MILLI, 1 * MILLI, validators=(validator.address.lower(),))
        send(ANVIL_KEY_0, created)
        send(ANVIL_KEY_0, SetChunk(1, 0, 1, TEST_SET))
        call_function(w3, ANVIL_KEY_0, portal.functions.depositEther(app, encode_deposit_data(1)), value=5 * MILLI)
        send(validator.key.hex(), Register(1, ROLE_VALIDATOR, 0))
        send(trainer.key.hex(), Register(1, ROLE_TRAINER, 0))
        model = validator_model(0, 1)
        entry = Entry(trainer.key.hex(), 8000, update_of(trainer.address.lower(), 1))
        send(validator.key.hex(), signed_report(Domain(w3.eth.chain_id, app), 1, 1, 0, 9000, model, [entry]))
        send(validator.key.hex(), ModelChunk(1, 1, qmodel.digest(model), 0, 1, model))
        w3.provider.make_request("anvil_mine", [hex(created.contest_blocks + 1)])  # past the contest window
        send(ANVIL_KEY_0, RoundClose(1, 1))
        send(trainer.key.hex(), Withdraw())

        rpc = f"http://127.0.0.1:{node_port}/rpc"

        def call(method: str, **params):
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            return requests.post(rpc, json=body, timeout=10).json()["result"]["data"]

        deadline = time.monotonic() + 60
        while int(call("cartesi_getProcessedInputCount", application="fedrollup"), 16) < 9:
            assert time.monotonic() < deadline, "the node did not process the 9 inputs within 60 s"
            time.sleep(0.5)
        assert [i["status"] for i in call("cartesi_listInputs", application="fedrollup")] == ["ACCEPTED"] * 9
        outputs = call("cartesi_listOutputs", application="fedrollup")
        notices = [decode_notice(bytes.fromhex(o["decoded_data"]["payload"][2:])) for o in outputs
                   if o["decoded_data"]["type"] == "Notice"]
        funded = next(n for n in notices if isinstance(n, TaskFunded))
        assert funded.funder == Account.from_key(ANVIL_KEY_0).address.lower() and funded.funded
        assert notices[-1] == Withdrawal(trainer.address.lower(), 3 * MILLI)

        (voucher,) = [o for o in outputs if o["decoded_data"]["type"] == "Voucher"]
        while call("cartesi_getEpoch", application="fedrollup",
                   epoch_index=voucher["epoch_index"])["status"] != "CLAIM_ACCEPTED":
            assert time.monotonic() < deadline + 60, "the epoch holding the voucher was not claimed"
            time.sleep(0.5)
        proven = call("cartesi_getOutput", application="fedrollup", output_index=voucher["index"])
        proof = (int(proven["index"], 16), [bytes.fromhex(s[2:]) for s in proven["output_hashes_siblings"]])
        before = w3.eth.get_balance(trainer.address)
        call_function(w3, ANVIL_KEY_0, application.functions.executeOutput(bytes.fromhex(proven["raw_data"][2:]),
                                                                          proof))
        assert w3.eth.get_balance(trainer.address) - before == 3 * MILLI
    finally:
        fedrollup("chain", "down", "--run-dir", str(tmp_path))
