"""The official EtherPortal's deposit input: packed ``sender(20) ‖ value(32) ‖ execLayerData``.

Cartesi Rollups 2.x ``InputEncoding.encodeEtherDeposit`` packs the payload (it is not ABI-encoded).
The backend learns the portal's address from ``FEDROLLUP_ETHER_PORTAL``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from dapp.schema import normalize_address

# EtherPortal of @cartesi/rollups 2.2.0 at its canonical CREATE2 address (salt 0, deterministic deployer).
CANONICAL_ETHER_PORTAL = "0xA632c5c05812c6a6149B7af5C56117d1D2603828"
ETHER_PORTAL_ENV = "FEDROLLUP_ETHER_PORTAL"
HEADER_SIZE = 20 + 32


class MalformedDeposit(ValueError):
    """A portal payload too short to carry a sender and a value."""


@dataclass(frozen=True)
class EtherDeposit:
    sender: str  # lowercase 0x address of whoever called depositEther
    value: int  # wei now held by the Application contract
    exec_layer_data: bytes


def ether_portal_address(environ: dict[str, str] | None = None) -> str:
    """The EtherPortal address the backend trusts, lowercase (env override or the canonical one)."""
    env = os.environ if environ is None else environ
    return normalize_address(env.get(ETHER_PORTAL_ENV) or CANONICAL_ETHER_PORTAL)


def encode_ether_deposit(sender: str, value: int, exec_layer_data: bytes = b"") -> bytes:
    """The payload the EtherPortal sends (tests and benchmarks; on L1 the portal builds it)."""
    return bytes.fromhex(normalize_address(sender)[2:]) + value.to_bytes(32, "big") + exec_layer_data


def decode_ether_deposit(payload: bytes) -> EtherDeposit:
    if len(payload) < HEADER_SIZE:
        raise MalformedDeposit(f"EtherPortal payload of {len(payload)} bytes is shorter than "
                               f"sender(20) + value(32)")
    return EtherDeposit(sender="0x" + payload[:20].hex(),
                        value=int.from_bytes(payload[20:52], "big"),
                        exec_layer_data=bytes(payload[52:]))
