"""JSON from a client, parsed only after a non-recursive check of its nesting depth.

`json.loads` recurses in C once per nesting level. Importing eth_account raises Python's recursion limit
to 100,000, so a body nested 100,000 deep overflowed a handler thread's C stack and killed the node
(SIGSEGV). The depth is counted first, without recursion, and a deeper body is refused unparsed.
"""
from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64  # a JSON-RPC request needs 4 (batch, request, params, value)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class TooDeep(ValueError):
    pass


def deeper_than(body: bytes, max_depth: int) -> bool:
    """Whether arrays and objects in `body` nest deeper than `max_depth` (brackets inside strings do not
    count); counted without recursion, and stops at the first level too deep."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', body)):
        depth += 1 if match.group() in b"[{" else -1
        if depth > max_depth:
            return True
    return False


def loads(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads(body)`, refusing (TooDeep) a body nested deeper than `max_depth`; ValueError if not JSON."""
    if deeper_than(body, max_depth):
        raise TooDeep(f"JSON nested deeper than {max_depth} levels")
    return json.loads(body)
