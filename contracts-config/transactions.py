"""Sending a signed L1 transaction from a role's own private key and waiting for its receipt."""
from __future__ import annotations

from typing import Any

from eth_account import Account
from web3 import Web3

from common.errors import ConfigError


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A web3 connection to `rpc_url`, or a one-line error when nothing answers there."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    if not w3.is_connected():
        raise ConfigError(f"no Ethereum JSON-RPC node answers at {rpc_url}")
    return w3


def address_of(private_key: str) -> str:
    return Account.from_key(private_key).address


def send_transaction(w3: Web3, private_key: str, tx: dict[str, Any], wait: bool = True) -> Any:
    """Fill nonce, gas and chain id, sign with `private_key`, send; return the receipt (or the hash).

    Raises RuntimeError when the transaction is mined but reverted.
    """
    sender = Account.from_key(private_key).address
    tx = dict(tx)
    tx.setdefault("from", sender)
    tx.setdefault("chainId", w3.eth.chain_id)
    tx.setdefault("nonce", w3.eth.get_transaction_count(sender, "pending"))
    tx.setdefault("value", 0)
    if "gas" not in tx:
        tx["gas"] = int(w3.eth.estimate_gas(tx) * 1.2) + 10_000
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        base = w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        tip = 1_000_000_000
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = 2 * base + tip
    signed = w3.eth.account.sign_transaction(tx, private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    if not wait:
        return tx_hash
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def call_function(w3: Web3, private_key: str, fn: Any, value: int = 0, wait: bool = True,
                  tip: int | None = None) -> Any:
    """Send the contract call `fn` (a bound web3 ContractFunction) from `private_key`'s account; `tip` (wei
    per gas) sets the priority fee, which orders transactions inside a block (default: the node's)."""
    sender = Account.from_key(private_key).address
    nonce = w3.eth.get_transaction_count(sender, "pending")
    params: dict[str, Any] = {"from": sender, "value": value, "nonce": nonce}
    if tip is not None:
        base = w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        params.update(maxPriorityFeePerGas=tip, maxFeePerGas=2 * base + tip)
    tx = fn.build_transaction(params)
    return send_transaction(w3, private_key, tx, wait=wait)
