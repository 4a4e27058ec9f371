"""Reading the rollup's answers, shared by the manager's recorder and a validator's own agent (issue 16).

`processed` waits until the node has run one input and raises the rollup's reason when it rejected it;
`inspect_json` asks an inspect route; `NoticeScan` reads the notices of every input the node processed, in order,
so that a role can find what *another* role sent (a validator's ModelScored reveal, the RoundRecorded close of the
validator whose turn it was) without knowing its transaction.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from common.errors import FedrollupError
from dapp.schema import Message
from rollups_client.node import NodeClient


class RollupRejected(FedrollupError):
    """The rollup rejected one of the roles' inputs (the message is the rollup's own report): the run stops,
    and the command line says why in one line."""


def processed(node: NodeClient, index: int, what: str, timeout: float = 120.0, poll_s: float = 0.1) -> int:
    """Wait until the rollup processed input ``index``; returns it, raises the rollup's reason if rejected."""
    deadline = time.monotonic() + timeout
    while True:
        status = node.input_status(index)
        if status == "ACCEPTED":
            return index
        if status not in ("NONE", ""):
            reports = node.reports(input_index=index)
            reason = reports[0].raw_data.decode(errors="replace") if reports else status
            raise RollupRejected(f"the rollup rejected {what} (input {index}, {status}): {reason}")
        if time.monotonic() > deadline:
            raise RollupRejected(f"the rollup did not process {what} (input {index}) within {timeout:.0f} s")
        time.sleep(poll_s)


def inspect_json(node: NodeClient, path: str) -> dict[str, Any]:
    """The JSON an inspect route answers; RollupRejected (one line) when it answers anything else."""
    answer = node.inspect(path.encode())
    if answer.status != "Accepted" or not answer.reports:
        raise RollupRejected(f"the rollup's inspect of {path} answered {answer.status}")
    return json.loads(answer.reports[0])


class NoticeScan:
    """The notices of every input the node has processed, read once each in input order (from ``start``)."""

    def __init__(self, node: NodeClient, start: int = 0) -> None:
        self.node, self.next = node, start
        self.seen: list[tuple[int, Message]] = []  # (input index, notice), in order

    def read(self) -> None:
        """Read the notices of the inputs processed since the last call."""
        count = self.node.processed_input_count()
        while self.next < count:
            self.seen += [(self.next, o.message) for o in self.node.notices(input_index=self.next)]
            self.next += 1

    def caught_up(self, inputs_on_l1: int) -> bool:
        """Whether every input L1 held (``inputs_on_l1``, asked before) has been read: what is not found by then
        was not sent by then."""
        self.read()
        return self.next >= inputs_on_l1

    def find(self, match: Callable[[Message], bool]) -> tuple[int, Message] | None:
        """The first notice read that ``match`` accepts, with its input's index (read the new ones first)."""
        self.read()
        return next(((i, n) for i, n in self.seen if match(n)), None)
