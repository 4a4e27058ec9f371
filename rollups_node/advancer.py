"""The advancer: feeds unprocessed inputs to the backend in order and stores what each one produced.

Accepted inputs append their outputs to the cumulative outputs tree; every other input keeps its reports
only. After any status but accepted or rejected (an exception, a halt, too many outputs or reports: the
real node drops the machine's fork then), or at start, the backend is rebuilt by replaying the accepted
inputs (replayed outputs must match the stored ones; nothing is stored or emitted twice).
"""
from __future__ import annotations

import logging
import threading

from dapp.advance_request import encode_advance
from rollups_node.advance import advance_of
from rollups_node.machine import AdvanceResult, HostMachine
from rollups_node.merkle import OutputsTree
from rollups_node.model import (INPUT_ACCEPTED, INPUT_EXCEPTION, INPUT_OUTPUTS_LIMIT_EXCEEDED, INPUT_REJECTED,
                                INPUT_REPORTS_LIMIT_EXCEEDED, Input, Output, Report)
from rollups_node.describe import describe_outputs, describe_payload, describe_reason
from rollups_node.outputs import output_hash
from rollups_node.repository import Repository

log = logging.getLogger("rollups_node.advancer")

STATUS_OF = {"accept": INPUT_ACCEPTED, "reject": INPUT_REJECTED, "exception": INPUT_EXCEPTION,
             "halted": INPUT_EXCEPTION, "outputs_limit": INPUT_OUTPUTS_LIMIT_EXCEEDED,
             "reports_limit": INPUT_REPORTS_LIMIT_EXCEEDED}


class ReplayDivergence(RuntimeError):
    """Replaying the stored accepted inputs gave different outputs: the backend is not deterministic
    or the database belongs to another backend."""


class Advancer:
    def __init__(self, repository: Repository, machine: HostMachine, tree: OutputsTree,
                 tree_lock: threading.Lock, stopping: threading.Event | None = None) -> None:
        self.repository, self.machine, self.tree, self.tree_lock = repository, machine, tree, tree_lock
        self.stopping = stopping or threading.Event()  # set when the node stops: no more backend restarts
        self.next_report_index = repository.number_of_reports()

    def step(self) -> int:
        """Process every unprocessed input; return how many were processed."""
        processed = 0
        if not self.machine.ready and not self.stopping.is_set():  # it died, e.g. during an inspect
            self.rebuild_backend()
        while not self.stopping.is_set():
            batch = self.repository.unprocessed_inputs()
            if not batch:
                break
            for item in batch:
                if self.stopping.is_set():
                    break
                if not self.machine.ready:
                    self.rebuild_backend()
                self.process(item)
                processed += 1
        return processed

    def process(self, item: Input) -> None:
        first_index = len(self.tree)
        result = self.machine.advance(encode_advance(advance_of(item)), first_index)
        status = STATUS_OF[result.status]
        outputs = []
        if status == INPUT_ACCEPTED:
            outputs = [Output(index=first_index + i, input_index=item.index, epoch_index=item.epoch_index,
                              raw_data=raw, hash=output_hash(raw)) for i, raw in enumerate(result.outputs)]
        reports = [Report(index=self.next_report_index + i, input_index=item.index, epoch_index=item.epoch_index,
                          raw_data=raw) for i, raw in enumerate(result.reports)]
        with self.tree_lock:
            for out in outputs:
                self.tree.append(out.hash)
            root = "0x" + self.tree.root().hex()
        self.repository.store_advance_result(item.index, status, outputs, reports, root)
        self.next_report_index += len(reports)
        what = describe_outputs(result.outputs, result.reports)
        who = f"{describe_payload(item)} from {item.sender[:10]}…"
        if status == INPUT_ACCEPTED:
            log.info("input %d (%s) accepted: %s", item.index, who, what)
        else:
            log.info("input %d (%s) %s%s: outputs discarded (%s)", item.index, who,
                     {INPUT_REJECTED: "rejected", INPUT_EXCEPTION: "raised an exception"}.get(status, status),
                     describe_reason(result.reports, result.exception), what)
        if status not in (INPUT_ACCEPTED, INPUT_REJECTED) and not self.stopping.is_set():
            self.rebuild_backend()

    def rebuild_backend(self) -> None:
        """Restart the backend and replay the accepted inputs, checking each replayed output."""
        self.machine.restart()
        self.replay()

    def replay(self) -> int:
        """Feed the stored accepted inputs to a fresh backend; raise ReplayDivergence on any difference."""
        stored: dict[int, list[bytes]] = {}
        outputs, _ = self.repository.list_outputs(limit=1 << 62)
        for out in outputs:
            stored.setdefault(out.input_index, []).append(out.raw_data)
        accepted = self.repository.accepted_inputs()
        next_index = 0
        for item in accepted:
            result: AdvanceResult = self.machine.advance(encode_advance(advance_of(item)), next_index)
            expected = stored.get(item.index, [])
            if result.status != "accept":
                raise ReplayDivergence(f"replaying input {item.index}: the backend answered {result.status}, "
                                       "but it was accepted before")
            if result.outputs != expected:
                raise ReplayDivergence(f"replaying input {item.index}: the backend emitted {len(result.outputs)} "
                                       f"outputs that differ from the {len(expected)} stored")
            next_index += len(expected)
        if accepted:
            log.info("backend state rebuilt: %d accepted inputs replayed, %d outputs matched", len(accepted),
                     next_index)
        return len(accepted)
