"""With the real backend (`python -m dapp`): a deposit, then Withdraw(); the voucher pays Ether on L1 once.

Both amounts have an odd number of hex digits (1 ETH: 15, 0.001 ETH: 13), which the real rollup-http-server's
hex decoder refuses: the voucher's value must go as 32 bytes, or the Withdraw input ends as EXCEPTION."""
from __future__ import annotations

import pytest
from web3.exceptions import ContractLogicError

from contracts_config.transactions import call_function, connect
from dapp.schema import Withdraw
from node_fixtures import (DAPP_BACKEND, DEV_KEYS, add_input, claimed, deposit_ether, fresh_deployment, node_process,
                           outputs_of, processed, proof_of, rpc, running_anvil, wait_until)

pytestmark = pytest.mark.slow
ONE_ETHER = 10**18


@pytest.fixture(scope="module")
def dapp_node(tmp_path_factory):
    """One chain and one node with the real backend for both amounts: each withdraws what it deposited."""
    with running_anvil() as chain:
        deployment = fresh_deployment(chain)
        with node_process(deployment, tmp_path_factory.mktemp("node"), backend=DAPP_BACKEND) as (url, _):
            yield deployment, url


@pytest.mark.parametrize("amount", [ONE_ETHER, 10**15])
def test_a_withdraw_voucher_moves_the_ether_once(dapp_node, amount):
    deployment, url = dapp_node
    w3 = connect(deployment.rpc_url)
    depositor = w3.eth.account.from_key(DEV_KEYS[2]).address
    app = w3.eth.contract(address=deployment.application, abi=deployment.abi("Application"))
    inputs, held = processed(url, "fedrollup"), w3.eth.get_balance(deployment.application)
    earlier = len(outputs_of(url, "fedrollup", output_type="0x237a816f"))
    deposit_ether(deployment, amount, key=DEV_KEYS[2])
    add_input(deployment, Withdraw().encode(), key=DEV_KEYS[2])
    wait_until(lambda: processed(url, "fedrollup") == inputs + 2, 60, "the deposit and the withdrawal processed")
    statuses = [i["status"] for i in rpc(url, "cartesi_listInputs", application="fedrollup")["data"]]
    assert statuses[inputs:] == ["ACCEPTED", "ACCEPTED"]
    vouchers = outputs_of(url, "fedrollup", output_type="0x237a816f")[earlier:]
    assert len(vouchers) == 1
    voucher = vouchers[0]
    assert voucher["decoded_data"]["destination"].lower() == depositor.lower()
    assert int(voucher["decoded_data"]["value"], 16) == amount
    wait_until(lambda: claimed(url, "fedrollup", int(voucher["index"], 16) + 1), 30, "the voucher's claim")
    voucher = outputs_of(url, "fedrollup", output_type="0x237a816f")[earlier]

    raw, proof = bytes.fromhex(voucher["raw_data"][2:]), proof_of(voucher)
    before = w3.eth.get_balance(depositor)
    assert w3.eth.get_balance(deployment.application) == held + amount
    receipt = call_function(w3, DEV_KEYS[3], app.functions.executeOutput(raw, proof))  # anyone may
    assert w3.eth.get_balance(depositor) - before == amount
    assert w3.eth.get_balance(deployment.application) == held
    assert app.functions.wasOutputExecuted(proof[0]).call()
    with pytest.raises(ContractLogicError):
        app.functions.executeOutput(raw, proof).call({"from": w3.eth.account.from_key(DEV_KEYS[3]).address})
    executed = wait_until(lambda: rpc(url, "cartesi_getOutput", application="fedrollup",
                                      output_index=voucher["index"])["data"]["execution_transaction_hash"],
                          10, "the node to see the execution")
    assert executed == "0x" + bytes(receipt["transactionHash"]).hex()
