"""The cumulative outputs Merkle tree of height 63 (one per application, never reset) and its proofs.

Leaves are keccak256 of the encoded outputs, absent leaves are zero, parent = keccak256(left ‖ right),
as libcmt `merkle.c` and the contracts' `LibMerkle32` define it. An append recomputes only the 63
nodes on the new leaf's path (O(63)); proofs list the 63 siblings bottom-up.
"""
from __future__ import annotations

from eth_utils import keccak

HEIGHT = 63
ZERO_LEAF = bytes(32)


def _zero_hashes() -> list[bytes]:
    """zero[k]: the root of an all-empty subtree of height k."""
    zeros = [ZERO_LEAF]
    for _ in range(HEIGHT):
        zeros.append(keccak(zeros[-1] + zeros[-1]))
    return zeros


ZERO_HASHES = _zero_hashes()
EMPTY_ROOT = ZERO_HASHES[HEIGHT]


class OutputsTree:
    """Append-only Merkle tree over output hashes with root and proofs at any time."""

    def __init__(self, leaves: list[bytes] = ()) -> None:
        # levels[k][i] = hash of the subtree of height k at position i (only non-empty positions are kept).
        self._levels: list[list[bytes]] = [list(leaves)]
        for height in range(HEIGHT):  # bulk build in O(2n) hashes, level by level
            below = self._levels[height] + ([ZERO_HASHES[height]] if len(self._levels[height]) % 2 else [])
            self._levels.append([keccak(below[i] + below[i + 1]) for i in range(0, len(below), 2)])

    def __len__(self) -> int:
        return len(self._levels[0])

    def append(self, leaf: bytes) -> int:
        """Add a leaf (a 32-byte output hash) and return its index."""
        if len(leaf) != 32:
            raise ValueError("a leaf is a 32-byte hash")
        index = len(self._levels[0])
        self._levels[0].append(leaf)
        position, node = index, leaf
        for height in range(HEIGHT):
            sibling = self._node(height, position ^ 1)
            node = keccak(node + sibling) if position % 2 == 0 else keccak(sibling + node)
            position //= 2
            level = self._levels[height + 1]
            if position < len(level):
                level[position] = node
            else:
                level.append(node)
        return index

    def _node(self, height: int, position: int, size: int | None = None) -> bytes:
        """Node at (height, position) of the tree as it was when it held `size` leaves (default: now).

        A subtree wholly below `size` is final and stored; one wholly above is empty; only the one
        straddling `size` is recomputed, so a historical node costs at most O(height).
        """
        first, last = position << height, ((position + 1) << height) - 1
        if size is None or last < size:
            level = self._levels[height]
            return level[position] if position < len(level) else ZERO_HASHES[height]
        if first >= size:
            return ZERO_HASHES[height]
        return keccak(self._node(height - 1, 2 * position, size) + self._node(height - 1, 2 * position + 1, size))

    def root(self, size: int | None = None) -> bytes:
        """The root now, or when the tree held `size` leaves (the root an epoch's claim commits to)."""
        return self._node(HEIGHT, 0, size)

    def proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The 63 sibling hashes of leaf `index`, bottom-up (OutputValidityProof.outputHashesSiblings),
        against `root(size)`."""
        size = len(self) if size is None else size
        if not 0 <= index < size <= len(self):
            raise IndexError(f"no output {index} in a tree of {size}")
        return [self._node(height, (index >> height) ^ 1, size) for height in range(HEIGHT)]


def root_from_proof(leaf: bytes, index: int, siblings: list[bytes]) -> bytes:
    """Recompute the root from a leaf and its proof, as `LibMerkle32.merkleRoot` does on L1."""
    node = leaf
    for height, sibling in enumerate(siblings):
        node = keccak(node + sibling) if (index >> height) % 2 == 0 else keccak(sibling + node)
    return node
