"""The rollup's outputs, typed: the output's bytes and proof, what it carries, and the fedrollup notice in it.

One decoder for every reader (the FL roles, the manager host, the console, the audit): `decode_output` on the
output's bytes, which unpacks the machine's call encoding (`rollups_node.outputs`) and the notice's payload
(`dapp.schema.decode_notice`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dapp.schema import Message, MessageDecodeError, decode_notice
from rollups_node.outputs import unpack_output


@dataclass(frozen=True)
class RollupOutput:
    index: int
    input_index: int
    epoch_index: int
    type: str  # "Notice" | "Voucher" | "DelegateCallVoucher"
    raw: bytes  # the output as the machine emitted it (what L1 validates and executes)
    payload: bytes
    destination: str | None = None  # checksummed; vouchers only
    value: int | None = None  # wei; Voucher only
    siblings: list[bytes] | None = field(repr=False, default=None)  # the proof, once the epoch's claim is computed
    message: Message | None = field(repr=False, default=None)  # the dapp.schema notice
    error: str | None = None  # why a notice's payload is not a fedrollup notice

    @property
    def name(self) -> str:
        """The fedrollup notice's name, the voucher's type, or "?" for a notice this client cannot decode."""
        if self.message is not None:
            return type(self.message).__name__
        return "?" if self.type == "Notice" else self.type


def decode_output(raw: bytes, index: int = 0, input_index: int = 0, epoch_index: int = 0,
                  siblings: list[bytes] | None = None) -> RollupOutput:
    """Output `raw` decoded down to the fedrollup message it carries (raises ValueError for an unknown selector)."""
    data = unpack_output(raw)
    message, error = None, None
    if data.type == "Notice":
        try:
            message = decode_notice(data.payload)
        except MessageDecodeError as err:
            error = str(err)
    return RollupOutput(index=index, input_index=input_index, epoch_index=epoch_index, type=data.type, raw=raw,
                        payload=data.payload, destination=data.destination, value=data.value, siblings=siblings,
                        message=message, error=error)
