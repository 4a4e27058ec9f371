"""The rollup HTTP JSON of an advance request (the ``data`` of ``advance_state``), both ways.

This is the machine's edge, where numbers and bytes travel as JSON and ``0x`` hex: the backend parses what
the rollup server hands it, and the host-mode node encodes what it hands the backend.
"""
from __future__ import annotations

from typing import Any

from dapp.rollup_client import from_hex, to_hex
from dapp.schema import normalize_address
from dapp.state import Advance


def _int(value: Any) -> int:
    """Metadata numbers arrive as JSON numbers from the real server; accept hex strings too."""
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    return int(value)


def _randao(value: Any) -> bytes:
    raw = _int(value).to_bytes(32, "big") if isinstance(value, int) else from_hex(value)
    if len(raw) > 32:
        raise ValueError(f"prev_randao of {len(raw)} bytes")
    return raw.rjust(32, b"\0")


def parse_advance(data: dict[str, Any]) -> Advance:
    """An `Advance` from the ``data`` of an ``advance_state`` request (v2 metadata)."""
    meta = data["metadata"]
    return Advance(msg_sender=normalize_address(meta["msg_sender"]), payload=from_hex(data["payload"]),
                   input_index=_int(meta["input_index"]), block_number=_int(meta.get("block_number", 0)),
                   block_timestamp=_int(meta.get("block_timestamp", 0)),
                   prev_randao=_randao(meta.get("prev_randao", "0x")), chain_id=_int(meta.get("chain_id", 0)),
                   app_contract=normalize_address(meta.get("app_contract") or "0x" + "00" * 20))


def encode_advance(advance: Advance) -> dict[str, Any]:
    """The ``data`` of the ``advance_state`` request that carries `advance` (the inverse of `parse_advance`)."""
    metadata = {"chain_id": advance.chain_id, "app_contract": advance.app_contract, "msg_sender": advance.msg_sender,
                "block_number": advance.block_number, "block_timestamp": advance.block_timestamp,
                "prev_randao": to_hex(advance.prev_randao), "input_index": advance.input_index}
    return {"metadata": metadata, "payload": to_hex(advance.payload)}
