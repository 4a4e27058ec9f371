"""The outputs Merkle tree against a naive full-tree implementation, and the output encodings."""
from __future__ import annotations

import os

from eth_abi import encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from rollups_node.merkle import EMPTY_ROOT, HEIGHT, OutputsTree, root_from_proof
from rollups_node.outputs import decoded_data, encode_delegate_call_voucher, encode_notice, encode_voucher


def naive_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the height-63 tree, padding each level with the empty subtree's hash."""
    levels, zero = [list(leaves)], bytes(32)
    for _ in range(HEIGHT):
        below = levels[-1] + ([zero] if len(levels[-1]) % 2 else [])
        levels.append([keccak(below[i] + below[i + 1]) for i in range(0, len(below), 2)] or [])
        zero = keccak(zero + zero)
    return levels


def naive_root(leaves: list[bytes]) -> bytes:
    zero = bytes(32)
    for _ in range(HEIGHT):
        zero = keccak(zero + zero)
    top = naive_levels(leaves)[-1]
    return top[0] if top else zero


def naive_proof(leaves: list[bytes], index: int) -> list[bytes]:
    levels, zero, proof = naive_levels(leaves), bytes(32), []
    for height in range(HEIGHT):
        sibling = (index >> height) ^ 1
        proof.append(levels[height][sibling] if sibling < len(levels[height]) else zero)
        zero = keccak(zero + zero)
    return proof


def test_empty_tree_has_the_documented_root():
    assert EMPTY_ROOT.hex() == "0a162946e56158bac0673e6dd3bdfdc1e4a0e7744a120fdb640050c8d7abe1c6"
    assert OutputsTree().root() == EMPTY_ROOT


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40))
def test_appended_tree_matches_naive_root_and_proofs(leaves):
    tree = OutputsTree()
    for leaf in leaves:
        tree.append(leaf)
    assert tree.root() == naive_root(leaves)
    for index in {0, len(leaves) // 2, len(leaves) - 1}:
        proof = tree.proof(index)
        assert len(proof) == HEIGHT
        assert proof == naive_proof(leaves, index)
        assert root_from_proof(leaves[index], index, proof) == tree.root()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 70), st.data())
def test_historical_roots_and_proofs_match_the_tree_as_it_was(total, data):
    leaves = [os.urandom(32) for _ in range(total)]
    tree = OutputsTree(leaves)  # bulk-built
    size = data.draw(st.integers(1, total))
    index = data.draw(st.integers(0, size - 1))
    assert tree.root(size) == naive_root(leaves[:size])
    assert tree.proof(index, size) == naive_proof(leaves[:size], index)


def test_a_proof_fails_for_another_leaf_or_index():
    leaves = [os.urandom(32) for _ in range(5)]
    tree = OutputsTree(leaves)
    assert root_from_proof(os.urandom(32), 2, tree.proof(2)) != tree.root()
    assert root_from_proof(leaves[2], 3, tree.proof(2)) != tree.root()


def test_outputs_are_the_call_encodings_the_machine_builds():
    destination = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    notice = encode_notice(b"hi")
    assert notice == keccak(text="Notice(bytes)")[:4] + encode(["bytes"], [b"hi"])
    assert notice[:4].hex() == "c258d6e5"
    voucher = encode_voucher(destination, 5, b"\x01")
    assert voucher == keccak(text="Voucher(address,uint256,bytes)")[:4] + encode(
        ["address", "uint256", "bytes"], [destination, 5, b"\x01"])
    assert voucher[:4].hex() == "237a816f"
    delegate = encode_delegate_call_voucher(destination, b"")
    assert delegate[:4] == keccak(text="DelegateCallVoucher(address,bytes)")[:4]
    assert decoded_data(voucher) == {"type": "Voucher", "destination": destination, "value": "0x5",
                                      "payload": "0x01"}
    assert decoded_data(notice) == {"type": "Notice", "payload": "0x" + b"hi".hex()}
    assert decoded_data(delegate)["type"] == "DelegateCallVoucher"
