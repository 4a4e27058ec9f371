"""The FL roles' EIP-712 signatures (issue-13 design §4.1): a trainer signs its `Update`, a validator its
`Receipt`, each with its own key, in the 64-byte compact form the rollup recovers (`dapp.eip712`).

Signing goes through eth-account's typed-data encoder (what a wallet's ``eth_signTypedData_v4`` does), not
through the rollup's own hashing: a digest on which the two disagreed would stop here, on the host, instead of
in the machine, where every such signature would recover a stranger.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from common import accounts
from dapp.eip712 import DOMAIN_NAME, DOMAIN_VERSION, Domain, Receipt, TypedStruct, Update, pack_signature

_DOMAIN_FIELDS = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                  {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]


def typed_data(domain: Domain, message: TypedStruct) -> dict:
    """`message` under `domain` as EIP-712 typed data (the JSON of ``eth_signTypedData_v4``)."""
    name = type(message).__name__
    values = [getattr(message, f.name) for f in dataclasses.fields(message)]  # type: ignore[arg-type]
    fields = [{"name": member, "type": abi_type} for member, abi_type in message.members()]
    body = {member: to_checksum_address(value) if abi_type == "address" else value
            for (member, abi_type), value in zip(message.members(), values)}
    return {"types": {"EIP712Domain": _DOMAIN_FIELDS, name: fields}, "primaryType": name,
            "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": domain.chain_id,
                       "verifyingContract": to_checksum_address(domain.verifying_contract)},
            "message": body}


def sign(private_key: str | bytes, domain: Domain, message: TypedStruct) -> bytes:
    """`message` signed under `domain` by `private_key`: 64 bytes ``r ‖ yParityAndS`` (EIP-2098, low s)."""
    digest = message.digest(domain)  # also checks every field's range (eth-account would pad a short bytes32)
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(domain, message)), private_key)
    if bytes(signed.message_hash) != digest:
        raise RuntimeError(f"eth-account's EIP-712 digest of {message} differs from the rollup's")
    return pack_signature(signed.r, signed.s, signed.v - 27)


@dataclass(frozen=True)
class RollupTask:
    """The rollup task a run records on: what every trainer's `Update` and validator's `Receipt` is about. It
    reaches the trainers in their validator's train config (`train_config`), the only way into a ClientApp."""

    task_id: int
    domain: Domain
    open_rounds: int = 1  # the task's openRounds: a trust task's validators judge round r by the standings after r - K
    trainers: tuple[str, ...] = ()  # trainer t's rollup address, by id, when the trainers hold their own keys (issue
    # 16, `fedrollup manager --trainer-addresses`); empty: each trainer's account of the run's mnemonic

    def trainer_address(self, trainer_id: int, validators: int) -> str:
        """Trainer ``trainer_id``'s address (lowercase): the one the manager was given, else the mnemonic's."""
        if self.trainers:
            return self.trainers[trainer_id].lower()
        return accounts.address(accounts.trainer_index(trainer_id, validators)).lower()

    def train_config(self, group: int) -> dict[str, int | str]:
        return {"task-id": self.task_id, "chain-id": self.domain.chain_id,
                "application": self.domain.verifying_contract, "group": group}

    @classmethod
    def from_train_config(cls, config: Mapping) -> tuple[RollupTask, int] | None:
        """(the task, the trainer's group) from a train config; None when the run records on no rollup."""
        if "task-id" not in config:
            return None
        return (cls(int(config["task-id"]), Domain(int(config["chain-id"]), str(config["application"]))),
                int(config["group"]))

    def update(self, server_round: int, group: int, update_digest: bytes, samples: int) -> Update:
        return Update(task_id=self.task_id, round=server_round, group=group, update_digest=update_digest,
                      samples=samples)

    def receipt(self, server_round: int, trainer: str, update_digest: bytes, samples: int) -> Receipt:
        return Receipt(task_id=self.task_id, round=server_round, trainer=trainer, update_digest=update_digest,
                       samples=samples)
