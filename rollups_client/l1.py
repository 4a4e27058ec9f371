"""The rollup's L1 side, for every role and the auditors: send inputs (InputBox.addInput) and Ether deposits
(EtherPortal) from a role's own key, read the inputs straight from the InputBox (checked against its hashes),
validate notices and execute vouchers on the Application contract, and read who settles the application's
claims (`consensus_info`) and how each member voted on each epoch (`claims`), from L1 alone."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound

from common.errors import ConfigError, FedrollupError
from contracts_config import artifacts
from contracts_config.deploy import CANONICAL_ADDRESSES
from contracts_config.deployment import Deployment
from contracts_config.transactions import address_of, call_function, connect, send_transaction
from rollups_node.evmreader import read_inputs
from rollups_node.model import Input

RECEIPT_TIMEOUT = 120  # seconds to wait for a transaction to be mined
DROPPED_AFTER_S = 5.0  # seconds a sent transaction may be unknown to L1 before it counts as dropped
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


class Dropped(FedrollupError):
    """L1 no longer knows a transaction it had accepted (neither mined nor pending): it was never executed, so
    sending its call again cannot repeat it. Seen with anvil under a burst of large inputs from many keys (a
    1,000-trainer run's contests)."""


@dataclass(frozen=True)
class ConsensusInfo:
    """Who settles the application's claims, as L1 says (not the deployment file)."""

    validator: str  # the Application's current outputs Merkle root validator
    type: str  # "QUORUM" (it supports IQuorum) or "AUTHORITY"
    members: tuple[str, ...]  # the Quorum's members in ID order (ID = position + 1); an Authority: its owner
    epoch_length: int  # the consensus's
    app_owner: str  # the Application's owner (the zero address once renounced)
    migrations: tuple[str, ...]  # every validator the Application was switched to after its deployment
    factory: str | None = None  # the QuorumFactory checked (a Quorum only)
    factory_code_matches: bool | None = None  # its runtime code is the 2.2.0 artifact's deployedBytecode
    factory_predicts_validator: bool | None = None  # calculateQuorumAddress(members, epoch length, 0) = validator

    @property
    def is_quorum(self) -> bool:
        return self.type == "QUORUM"

    @property
    def majority(self) -> int:
        """How many members must vote the same root for it to be accepted (1 + n/2; an Authority: 1)."""
        return len(self.members) // 2 + 1


@dataclass
class EpochClaims:
    """What the consensus recorded for the epoch ending at block `last_block`."""

    last_block: int
    accepted: list[bytes] = field(default_factory=list)  # the roots of its ClaimAccepted events (one, or none yet)
    votes: dict[str, bytes] = field(default_factory=dict)  # member (checksum address) -> the root it submitted

    @property
    def accepted_root(self) -> bytes | None:
        return self.accepted[0] if self.accepted else None

    def voters_of(self, root: bytes) -> list[str]:
        return [member for member, voted in self.votes.items() if voted == root]


def settled_epochs(claims: dict[int, EpochClaims], epoch_length: int) -> set[int]:
    """The indices of the epochs whose root the consensus accepted on L1 (`claims`: `L1.claims()`)."""
    return {last // epoch_length for last, claim in claims.items() if claim.accepted}


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

    def gas_limit(self) -> int:
        """The gas limit of L1's latest block: what one block's inputs may cost in all (`l1_capacity`)."""
        return int(self.w3.eth.get_block("latest")["gasLimit"])

    def block_time(self, span: int = 16) -> float:
        """L1's seconds per block over its last `span` blocks (from their timestamps; 1.0 on a chain without a block
        after its genesis): how long the rollup's deadlines, counted in blocks, last."""
        latest = self.w3.eth.get_block("latest")
        back = min(span, int(latest["number"]))
        if back < 1:
            return 1.0
        earlier = self.w3.eth.get_block(int(latest["number"]) - back)
        return max(int(latest["timestamp"]) - int(earlier["timestamp"]), 1) / back

    def input_count(self) -> int:
        """How many inputs the application's InputBox holds (a node that processed as many has read them all)."""
        return self.input_box.functions.getNumberOfInputs(self.application.address).call()

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
        """Wait for `tx_hash` to be mined; raise Reverted if it reverted, Dropped if L1 forgot it for
        `DROPPED_AFTER_S` seconds in a row (pending transactions stay known)."""
        deadline, unknown_since, looked = time.monotonic() + RECEIPT_TIMEOUT, None, 0.0
        while True:
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
                break
            except TransactionNotFound:
                pass
            now = time.monotonic()
            if now - looked >= 0.5:  # is it still pending? asked twice a second, not at every poll
                looked = now
                try:
                    self.w3.eth.get_transaction(tx_hash)
                    unknown_since = None
                except TransactionNotFound:
                    unknown_since = unknown_since if unknown_since is not None else now
                    if now - unknown_since >= DROPPED_AFTER_S:
                        raise Dropped(f"transaction {bytes(tx_hash).hex()} is neither mined nor pending on L1") \
                            from None
            if now > deadline:
                raise ConfigError(f"transaction {bytes(tx_hash).hex()} was not mined within {RECEIPT_TIMEOUT} s")
            time.sleep(0.05)
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

    # ------------------------------------------------------------------ settlement
    def _contract(self, address: str, name: str) -> Any:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.abi(name))

    def validator(self) -> tuple[Any, bool]:
        """The Application's current outputs Merkle root validator (a contract with its kind's ABI), and whether
        it is a Quorum (ERC-165: it supports IQuorum)."""
        address = self.application.functions.getOutputsMerkleRootValidator().call()
        probe = self._contract(address, "Quorum")
        try:
            is_quorum = bool(probe.functions.supportsInterface(artifacts.IQUORUM_INTERFACE_ID).call())
        except (ContractLogicError, ValueError):
            is_quorum = False
        return (probe if is_quorum else self._contract(address, "Authority")), is_quorum

    def consensus_info(self) -> ConsensusInfo:
        """The validator's kind, members and epoch length, the Application's owner, whether the Application was
        ever switched to another validator, and for a Quorum whether the canonical 2.2.0 QuorumFactory made it."""
        validator, is_quorum = self.validator()
        fn = validator.functions
        epoch_length = fn.getEpochLength().call()
        members = (tuple(fn.validatorById(i).call() for i in range(1, fn.numOfValidators().call() + 1))
                   if is_quorum else (fn.owner().call(),))
        changed = self.application.events.OutputsMerkleRootValidatorChanged().get_logs(
            from_block=self.deployment.deployment_block)
        info = ConsensusInfo(
            validator=validator.address, type="QUORUM" if is_quorum else "AUTHORITY", members=members,
            epoch_length=epoch_length, app_owner=self.application.functions.owner().call(),
            migrations=tuple(e["args"]["newOutputsMerkleRootValidator"] for e in changed))
        if not is_quorum:
            return info
        address = self.deployment.contracts.get("QuorumFactory", CANONICAL_ADDRESSES["QuorumFactory"])
        factory = self._contract(address, "QuorumFactory")
        code = bytes(self.w3.eth.get_code(factory.address))
        expected = artifacts.load_artifact("QuorumFactory")["deployedBytecode"]["object"].removeprefix("0x")
        matches = bool(code) and code == bytes.fromhex(expected)
        predicted = (factory.functions.calculateQuorumAddress(list(members), epoch_length, bytes(32)).call()
                     if matches else None)
        return replace(info, factory=factory.address, factory_code_matches=matches,
                       factory_predicts_validator=predicted == validator.address)

    def claims(self) -> dict[int, EpochClaims]:
        """Every claim submitted to and accepted by the application's current validator since the application's
        deployment, by the epoch's last block (`lastProcessedBlockNumber`), in block order."""
        (validator, _), app = self.validator(), self.application.address
        found: dict[int, EpochClaims] = {}
        start = self.deployment.deployment_block
        for event in (validator.events.ClaimSubmitted, validator.events.ClaimAccepted):
            for entry in sorted(event().get_logs(argument_filters={"appContract": app}, from_block=start),
                                key=lambda e: (e["blockNumber"], e["logIndex"])):
                args = entry["args"]
                epoch = found.setdefault(args["lastProcessedBlockNumber"],
                                         EpochClaims(args["lastProcessedBlockNumber"]))
                root = bytes(args["outputsMerkleRoot"])
                if "submitter" in args:
                    epoch.votes.setdefault(args["submitter"], root)
                else:
                    epoch.accepted.append(root)
        return dict(sorted(found.items()))

    def mine(self, blocks: int) -> None:
        """Dev chains only (anvil): mine `blocks` blocks now, so that the current epoch can close."""
        try:
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        except Exception as err:  # a real chain refuses: the caller waits instead
            raise ConfigError(f"this chain cannot mine on demand ({err}); wait for the epoch to close") from None
