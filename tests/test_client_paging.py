"""The node client reads every item of a list however large the items: the node bounds one answer's bytes
(`rollups_node.jsonrpc.MAX_ANSWER_BYTES`), and a page of inputs carrying model chunks passes it (found in a
1,000-trainer demo, whose audit stopped on "answer larger than 33554432 bytes")."""
from __future__ import annotations

import pytest

from rollups_client.node import PAGE, NodeClient, NodeError
from rollups_node.openrpc import LIMIT_EXCEEDED, RESOURCE_NOT_FOUND

ITEMS = 3 * PAGE + 7


class BoundedNode(NodeClient):
    """A node's list method over ITEMS items of `item_bytes` each, refusing an answer above `bound` bytes as the
    node does (LIMIT_EXCEEDED); it records the limits it was asked for."""

    def __init__(self, item_bytes: int, bound: int) -> None:
        super().__init__("http://unused/rpc", "http://unused/inspect", "0xapp")
        self.item_bytes, self.bound, self.asked = item_bytes, bound, []

    def call(self, method: str, **params):
        limit, offset = params["limit"], params["offset"]
        self.asked.append(limit)
        page = list(range(offset, min(offset + limit, ITEMS)))
        if len(page) * self.item_bytes > self.bound:
            raise NodeError(LIMIT_EXCEEDED, f"answer larger than {self.bound} bytes: ask for fewer items")
        return {"data": [{"index": i} for i in page], "pagination": {"total_count": ITEMS}}


def test_pages_too_large_for_the_node_are_asked_again_smaller_and_nothing_is_lost_or_repeated():
    node = BoundedNode(item_bytes=130_000, bound=32 << 20)  # ~258 items fit one answer, a page asks 500
    assert [item["index"] for item in node._paged("cartesi_listInputs")] == list(range(ITEMS))
    assert node.asked[:2] == [PAGE, PAGE // 2] and max(node.asked[1:]) <= PAGE // 2


def test_small_items_keep_whole_pages():
    node = BoundedNode(item_bytes=200, bound=32 << 20)
    assert len(list(node._paged("cartesi_listOutputs"))) == ITEMS and set(node.asked) == {PAGE}


def test_an_item_larger_than_the_bound_and_other_errors_still_say_so():
    with pytest.raises(NodeError, match="answer larger than"):
        list(BoundedNode(item_bytes=1_000, bound=999)._paged("cartesi_listInputs"))

    class Missing(BoundedNode):
        def call(self, method: str, **params):
            raise NodeError(RESOURCE_NOT_FOUND, "application not found")
    with pytest.raises(NodeError, match="application not found"):
        list(Missing(1, 1)._paged("cartesi_listInputs"))
