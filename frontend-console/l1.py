"""The console's L1 side: send inputs, validate notices and execute vouchers on the Application contract,
and read the inputs straight from the InputBox (an auditor does not take them from the node)."""
from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError

from contracts_config.deployment import Deployment
from contracts_config.transactions import call_function, connect
from common.errors import ConfigError
from rollups_node.evmreader import INPUT_ADDED_TOPIC, decode_evm_advance

# Application errors worth naming (cartesi-rollups-v2.md §2).
KNOWN_ERRORS = {"0x44a192ff": "InvalidOutputsMerkleRoot: the proof does not lead to a claim accepted on L1",
                "0xba58bd36": "InvalidOutputHashesSiblingsArrayLength",
                "0xd284c01e": "OutputNotExecutable: notices can be validated, not executed",
                "0x7b97a6bb": "OutputNotReexecutable: this voucher was already executed"}


def explain(err: Exception) -> str:
    text = str(err)
    for selector, meaning in KNOWN_ERRORS.items():
        if selector in text:
            return meaning
    return text


@dataclass(frozen=True)
class L1Input:
    """One input as the InputBox recorded it, checked against its on-chain hash."""

    index: int
    sender: str
    block_number: int
    block_timestamp: int
    prev_randao: int
    chain_id: int
    app_contract: str
    payload: bytes


class L1:
    def __init__(self, rpc_url: str | None, deployment: Deployment | None) -> None:
        if not rpc_url:
            raise ConfigError("no L1 RPC URL: pass --rpc URL or use a deployment file")
        if deployment is None:
            raise ConfigError("L1 commands need the contract addresses: pass --deployment FILE "
                             "(written by `fedrollup chain deploy`)")
        self.w3: Web3 = connect(rpc_url)
        self.deployment = deployment
        self.application = self.w3.eth.contract(address=Web3.to_checksum_address(deployment.application),
                                                abi=deployment.abi("Application"))
        self.input_box = self.w3.eth.contract(address=Web3.to_checksum_address(deployment.input_box),
                                              abi=deployment.abi("InputBox"))

    def add_input(self, key: str, payload: bytes) -> int:
        """`InputBox.addInput(app, payload)` from `key`'s account; returns the input's index."""
        fn = self.input_box.functions.addInput(self.application.address, payload)
        receipt = call_function(self.w3, key, fn)
        event = self.input_box.events.InputAdded().process_receipt(receipt)[0]
        return int(event["args"]["index"])

    def validate_output(self, raw_output: bytes, index: int, siblings: list[bytes]) -> str | None:
        """None when `Application.validateOutput` accepts the output and its proof, else why it reverted."""
        try:
            self.application.functions.validateOutput(raw_output, (index, siblings)).call()
            return None
        except (ContractLogicError, ValueError) as err:
            return explain(err)

    def execute_output(self, key: str, raw_output: bytes, index: int, siblings: list[bytes]) -> str:
        """`Application.executeOutput` from `key`'s account; returns the transaction hash."""
        fn = self.application.functions.executeOutput(raw_output, (index, siblings))
        try:
            self.application.functions.executeOutput(raw_output, (index, siblings)).call(
                {"from": self.w3.eth.account.from_key(key).address})
        except (ContractLogicError, ValueError) as err:
            raise ConfigError(f"output {index} cannot be executed: {explain(err)}") from None
        receipt = call_function(self.w3, key, fn)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def was_executed(self, index: int) -> bool:
        return bool(self.application.functions.wasOutputExecuted(index).call())

    def inputs(self) -> list[L1Input]:
        """Every input of the application from the InputBox's events, each checked against getInputHash."""
        app_topic = "0x" + bytes(12).hex() + self.application.address[2:].lower()
        logs = self.w3.eth.get_logs({"address": self.input_box.address, "topics": [INPUT_ADDED_TOPIC, app_topic],
                                     "fromBlock": self.deployment.input_box_block, "toBlock": "latest"})
        logs = sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]))
        out: list[L1Input] = []
        for expected, entry in enumerate(logs):
            (blob,) = decode(["bytes"], bytes(entry["data"]))
            item = decode_evm_advance(blob, self.deployment.epoch_length)
            if item.index != expected:
                raise ConfigError(f"the InputBox events skip from input {expected - 1} to {item.index}")
            on_chain = bytes(self.input_box.functions.getInputHash(self.application.address, item.index).call())
            if on_chain != keccak(blob):
                raise ConfigError(f"input {item.index}: the event's data does not hash to the InputBox's record")
            out.append(L1Input(index=item.index, sender=item.sender, block_number=item.block_number,
                               block_timestamp=item.block_timestamp, prev_randao=item.prev_randao,
                               chain_id=item.chain_id, app_contract=item.app_contract, payload=item.payload))
        return out

    def mine(self, blocks: int) -> None:
        """Dev chains only (anvil): mine `blocks` blocks now, so that the current epoch can close."""
        try:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        except Exception as err:  # a real chain refuses: the caller waits instead
            raise ConfigError(f"this chain cannot mine on demand ({err}); wait for the epoch to close") from None
