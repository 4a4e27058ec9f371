"""The EVM reader: InputAdded events of the application, in order, decoded from the EvmAdvance blob,
and the application's OutputExecuted events (which voucher was executed, by which transaction)."""
from __future__ import annotations

import logging

from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from rollups_node.model import Input
from rollups_node.repository import Repository

log = logging.getLogger("rollups_node.evmreader")

EVM_ADVANCE = bytes.fromhex("415bf363")
EVM_ADVANCE_TYPES = ["uint256", "address", "address", "uint256", "uint256", "uint256", "uint256", "bytes"]
INPUT_ADDED_TOPIC = "0x" + keccak(text="InputAdded(address,uint256,bytes)").hex()
OUTPUT_EXECUTED_TOPIC = "0x" + keccak(text="OutputExecuted(uint64,bytes)").hex()
MAX_BLOCK_RANGE = 5000


class MalformedInput(ValueError):
    """An InputAdded blob that is not an EvmAdvance call."""


def decode_evm_advance(blob: bytes, epoch_length: int, transaction_reference: str = "") -> Input:
    """Decode `EvmAdvance(chainId, appContract, msgSender, blockNumber, blockTimestamp, prevRandao, index, payload)`."""
    if blob[:4] != EVM_ADVANCE:
        raise MalformedInput(f"input blob starts with 0x{blob[:4].hex()}, not EvmAdvance 0x{EVM_ADVANCE.hex()}")
    chain_id, app, sender, block_number, timestamp, prev_randao, index, payload = decode(EVM_ADVANCE_TYPES, blob[4:])
    return Input(index=index, epoch_index=block_number // epoch_length, block_number=block_number,
                 block_timestamp=timestamp, chain_id=chain_id, app_contract=to_checksum_address(app),
                 sender=to_checksum_address(sender), prev_randao=prev_randao, payload=payload, raw_data=blob,
                 transaction_reference=transaction_reference)


def input_of(entry: dict, epoch_length: int) -> Input:
    """The input an InputAdded log carries (its transaction as the reference)."""
    (blob,) = decode(["bytes"], bytes(entry["data"]))
    item = decode_evm_advance(blob, epoch_length, "0x" + bytes(entry["transactionHash"]).hex())
    item.log_index = entry["logIndex"]
    return item


def read_inputs(w3: Web3, input_box: str, application: str, epoch_length: int, start: int,
                end: int | str) -> list[Input]:
    """The application's inputs added to `input_box` in blocks `start`..`end`, in L1 order."""
    app_topic = "0x" + bytes(12).hex() + to_checksum_address(application)[2:].lower()
    logs = w3.eth.get_logs({"address": to_checksum_address(input_box), "fromBlock": start, "toBlock": end,
                            "topics": [INPUT_ADDED_TOPIC, app_topic]})
    logs = sorted(logs, key=lambda entry: (entry["blockNumber"], entry["logIndex"]))
    return [input_of(entry, epoch_length) for entry in logs]


class EvmReader:
    """Reads new inputs of one application from the InputBox up to the latest block."""

    def __init__(self, w3: Web3, repository: Repository, application: str, input_box: str,
                 epoch_length: int) -> None:
        self.w3, self.repository, self.epoch_length = w3, repository, epoch_length
        self.application = to_checksum_address(application)
        self.input_box = to_checksum_address(input_box)
        self._next_index: int | None = None  # the InputBox index the next event must carry

    def step(self) -> int:
        """Read what is new on L1; return the number of new inputs stored."""
        latest = self.w3.eth.block_number
        start = self.repository.last_read_block() + 1
        stored = 0
        while start <= latest:
            end = min(latest, start + MAX_BLOCK_RANGE - 1)
            inputs = read_inputs(self.w3, self.input_box, self.application, self.epoch_length, start, end)
            self._check_order(inputs)
            executions = self.w3.eth.get_logs({"address": self.application, "fromBlock": start, "toBlock": end,
                                               "topics": [OUTPUT_EXECUTED_TOPIC]})
            self.repository.add_inputs(inputs, end)
            for entry in executions:
                (output_index, _) = decode(["uint64", "bytes"], bytes(entry["data"]))
                self.repository.set_output_executed(output_index, "0x" + bytes(entry["transactionHash"]).hex())
                log.info("output %d executed on L1 by transaction 0x%s", output_index,
                         bytes(entry["transactionHash"]).hex())
            for item in inputs:
                log.debug("input %d read from block %d", item.index, item.block_number)
            stored += len(inputs)
            start = end + 1
        return stored

    def _check_order(self, inputs: list[Input]) -> None:
        if self._next_index is None:
            self._next_index = self.repository.list_inputs(limit=1)[1]
        for item in inputs:
            if item.index != self._next_index:
                raise RuntimeError(f"InputBox gave input {item.index} where {self._next_index} was expected")
            self._next_index += 1
