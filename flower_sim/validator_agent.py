"""A validator's own rollup inputs, sent from a key only its process holds (issue 16: `fedrollup validator
--key-file`).

In a deployment of several organisations no validator can let the manager hold its key. The agent runs in the
validator's ServerApp, where its report is made, and follows the rollup's schedule by watching L1's blocks and the
node's inspect answers (never the manager's word): it registers for the task (Register, once the manager's link says
which task), and per round, in order, sends its ValidatorReport (its parts past 500 trainers) as soon as the round is
open on the rollup (round r - openRounds closed), reveals its model (`ModelChunk`s) once the reveal is open (every
group reported, or the report deadline passed), and closes the round (RoundClose) when it is its turn (`plan_close`
with its own key only). A round's inputs go out on a background thread: the ServerApp trains the next round
meanwhile. Before each input it asks the rollup what it already has (registered? reported? revealed? closed?), so a
validator killed and started again sends nothing twice.

The key file holds one 0x-hex private key and must be readable by its owner only (mode 0600): `key_file.read_key_file`
refuses it otherwise; `key_file.write_key_file` (`fedrollup validator keygen`) writes a fresh one.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dapp.qmodel import digest
from dapp.schema import ROLE_VALIDATOR, Register, RoundClose
from dapp.task import KEEP_DIGEST
from flower_sim.records import ValidatorReport as RoundReport
from flower_sim.rollup_inputs import model_chunks, report_inputs
from flower_sim.rollup_schedule import Schedule, plan_close
from flower_sim.rollup_watch import RollupRejected, inspect_json, processed
from rollups_client.l1 import L1
from rollups_client.node import NodeClient

Say = Callable[[str], None]


class ValidatorAgent:
    """Validator ``group``'s rollup inputs from its own ``key``: `register`, then `submit` each round's report;
    `finish` waits for every round handed over (raises the first error)."""

    POLL_S = 0.1  # seconds between two looks at the rollup: a reveal must land within the contest window

    def __init__(self, key: str, group: int, l1: L1, node: NodeClient, task_id: int, say: Say = print,
                 stall_s: float = 600.0) -> None:
        self.key, self.group, self.l1, self.node, self.task_id, self.say = key, group, l1, node, task_id, say
        self.address = L1.address(key)
        self.stall_s = stall_s  # how long one step may wait for the rollup before the agent gives up
        self.sent: list[str] = []  # what it sent, in words (its log says the same)
        self._rounds: queue.Queue = queue.Queue()
        self._rounds.put("register")  # first of all, on the agent's thread: the ServerApp goes on meanwhile
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=f"validator-{group}-agent", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the rollup
    def _task(self) -> dict[str, Any]:
        return inspect_json(self.node, f"task/{self.task_id}")

    def _send(self, what: str, payload: bytes) -> int:
        index = processed(self.node, self.l1.input_index(self.l1.send_input(self.key, payload)), what)
        self.sent.append(what)
        self.say(f"validator {self.group} sent {what} from its own key ({self.address[:10]}…, input {index})")
        return index

    def _wait(self, ready: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Poll the task's inspect answer until ``ready`` says so; its last answer."""
        deadline = time.monotonic() + self.stall_s
        while not ready(task := self._task()):
            if time.monotonic() > deadline:
                raise RollupRejected(f"validator {self.group} waited {self.stall_s:.0f} s for {what}")
            time.sleep(self.POLL_S)
        return task

    def registered(self) -> bool:
        first: int | None = 0
        while first is not None:
            page = inspect_json(self.node, f"stakes/{self.task_id}?from={first}")
            if any(p["address"].lower() == self.address for p in page["participants"]):
                return True
            first = page["next"]
        return False

    def register(self) -> None:
        """Register as the task's validator of its group (once: the rollup is asked first)."""
        named = [a.lower() for a in self._task()["named_validators"]]
        if self.group >= len(named) or named[self.group] != self.address:
            raise RollupRejected(f"task {self.task_id} does not name this key's address {self.address} validator of "
                                 f"group {self.group}: start the manager with --validator-address {self.address} "
                                 f"(one per validator, in group order)")
        if self.registered():
            self.say(f"validator {self.group} is already registered for task {self.task_id}")
            return
        self._send(f"its Register for task {self.task_id}", Register(self.task_id, ROLE_VALIDATOR, self.group)
                   .encode())

    # ------------------------------------------------------------------ the rounds
    def submit(self, report: RoundReport, trainers: list[str], starting: bytes) -> None:
        """Hand round ``report.round`` over (its report, reveal and close go out in the background);
        ``trainers[t]`` is trainer t's address, ``starting`` the round's starting model (its FRQ1 bytes)."""
        self._raise()
        self._rounds.put((report, trainers, starting))

    def finish(self, timeout_s: float | None = None) -> None:
        """Wait for every round handed over; raise the first error."""
        self._rounds.put(None)
        self._thread.join(timeout_s)
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while (item := self._rounds.get()) is not None:
            if self._error is not None:
                continue
            try:
                self.register() if item == "register" else self.run_round(*item)
            except BaseException as err:  # raised to the ServerApp at its next call
                self.say(f"validator {self.group}: {err}")
                self._error = err

    def run_round(self, report: RoundReport, trainers: list[str], starting: bytes) -> None:
        """Report, reveal and (in its turn) close round ``report.round``, each unless the rollup has it already."""
        r = report.round
        task = self._wait(lambda t: self._round_open(t, r), f"round {r} to open on the rollup")
        if task["open_rounds"] > 1 and starting and report.model_digest == digest(starting):
            report = replace(report, model_digest=KEEP_DIGEST)  # accepted nothing: the rollup has the model
        if task["rounds_closed"] >= r or self.group in self._reports_in(task, r):
            self.say(f"validator {self.group}'s report of round {r} is already on the rollup")
        else:
            parts = report_inputs(self.task_id, report, trainers)
            for i, part in enumerate(parts):
                self._send(f"its report of round {r}" + (f" (part {i + 1} of {len(parts)})" if len(parts) > 1
                                                          else ""), part.encode())
        self._reveal(report, r)
        self._close(r)

    def _round_open(self, task: dict[str, Any], r: int) -> bool:
        """Round ``r`` takes reports: the task started (every validator registered, or the registration window
        closed) and round r - openRounds is closed."""
        started = task["start_block"] is not None and self.l1.block_number() >= task["start_block"]
        return task["finished"] or (started and task["rounds_closed"] >= r - task["open_rounds"])

    @staticmethod
    def _reports_in(task: dict[str, Any], r: int) -> list[int]:
        if task["current_round"] == r:
            return task["reports_in"]
        return next((a["reports_in"] for a in task.get("ahead", ()) if a["round"] == r), [])

    def _reveal_open(self, task: dict[str, Any], r: int) -> bool:
        if task["rounds_closed"] >= r or task["finished"]:
            return True
        if len(self._reports_in(task, r)) == task["groups"]:
            return True
        return task["current_round"] == r and task["report_deadline"] is not None \
            and self.l1.block_number() > task["report_deadline"]

    def _reveal(self, report: RoundReport, r: int) -> None:
        if report.model_digest == KEEP_DIGEST:
            return
        task = self._wait(lambda t: self._reveal_open(t, r), f"the reveal of round {r} to open")
        if task["rounds_closed"] >= r or (task["current_round"] == r and self.group in task["revealed"]):
            self.say(f"validator {self.group}'s model of round {r} is already on the rollup")
            return
        chunks = model_chunks(self.task_id, r, report.model_digest, report.model)
        try:
            for chunk in chunks:
                self._send(f"its model of round {r} (chunk {chunk.index + 1} of {len(chunks)})", chunk.encode())
        except RollupRejected as err:  # a round ahead (openRounds > 1) shows no reveals: already there is fine
            if "already posted and scored" not in str(err):
                raise
            self.say(f"validator {self.group}'s model of round {r} is already on the rollup")

    def _close(self, r: int) -> None:
        """Close round ``r`` in its own turn (as elected, or as the next in the election order once the turns
        before it passed); nothing when another producer closed it first."""
        while True:
            task = self._task()
            if task["finished"] or task["rounds_closed"] >= r:
                return
            producer = inspect_json(self.node, f"producer/{self.task_id}")
            if producer.get("report_deadline") is None or producer["round"] != r:  # an earlier round is open
                time.sleep(self.POLL_S)
                continue
            schedule = Schedule.from_inspect(producer, task)
            now = self.l1.block_number()
            plan = plan_close(schedule, now, frozenset(), frozenset({self.address}))
            if plan is None:
                return  # none of its turns is left: another producer closes
            if now >= plan.first_block - 1:
                try:
                    self._send(f"the RoundClose of round {r}", RoundClose(task_id=self.task_id, round=r).encode())
                    return
                except RollupRejected:
                    if self._task()["rounds_closed"] >= r:  # another producer closed it in the same block
                        return
                    raise
            time.sleep(self.POLL_S)
