"""Ethereum accounts of every role, derived from a mnemonic by index (BIP-44 m/44'/60'/0'/0/i).

On the dev chain the mnemonic is anvil's well-known "test test … junk"; a user gives their own mnemonic
(or one private key per role) in production. The index layout used by `fedrollup demo` is documented in
the README: 0 owns the contracts and submits claims, 1 is the manager (task publisher), then one per
validator, then one per trainer.

Quorum members vote on epochs with their own claim keys, BIP-44 account 1' (m/44'/60'/1'/0/i for member
i+1), never with their role key: a role's FL process sends inputs while its node sends claims, and two
processes filling nonces from one account collide.
"""
from __future__ import annotations

import functools
import os

from eth_account import Account

DEV_MNEMONIC = "test test test test test test test test test test test junk"
MNEMONIC_ENV = "FEDROLLUP_MNEMONIC"

OWNER_INDEX = 0
MANAGER_INDEX = 1
CLAIMER_BIP44_ACCOUNT = 1
ROLE_OFFSET_ENV = "FEDROLLUP_ROLE_OFFSET"  # a market run's publisher k: its roles' indices shifted past the others'
BROKER_BIP44_ACCOUNT = 2  # the market's broker (issue 15): receives its fees by voucher, never sends a transaction


def mnemonic() -> str:
    return os.environ.get(MNEMONIC_ENV) or DEV_MNEMONIC


@functools.lru_cache(maxsize=8192)  # a 1,000-trainer run asks each key several times; one derivation is ~5 ms
def private_key(index: int, phrase: str | None = None, bip44_account: int = 0) -> str:
    """The 0x-hex private key of account `index` of `phrase` (default $FEDROLLUP_MNEMONIC or the dev one)."""
    if index < 0:
        raise ValueError(f"account index must be >= 0, got {index}")
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(phrase or mnemonic(), account_path=f"m/44'/60'/{bip44_account}'/0/{index}")
    return "0x" + bytes(account.key).hex()


def claimer_key(member: int, phrase: str | None = None) -> str:
    """The claim key of Quorum member `member` (1-based, the contract's validator ID)."""
    if member < 1:
        raise ValueError(f"Quorum members are numbered from 1, got {member}")
    return private_key(member - 1, phrase, bip44_account=CLAIMER_BIP44_ACCOUNT)


def claimer_address(member: int, phrase: str | None = None) -> str:
    return Account.from_key(claimer_key(member, phrase)).address


def broker_address(phrase: str | None = None) -> str:
    """The market's broker in the dev layout (m/44'/60'/2'/0/0): no other role's key, so its L1 balance moves only
    by the fees paid to it."""
    return Account.from_key(private_key(0, phrase, bip44_account=BROKER_BIP44_ACCOUNT)).address


def address(index: int, phrase: str | None = None) -> str:
    return Account.from_key(private_key(index, phrase)).address


def role_offset() -> int:
    """How far this process's roles are shifted in the layout ($FEDROLLUP_ROLE_OFFSET, default 0): in `fedrollup demo
    --tasks N` each publisher's process runs a federation of its own with keys no other publisher's uses."""
    return int(os.environ.get(ROLE_OFFSET_ENV) or 0)


def manager_index() -> int:
    return MANAGER_INDEX + role_offset()


def validator_index(group: int) -> int:
    return manager_index() + 1 + group


def trainer_index(trainer: int, validators: int) -> int:
    return manager_index() + 1 + validators + trainer
