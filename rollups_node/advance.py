"""An input read from the InputBox as the rollup's rules receive it: the node's advancer hands it to the
backend, and an auditor replays it through `dapp.state.apply`, from the same `Advance`."""
from __future__ import annotations

from dapp.schema import normalize_address
from dapp.state import Advance
from rollups_node.model import Input


def advance_of(item: Input) -> Advance:
    """The v2 advance request of `item` (addresses lowercase, prev_randao as 32 bytes, as the machine)."""
    return Advance(msg_sender=normalize_address(item.sender), payload=item.payload, input_index=item.index,
                   block_number=item.block_number, block_timestamp=item.block_timestamp,
                   prev_randao=item.prev_randao.to_bytes(32, "big"), chain_id=item.chain_id,
                   app_contract=normalize_address(item.app_contract))
