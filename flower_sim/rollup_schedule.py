"""When the roles act on the rollup in a round, as its schedule says (docs/PROTOCOL.md, "Deadlines").

A run may make one validator *silent* from some round on: it withholds its rollup inputs (its
ValidatorReport and, when elected, its RoundClose), as a validator that withholds on chain would, while its
Flower server keeps training and the manager still averages its model. The rollup then skips its group
after the report deadline, and when it was elected producer the next in the election order closes after its
close deadline. Every round's close waits for its contest window (the reveals, contests and challenges) to
pass; the turns to close are counted from its response deadline. `plan_close` says who closes and from which
L1 block, from what the rollup's `producer/<id>` and `task/<id>` inspect answers say (a later open round's
producer is known in advance: its close may be sent before the previous one is mined). Pure, and light (no
web3): the command line imports it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError

ELECTED = "elected"  # --silent-validator elected: the validator the rollup elects to close the first silent round


@dataclass(frozen=True)
class SilentValidator:
    """Validator ``validator`` withholds its rollup inputs from round ``from_round`` on. ``validator`` None:
    the one the rollup elects to close ``from_round`` (known once the round before it closes), so that its
    silence always shows a producer failover as well as a skipped group."""

    validator: int | None
    from_round: int = 2

    def validate(self, validators: int, rounds: int) -> SilentValidator:
        """Raise ConfigError (one line) for a silence the run cannot stage."""
        who = ELECTED if self.validator is None else str(self.validator)
        if validators < 2:
            raise ConfigError(f"--silent-validator {who} needs at least 2 validators: with one silent validator "
                              f"of {validators} no group reports and no round can close")
        if self.validator is not None and not 0 <= self.validator < validators:
            raise ConfigError(f"--silent-validator must be a validator id in 0..{validators - 1} or "
                              f"'{ELECTED}', got {self.validator}")
        if not 1 <= self.from_round <= rounds:
            raise ConfigError(f"--silent-from-round must be a round in 1..{rounds}, got {self.from_round}")
        if self.validator is None and self.from_round < 2:
            raise ConfigError(f"--silent-validator {ELECTED} needs --silent-from-round >= 2: the publisher "
                              f"closes round 1")
        return self


@dataclass(frozen=True)
class Turn:
    """One producer's turn to close the current round: it may close until ``until_block`` (inclusive)."""

    producer: str  # lowercase address
    until_block: int


@dataclass(frozen=True)
class Schedule:
    """The current round's schedule as the rollup's inspect answers state it."""

    round: int
    report_deadline: int  # the last block at which reports are accepted
    contest_deadline: int  # the last block of reveals, contests and challenges: the elected may close after it
    turns: tuple[Turn, ...]  # who may close, in order
    groups: int
    reports_in: frozenset[int]  # the groups that reported
    response_deadline: int | None = None  # the last block for disputed updates (None: contest_deadline + 0)
    disputes_pending: int = 0  # disputes whose update is not posted yet: the close waits for the response deadline

    @classmethod
    def from_inspect(cls, producer: dict[str, Any], task: dict[str, Any]) -> Schedule:
        """From the JSON of `producer/<id>` (maybe of a later open round: `?round=R&block=B`, which states its
        reports and pending disputes) and `task/<id>` (dapp/inspect_routes.py)."""
        if producer.get("finished"):
            raise ValueError(f"task {producer.get('task_id')} is over: no round to close")
        pending = producer.get("disputes_pending")
        return cls(round=int(producer["round"]), report_deadline=int(producer["report_deadline"]),
                   contest_deadline=int(producer["contest_deadline"]),
                   turns=tuple(Turn(t["producer"].lower(), int(t["until_block"])) for t in producer["turns"]),
                   groups=int(task["groups"]),
                   reports_in=frozenset(int(g) for g in producer.get("reports_in", task["reports_in"])),
                   response_deadline=producer.get("response_deadline"),
                   disputes_pending=sum(not d["posted"] for d in task.get("disputes", ())) if pending is None
                   else int(pending))

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(g for g in range(self.groups) if g not in self.reports_in)

    def opens(self, turn: int) -> int:
        """The first block at which turn ``turn`` may close (the elected one: once the contest window is over, and
        once the response window is too while a disputed update is still missing)."""
        if turn > 0:
            return self.turns[turn - 1].until_block + 1
        if self.disputes_pending and self.response_deadline is not None:
            return int(self.response_deadline) + 1
        return self.contest_deadline + 1


@dataclass(frozen=True)
class ClosePlan:
    turn: int  # index into Schedule.turns
    producer: str
    first_block: int  # the first block its RoundClose may land in
    passed_over: tuple[Turn, ...]  # the turns before it, which this run lets pass (silent, keyless or over)
    passed_why: tuple[str, ...] = ()  # why each was passed over, in words (`passed_over`'s order)


def plan_close(schedule: Schedule, now: int, silent: frozenset[str], held: frozenset[str]) -> ClosePlan | None:
    """Who of this run closes the round, and from which block; None if no turn is left to anyone it may use.

    ``now`` is L1's latest block (an input sent now lands in a later one); ``silent`` the producers that
    withhold; ``held`` the addresses whose keys the run holds. A turn whose window ends before ``now + 1`` is
    already lost."""
    why = []
    for i, turn in enumerate(schedule.turns):
        if turn.producer in silent:
            why.append(f"is silent: waiting for its close deadline at block {turn.until_block}")
        elif turn.producer not in held:
            why.append(f"is not a role of this run: waiting for its close deadline at block {turn.until_block}")
        elif turn.until_block < now + 1:
            why.append(f"let its turn pass: it ended at block {turn.until_block}, and L1 is at block {now}")
        else:
            return ClosePlan(i, turn.producer, schedule.opens(i), schedule.turns[:i], tuple(why))
    return None
