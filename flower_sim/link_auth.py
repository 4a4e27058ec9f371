"""Who may post to the manager link: each validator signs its POSTs with its own Ethereum key (EIP-191).

Why: the manager averages the models the validators post. Unauthenticated, anyone who reaches the manager's port
could post a model as validator v (the manager would average it; the run then stops when the rollup's global model,
made from the validators' own reveals, differs: a denial of service), fill a round with posts from validators that do
not exist, or replay a post of an earlier run. A signature covers the run (`run_id`, random, made by the manager when
it starts and served at GET /run), the method and the path (the round and the validator), and the body's keccak; the
manager accepts a POST only when its signer is validator v's address: the address the task names on the rollup.
"""
from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

HEADER = "X-Fedrollup-Signature"
DOMAIN = b"fedrollup manager link v1\n"


def link_message(run_id: str, method: str, path: str, body: bytes) -> bytes:
    """The bytes a validator signs for one request: the run, the request line and the body's digest."""
    return DOMAIN + f"{run_id}\n{method} {path}\n".encode() + keccak(body)


def sign_request(key: str, run_id: str, method: str, path: str, body: bytes) -> str:
    """The `HEADER` value for a request signed by `key` (0x-hex, 65 bytes)."""
    signed = Account.sign_message(encode_defunct(primitive=link_message(run_id, method, path, body)), key)
    return "0x" + bytes(signed.signature).hex()


def request_signer(signature: str, run_id: str, method: str, path: str, body: bytes) -> str:
    """The lower-case address that signed the request; ValueError for a signature that is not one."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65:
            raise ValueError(f"{len(raw)} bytes, not 65")
        return Account.recover_message(encode_defunct(primitive=link_message(run_id, method, path, body)),
                                       signature=raw).lower()
    except Exception as err:  # eth_keys raises its own error types for a malformed signature
        raise ValueError(f"not a signature: {err}") from None
