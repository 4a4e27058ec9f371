"""The rollup's L1 side, for every role and the auditors: send inputs (InputBox.addInput) and Ether deposits
(EtherPortal) from a role's own key, read the inputs straight from the InputBox (checked against its hashes),
and validate notices and execute vouchers on the Application contract."""
from __future__ import annotations

from typing import Any

from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError

from common.errors import ConfigError, FedrollupError
from contracts_config.deployment import Deployment
from contracts_config.transactions import address_of, call_function, connect, send_transaction
from rollups_node.evmreader import read_inputs
from rollups_node.model import Input

RECEIPT_TIMEOUT = 120  # seconds to wait for a transaction to be mined
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


class Reverted(FedrollupError):
    """A transaction was mined but reverted."""


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
        self.portal = self.w3.eth.contract(address=Web3.to_checksum_address(deployment.ether_portal),
                                           abi=deployment.abi("EtherPortal"))

    # ------------------------------------------------------------------ sending
    @staticmethod
    def address(key: str) -> str:
        """The lowercase address of private key `key`."""
        return address_of(key).lower()

    def balance(self, address: str) -> int:
        return self.w3.eth.get_balance(Web3.to_checksum_address(address))

    def block_number(self) -> int:
        """L1's latest block number (the rollup's clock: an input's deadline is a block number)."""
        return self.w3.eth.block_number

    @property
    def priority_fee(self) -> int:
        """The chain's suggested priority fee (wei per gas)."""
        return self.w3.eth.max_priority_fee

    def send_input(self, key: str, payload: bytes, tip: int | None = None) -> Any:
        """Send `InputBox.addInput(app, payload)` from `key`'s account, at priority fee `tip` (default: the
        node's); returns the transaction hash without waiting (see `input_index`)."""
        fn = self.input_box.functions.addInput(self.application.address, payload)
        return call_function(self.w3, key, fn, wait=False, tip=tip)

    def send_deposit(self, key: str, value: int, data: bytes) -> Any:
        """Send `EtherPortal.depositEther(app, data)` with `value` wei; returns the transaction hash."""
        fn = self.portal.functions.depositEther(self.application.address, data)
        return call_function(self.w3, key, fn, value=value, wait=False)

    def send_ether(self, key: str, to: str, value: int) -> Any:
        """Send `value` wei from `key`'s account to `to`; returns the transaction hash."""
        return send_transaction(self.w3, key, {"to": Web3.to_checksum_address(to), "value": value, "gas": 21_000},
                                wait=False)

    def receipt(self, tx_hash: Any) -> Any:
        """Wait for `tx_hash` to be mined; raise Reverted if it reverted."""
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT, poll_latency=0.05)
        if receipt["status"] != 1:
            raise Reverted(f"transaction {bytes(tx_hash).hex()} reverted on L1")
        return receipt

    def input_index(self, tx_hash: Any) -> int:
        """The index of the input that the `send_input` transaction `tx_hash` added, once it is mined."""
        events = self.input_box.events.InputAdded().process_receipt(self.receipt(tx_hash))
        return int(events[0]["args"]["index"])

    def add_input(self, key: str, payload: bytes) -> int:
        """`InputBox.addInput(app, payload)` from `key`'s account; returns the input's index."""
        return self.input_index(self.send_input(key, payload))

    # ------------------------------------------------------------------ reading and proving
    def inputs(self) -> list[Input]:
        """Every input of the application from the InputBox's events, each checked against getInputHash."""
        inputs = read_inputs(self.w3, self.input_box.address, self.application.address,
                             self.deployment.epoch_length, self.deployment.input_box_block, "latest")
        for expected, item in enumerate(inputs):
            if item.index != expected:
                raise ConfigError(f"the InputBox events skip from input {expected - 1} to {item.index}")
            on_chain = bytes(self.input_box.functions.getInputHash(self.application.address, item.index).call())
            if on_chain != keccak(item.raw_data):
                raise ConfigError(f"input {item.index}: the event's data does not hash to the InputBox's record")
        return inputs

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
            fn.call({"from": address_of(key)})
        except (ContractLogicError, ValueError) as err:
            raise ConfigError(f"output {index} cannot be executed: {explain(err)}") from None
        receipt = call_function(self.w3, key, fn)
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def mine(self, blocks: int) -> None:
        """Dev chains only (anvil): mine `blocks` blocks now, so that the current epoch can close."""
        try:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        except Exception as err:  # a real chain refuses: the caller waits instead
            raise ConfigError(f"this chain cannot mine on demand ({err}); wait for the epoch to close") from None
