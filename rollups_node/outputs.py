"""Output encodings exactly as the machine builds them: Notice(bytes), Voucher(address,uint256,bytes),
DelegateCallVoucher(address,bytes) call encodings, and their decoding for the reader."""
from __future__ import annotations

from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

NOTICE = bytes.fromhex("c258d6e5")
VOUCHER = bytes.fromhex("237a816f")
DELEGATE_CALL_VOUCHER = bytes.fromhex("10321e8b")
TYPE_NAMES = {NOTICE: "Notice", VOUCHER: "Voucher", DELEGATE_CALL_VOUCHER: "DelegateCallVoucher"}


def encode_notice(payload: bytes) -> bytes:
    return NOTICE + encode(["bytes"], [payload])


def encode_voucher(destination: str, value: int, payload: bytes) -> bytes:
    return VOUCHER + encode(["address", "uint256", "bytes"], [destination, value, payload])


def encode_delegate_call_voucher(destination: str, payload: bytes) -> bytes:
    return DELEGATE_CALL_VOUCHER + encode(["address", "bytes"], [destination, payload])


def output_hash(raw: bytes) -> bytes:
    """The Merkle leaf of an output."""
    return keccak(raw)


def decode_output(raw: bytes) -> dict:
    """The reader's `decoded_data` of an output: {"type", "payload"[, "destination", "value"]}."""
    selector, body = raw[:4], raw[4:]
    if selector == NOTICE:
        (payload,) = decode(["bytes"], body)
        return {"type": "Notice", "payload": "0x" + payload.hex()}
    if selector == VOUCHER:
        destination, value, payload = decode(["address", "uint256", "bytes"], body)
        return {"type": "Voucher", "destination": to_checksum_address(destination), "value": hex(value),
                "payload": "0x" + payload.hex()}
    if selector == DELEGATE_CALL_VOUCHER:
        destination, payload = decode(["address", "bytes"], body)
        return {"type": "DelegateCallVoucher", "destination": to_checksum_address(destination),
                "payload": "0x" + payload.hex()}
    raise ValueError(f"unknown output selector 0x{selector.hex()}")
