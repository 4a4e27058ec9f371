"""Inspect routes: read-only JSON answers about the rollup state (task, stakes, rounds, producer, balance, and
the market's: market, tasks, reputation).

The inspect payload is a UTF-8 path such as ``rounds/1?from=2&to=5``. Wei amounts are decimal strings
(they exceed JavaScript's safe integers); addresses are checksummed.
"""
from __future__ import annotations

import re
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from eth_utils import to_checksum_address

from dapp import qmodel
from dapp.schema import (CANCEL_NAMES, DISPUTE_NAMES, DP_NAMES, PAYOUT_NAMES, ROLE_NAMES, ROLE_TRAINER, RULE_NAMES,
                         VALIDATION_NAMES, VALIDATION_TRUST, normalize_address)
from dapp.market import reputation
from dapp.state import State
from dapp.task import RoundRecord, Task


class InspectError(ValueError):
    """An inspect path that names no route, no task or a malformed value."""


MAX_PATH = 256  # longer than any route with its filters; a longer path is refused before it is parsed
PARTICIPANTS_PAGE = 1_000  # participants per stakes/<id> answer (~200 KB of JSON, far below a report's 2 MiB)
ROUNDS_PAGE = 50  # rounds per rounds/<id> answer (with 255 groups, ~2 KB a group: ~1 MiB at most)
# ASCII digits only ("²".isdigit() is true) and at most 20 of them (2^64 has 20): int() never sees a huge string
NUMBER = re.compile(r"[0-9]{1,20}")


def answer(state: State, path: str) -> dict[str, Any]:
    """The JSON answer for one inspect path; raises InspectError saying what is wrong with it."""
    if len(path) > MAX_PATH:
        raise InspectError(f"inspect path too long ({len(path)} characters, at most {MAX_PATH})")
    parts = urlsplit(path.strip().lstrip("/"))
    route, _, arg = parts.path.partition("/")
    handler = _ROUTES.get(route)
    if handler is None or not arg and route not in _WHOLE_STATE or arg and route in _WHOLE_STATE:
        raise InspectError(f"unknown inspect path {path!r}; routes: task/<id>, stakes/<id>, "
                           f"rounds/<id>?from=A&to=B, producer/<id>?round=R&block=B, balance/<address>, market, "
                           f"tasks?open=BLOCK&from=N, reputation/<address>")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return handler(state, arg, query)


def _int(text: str, what: str) -> int:
    if not NUMBER.fullmatch(text):
        raise InspectError(f"{what} must be a non-negative integer of at most 20 digits, got {text[:40]!r}")
    return int(text)


def _task(state: State, arg: str) -> Task:
    task_id = _int(arg, "task id")
    task = state.tasks.get(task_id)
    if task is None:
        raise InspectError(f"task {task_id} does not exist")
    return task


def _addr(address: str) -> str:
    return to_checksum_address(address) if address else ""


def task_info(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    t = _task(state, arg)
    return {"task_id": t.task_id, "publisher": _addr(t.publisher), "mad_bps": t.mad_bps, "rounds": t.rounds,
            "groups": t.groups, "round_trainer_budget_wei": str(t.round_trainer_budget),
            "reward_per_positive_wei": str(t.reward_per_positive),
            "validator_reward_wei": str(t.validator_reward), "budget_wei": str(t.budget),
            "broker_fee_wei": str(t.broker_fee), "required_escrow_wei": str(t.required_escrow),
            "escrow_wei": str(t.escrow), "funded": t.funded, "start_block": t.start_block,
            "finished": t.finished, "cancelled": CANCEL_NAMES.get(t.cancelled) if t.cancelled is not None else None,
            "current_round": min(t.current_round, t.rounds), "rounds_closed": len(t.history),
            "producer": None if t.over else _addr(t.producer),
            "named_validators": [_addr(a) for a in t.seats], "trainers_per_group": t.trainers_per_group,
            "trainer_approval": t.trainer_approval, "admitted": list(t.group_admitted),
            "created_block": t.created_block, "registration_deadline": t.registration_deadline,
            "report_blocks": t.report_blocks, "close_blocks": t.close_blocks, "contest_blocks": t.contest_blocks,
            "challenges_per_round": t.challenges_per_round, "model_arch": qmodel.ARCHS[t.model_arch].name,
            "validation": VALIDATION_NAMES[t.validation], "payout": PAYOUT_NAMES[t.payout],
            "open_rounds": t.open_rounds,
            # the open rounds after the current one (openRounds > 1): the groups that reported each so far
            "ahead": [{"round": r, "reports_in": [g for g, x in enumerate(t.slot(r).reports) if x is not None]}
                      for r in ([] if t.over else t.open_after())],
            "privacy": {"mechanism": DP_NAMES[t.dp.mechanism], "epsilon_milli": t.dp.epsilon_milli,
                        "delta_atto": t.dp.delta_atto, "clip_micro": t.dp.clip_micro,
                        "total_epsilon_milli": t.dp.total_epsilon_milli, "words": t.dp.words()},
            "test_set_digest": "0x" + t.test_set_digest.hex(), "test_set_size": t.test_set_size,
            "initial_model_digest": "0x" + t.initial_model_digest.hex(),
            "test_set_posted": t.test_set is not None,
            "report_deadline": None if t.over else t.report_deadline(),
            "contest_deadline": None if t.over else t.contest_deadline(),
            "response_deadline": None if t.over else t.response_deadline(),
            "latest_end_block": t.latest_end_block(),
            "trainers": list(t.group_trainers), "validators": len(t.validators()),
            "reports_in": [g for g, r in enumerate(t.reports) if r is not None],
            "report_parts": [{"group": g, "parts": p.parts, "received": sorted(p.received)}
                             for g, p in sorted(t.partials.items())],  # reports still coming in parts
            "revealed": [g for g, r in enumerate(t.reports) if r is not None and r.model_digest in t.models],
            "disputes": [{"trainer": _addr(d.trainer), "group": d.group, "kind": DISPUTE_NAMES[d.kind],
                          "update_digest": "0x" + d.update_digest.hex(), "posted": d.update_digest in t.scores}
                         for d in t.disputes.values()]}


def _only(query: dict[str, str], allowed: set[str]) -> None:
    unknown = set(query) - allowed
    if unknown:
        use = " and ".join(k + "=" for k in sorted(allowed))
        raise InspectError(f"unknown filter(s) {', '.join(sorted(unknown))}; use {use}")


def stakes(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    """Participants in registration order, a page of at most PARTICIPANTS_PAGE from ``from`` (0-based)."""
    t = _task(state, arg)
    _only(query, {"from"})
    first = _int(query.get("from", "0"), "from")
    page = list(t.participants.values())[first:first + PARTICIPANTS_PAGE]
    following = first + len(page) if first + len(page) < len(t.participants) else None
    return {"task_id": t.task_id, "from": first, "total": len(t.participants), "next": following,
            "participants": [{"address": _addr(p.address), "role": ROLE_NAMES[p.role], "group": p.group,
                              "stake_wei": str(t.stakes[p.address]),
                              "balance_wei": str(state.balance(p.address)), **_standing(t, p.address, p.role)}
                             for p in page]}


def _standing(t: Task, address: str, role: int) -> dict[str, Any]:
    """A trust task's trainer standing (score, strikes, bans, last banned round); nothing for anyone else."""
    if t.validation != VALIDATION_TRUST or role != ROLE_TRAINER:
        return {}
    s = t.standing(address)
    return {"standing": {"score": s.score, "strikes": s.strikes, "bans": s.bans, "banned_until": s.banned_until,
                         "banned": s.banned(t.current_round)}}


def _round(r: RoundRecord) -> dict[str, Any]:
    return {"round": r.round, "block": r.block, "timestamp": r.timestamp, "producer": _addr(r.producer),
            "missed_producers": [_addr(a) for a in r.missed_producers],
            "global_digest": "0x" + r.global_digest.hex(), "global_accuracy_bps": r.global_accuracy_bps,
            "accumulated_accuracy_bps": r.accumulated_accuracy_bps,
            "validator_accuracy_bps": list(r.validator_accuracy_bps),  # public, by the rollup; None: not revealed
            "groups": [{"group": g, "validator": _addr(rep.validator),
                        "reported_accuracy_bps": rep.validator_accuracy_bps,  # on its own data (the MAD reference)
                        "public_accuracy_bps": r.validator_accuracy_bps[g],
                        "model_digest": "0x" + rep.model_digest.hex(), "positives": rep.positives,
                        "negatives": rep.negatives, "trainer_paid_wei": str(r.paid[g])}
                       for g, rep in enumerate(r.reports) if rep is not None],
            "skipped_groups": [g for g, rep in enumerate(r.reports) if rep is None],
            "rewarded_validator": _addr(r.rewarded_validator), "rewarded_group": r.rewarded_group,
            "distance_bps": r.distance_bps, "validator_paid_wei": str(r.validator_paid),
            "trainer_paid_wei": str(r.trainer_paid), "escrow_left_wei": str(r.escrow_left),
            "next_producer": _addr(r.next_producer) or None,
            "election_rule": RULE_NAMES.get(r.election_rule)}


def rounds(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    """Closed rounds ``from``..``to`` (inclusive), at most ROUNDS_PAGE of them per answer."""
    t = _task(state, arg)
    _only(query, {"from", "to"})
    first = _int(query.get("from", "1"), "from")
    last = min(_int(query.get("to", str(t.rounds)), "to"), first + ROUNDS_PAGE - 1)
    return {"task_id": t.task_id, "from": first, "to": last,
            "rounds": [_round(r) for r in t.history if first <= r.round <= last]}


def producer(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    """Who may close an open round, in turn, and until which block (a client compares with L1's): the current round,
    or with ``round=R&block=B`` open round R as known at L1 block B (its start may depend on it); ``open`` names the
    producer of every open round (each known in advance: round r's producer is elected at round r - K's close)."""
    t = _task(state, arg)
    _only(query, {"round", "block"})
    if t.over:
        return {"task_id": t.task_id, "finished": True, "round": None, "producer": None, "stake_wei": None,
                "report_deadline": None, "turns": [], "open": []}
    round_ = _int(query.get("round", str(t.current_round)), "round")
    if round_ != t.current_round and round_ not in t.open_after():
        raise InspectError(f"round {round_} of task {t.task_id} is not open (open: {t.current_round}.."
                           f"{max(t.open_after(), default=t.current_round)})")
    if round_ != t.current_round and "block" not in query:
        raise InspectError("a later open round's schedule needs block= (the L1 block the caller sees)")
    v = t.at(round_, _int(query["block"], "block")) if "block" in query else t
    deadline = v.report_deadline()
    return {"task_id": t.task_id, "finished": False, "round": v.current_round, "producer": _addr(v.producer),
            "stake_wei": str(v.stakes.get(v.producer, 0)), "round_start": v.current_start(),
            "report_deadline": deadline, "contest_deadline": v.contest_deadline() if deadline is not None else None,
            "response_deadline": v.response_deadline() if deadline is not None else None,
            "reports_in": [g for g, r in enumerate(v.reports) if r is not None],
            "disputes_pending": len(v.pending_disputes()),
            # a later round's turns count from its response deadline, or from the previous close if that comes later
            "turns": [{"producer": _addr(a), "until_block": v.close_deadline(i) if deadline is not None else None}
                      for i, a in enumerate(v.producer_order())],
            "open": [{"round": r, "producer": _addr(t.order_of(r)[0])} for r in (t.current_round, *t.open_after())]}


def balance(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    try:
        address = normalize_address(arg)
    except ValueError:
        raise InspectError(f"not an address: {arg!r}") from None
    return {"address": _addr(address), "balance_wei": str(state.balance(address))}


# ------------------------------------------------------------------------------------------ the market

TASKS_PAGE = 100  # task summaries per `tasks` answer (~1.5 KB each)


def market(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    """The market's terms fixed at deployment (dapp/market.py) and how many tasks it holds."""
    _only(query, set())
    return {**state.market.as_dict(), "broker": _addr(state.market.broker) or None, "tasks": len(state.tasks)}


def seats_left(t: Task) -> list[int]:
    """Trainer seats still free per group (in a task with approval, only admitted trainers may take them)."""
    return [max(0, t.trainers_per_group - n) for n in t.group_trainers]


def is_open(t: Task, block: int) -> bool:
    """A trainer may still register at L1 `block`: the task goes on, its window is open and a seat is free."""
    return not t.over and block <= t.registration_deadline and any(seats_left(t))


def _status(t: Task) -> str:
    if t.cancelled is not None:
        return "cancelled"
    if t.finished:
        return "finished"
    return "running" if t.start_block is not None else "registering"


def task_summary(t: Task) -> dict[str, Any]:
    """What a trainer compares between tasks: who pays, how much, by which rules, until when, and room left."""
    return {"task_id": t.task_id, "publisher": _addr(t.publisher), "status": _status(t),
            "model_arch": qmodel.ARCHS[t.model_arch].name, "validation": VALIDATION_NAMES[t.validation],
            "payout": PAYOUT_NAMES[t.payout], "rounds": t.rounds, "groups": t.groups, "mad_bps": t.mad_bps,
            "round_trainer_budget_wei": str(t.round_trainer_budget),
            "reward_per_positive_wei": str(t.reward_per_positive), "validator_reward_wei": str(t.validator_reward),
            "budget_wei": str(t.budget), "broker_fee_wei": str(t.broker_fee), "escrow_wei": str(t.escrow),
            "funded": t.funded, "registration_deadline": t.registration_deadline,
            "latest_end_block": t.latest_end_block(), "trainer_approval": t.trainer_approval,
            "trainers_per_group": t.trainers_per_group, "seats_left": seats_left(t),
            "contest_blocks": t.contest_blocks, "privacy": t.dp.words()}


def tasks(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    """Every task from ``from`` (an id, default 1), at most TASKS_PAGE; with ``open=B`` only those a trainer may
    still register for at L1 block B (an inspect carries no block: the caller says which one it sees)."""
    _only(query, {"from", "open"})
    first = _int(query.get("from", "1"), "from")
    block = _int(query["open"], "open (an L1 block number)") if "open" in query else None
    chosen = [t for i, t in sorted(state.tasks.items()) if i >= first and (block is None or is_open(t, block))]
    page = chosen[:TASKS_PAGE]
    return {"open_at_block": block, "from": first, "total": len(chosen),
            "next": page[-1].task_id + 1 if len(chosen) > TASKS_PAGE else None,
            "tasks": [task_summary(t) for t in page]}


def reputation_of(state: State, arg: str, query: dict[str, str]) -> dict[str, Any]:
    """A trainer's record across every task: tasks joined, updates reported and accepted, wei earned."""
    _only(query, set())
    try:
        address = normalize_address(arg)
    except ValueError:
        raise InspectError(f"not an address: {arg!r}") from None
    r = reputation(state.tasks, address)
    return {"address": _addr(address), "tasks": r.tasks, "reported": r.reported, "accepted": r.accepted,
            "earned_wei": str(r.earned)}


_WHOLE_STATE = {"market", "tasks"}  # routes about the whole state, without an argument
_ROUTES: dict[str, Callable[[State, str, dict[str, str]], dict[str, Any]]] = {
    "task": task_info, "stakes": stakes, "rounds": rounds, "producer": producer, "balance": balance,
    "market": market, "tasks": tasks, "reputation": reputation_of}
