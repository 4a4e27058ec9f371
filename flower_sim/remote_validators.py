"""The manager's recorder with validators that send their own inputs from keys it does not hold (issue 16).

Where the recorder would send a validator's reveal or, in its turn, the round's close, it waits for them on the
rollup instead: `reveal` finds the validator's ModelScored notice, `close` the round's RoundRecorded from whoever
closed it (or says it is the turn of a producer whose key the recorder holds: the publisher). The notices are found
by reading every processed input's notices in order (`NoticeScan`): a role cannot know another's transaction. The
node may lag L1, so nothing counts as missing before the node has read every input L1 held past the deadline.
"""
from __future__ import annotations

import time
from typing import Any

from dapp.schema import Message, ModelScored, RoundRecorded
from flower_sim.rollup_schedule import Schedule, plan_close
from flower_sim.rollup_watch import NoticeScan, RollupRejected, inspect_json


class RemoteValidators:
    """The recorder's (``recorder``) wait for the inputs of the validators that hold their own keys."""

    def __init__(self, recorder: Any) -> None:
        self.r = recorder
        self.scan = NoticeScan(recorder.node)

    def _recorded(self, round_: int, group: int | None = None) -> tuple[int, Message] | None:
        """The round's RoundRecorded (its input, the notice) or, given ``group``, that group's ModelScored if it
        comes first (a reveal precedes the close)."""
        kinds = (RoundRecorded,) if group is None else (ModelScored, RoundRecorded)
        return self.scan.find(lambda n: isinstance(n, kinds) and n.task_id == self.r.task_id and n.round == round_
                              and getattr(n, "group", group) == group)

    def reveal(self, v: int, round_: int) -> list[Message]:
        """Validator ``v`` reveals from its own key: its ModelScored notice, once the rollup has it (none if the
        contest window passed, or the round closed, without it; the node may lag L1: it must have read every input
        L1 held after the deadline before the reveal counts as missing)."""
        while True:
            schedule = self.schedule(round_)
            past = schedule is not None and self.r.l1.block_number() > schedule.contest_deadline
            on_l1 = self.r.l1.input_count() if past else 0
            found = self._recorded(round_, v)
            if found is not None:
                return [found[1]] if isinstance(found[1], ModelScored) else []
            if past and self.scan.caught_up(on_l1) and self._recorded(round_, v) is None:
                self.r.say(f"validator {v} did not reveal its model of round {round_} by block "
                           f"{schedule.contest_deadline}")
                return []
            time.sleep(self.r.POLL_S)

    def schedule(self, round_: int) -> Schedule | None:
        """Round ``round_``'s schedule while it is open; None before round 1 starts (the validators register
        themselves) and once a remote validator closed it (its notices are then read next)."""
        producer = inspect_json(self.r.node, f"producer/{self.r.task_id}")
        if producer.get("finished") or producer.get("report_deadline") is None:
            return None
        schedule = Schedule.from_inspect(producer, inspect_json(self.r.node, f"task/{self.r.task_id}"))
        return schedule if schedule.round == round_ else None

    def close(self, round_: int, stall_s: float = 600.0) -> int | None:
        """Wait until a validator in turn closed round ``round_`` from its own key: the input of its
        RoundRecorded; None when it is the turn of a producer whose key this process holds (and the node has
        read every input L1 holds, none of them that close)."""
        said, seen = False, time.monotonic()
        while True:
            found = self._recorded(round_)
            if found is not None:
                return found[0]
            schedule = self.schedule(round_)
            if schedule is None and time.monotonic() - seen > stall_s:
                raise RollupRejected(f"round {round_} of task {self.r.task_id} is not open and no RoundRecorded "
                                     f"notice says who closed it")
            if schedule is not None:
                seen, now = time.monotonic(), self.r.l1.block_number()
                plan = plan_close(schedule, now, frozenset(), frozenset(self.r.key_of))
                if plan is not None and now >= plan.first_block - 1 \
                        and self.scan.caught_up(self.r.l1.input_count()) and self._recorded(round_) is None:
                    return None
                if not said and schedule.turns and schedule.turns[0].producer not in self.r.key_of:
                    said = True
                    self.r.say(f"{self.r.who(schedule.turns[0].producer)} closes round {round_} from its own key "
                               f"once its contest window ends at block {schedule.contest_deadline}")
                if plan is None and now > schedule.turns[-1].until_block + 1:
                    raise RollupRejected(f"round {round_} of task {self.r.task_id} was not closed by block "
                                         f"{schedule.turns[-1].until_block}, its last producer's close deadline")
            time.sleep(self.r.POLL_S)
