"""Output encodings exactly as the machine builds them: Notice(bytes), Voucher(address,uint256,bytes),
DelegateCallVoucher(address,bytes) call encodings, and their decoding (bytes in a process, JSON for the reader)."""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class OutputData:
    """What an output carries, as bytes and ints (`decoded_data` is its JSON form)."""

    type: str  # "Notice" | "Voucher" | "DelegateCallVoucher"
    payload: bytes
    destination: str | None = None  # checksummed; vouchers only
    value: int | None = None  # wei; `Voucher` only


def unpack_output(raw: bytes) -> OutputData:
    """Decode an output's call encoding; raises ValueError for an unknown selector."""
    selector, body = raw[:4], raw[4:]
    if selector == NOTICE:
        (payload,) = decode(["bytes"], body)
        return OutputData("Notice", payload)
    if selector == VOUCHER:
        destination, value, payload = decode(["address", "uint256", "bytes"], body)
        return OutputData("Voucher", payload, to_checksum_address(destination), value)
    if selector == DELEGATE_CALL_VOUCHER:
        destination, payload = decode(["address", "bytes"], body)
        return OutputData("DelegateCallVoucher", payload, to_checksum_address(destination))
    raise ValueError(f"unknown output selector 0x{selector.hex()}")


def decoded_data(raw: bytes) -> dict:
    """The reader's `decoded_data` of an output: {"type", "payload"[, "destination", "value"]}."""
    data = unpack_output(raw)
    decoded: dict = {"type": data.type}
    if data.destination is not None:
        decoded["destination"] = data.destination
    if data.value is not None:
        decoded["value"] = hex(data.value)
    decoded["payload"] = "0x" + data.payload.hex()
    return decoded
