"""Shapley values in a running federation, without touching the validator: a tap on the trainers' ClientApp keeps
each round's global model and every update, and a `RoundObserver` values each validator's accepted updates on that
validator's data (`flower_sim.shapley`) as its report arrives.

The tap sees the float weights the trainers send (what the validator judged and averaged). A rollup run's reports
also carry each update's FRQ1 bytes (`ValidatorReport.updates`); the rollup side may value those instead.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from flwr.app import Context, Message, MessageType

from flower_sim import models
from flower_sim.records import RoundRecord, ValidatorReport
from flower_sim.shapley import DEFAULT_PERMUTATIONS, EXACT_LIMIT, Estimate, estimate, group_utility, shares_bps
from flower_sim.splits import Dataset

AppFn = Callable[..., Message]  # called as app(message=..., context=...), like a ClientApp


class UpdateTap:
    """Wraps the trainers' ClientApp: keeps each round's global model and each trainer's update (float weights)
    until `forget` drops the round."""

    def __init__(self, app: AppFn) -> None:
        self.app = app
        self.global_weights: dict[int, list[np.ndarray]] = {}
        self.updates: dict[int, dict[int, list[np.ndarray]]] = {}

    def __call__(self, message: Message, context: Context) -> Message:
        reply = self.app(message=message, context=context)
        if message.metadata.message_type == MessageType.TRAIN and not reply.has_error():
            server_round = int(message.content["config"]["server-round"])
            if server_round not in self.global_weights:
                self.global_weights[server_round] = message.content["arrays"].to_numpy_ndarrays()
            trainer_id = int(reply.content["metrics"]["trainer-id"])
            self.updates.setdefault(server_round, {})[trainer_id] = reply.content["arrays"].to_numpy_ndarrays()
        return reply

    def forget(self, server_round: int) -> None:
        self.global_weights.pop(server_round, None)
        self.updates.pop(server_round, None)


@dataclass(frozen=True)
class GroupValues:
    """One validator's round: its accepted trainers (ascending ids), their samples, the estimate over the players,
    each trainer's player (its own index, or with `merge_copies` the first trainer that sent the same update), and
    per trainer its value, share (bps) and leave-one-out value; seconds taken."""

    round: int
    validator_id: int
    trainer_ids: tuple[int, ...]
    samples: tuple[int, ...]
    estimate: Estimate
    player_of: tuple[int, ...]
    values: tuple[float, ...]
    shares_bps: tuple[int, ...]
    leave_one_out: tuple[int, ...]
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def round_seed(seed: int, server_round: int, validator_id: int) -> int:
    """The Monte-Carlo seed of one validator's round, derived from the run seed."""
    return int(np.random.SeedSequence([seed, server_round, validator_id, 15]).generate_state(1)[0])


def players(digests: Sequence[bytes], merge_copies: bool) -> tuple[list[int], tuple[int, ...]]:
    """(the members that are players, each member's player): with `merge_copies`, members that sent the same update
    (the same digest) are one player, the first of them; otherwise everyone is their own."""
    first: dict[bytes, int] = {}
    owner = tuple(first.setdefault(d, k) if merge_copies else k for k, d in enumerate(digests))
    return sorted(set(owner)), owner


def per_member(result: Estimate, chosen: list[int],
               owner: tuple[int, ...]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Each member's value (its player's, split equally among the copies) and leave-one-out value (its player's when
    it sent the update alone; 0 for a copy: leaving it out leaves the same update in)."""
    index = {member: k for k, member in enumerate(chosen)}
    copies = {p: owner.count(p) for p in chosen}
    values = tuple(result.values[index[p]] / copies[p] for p in owner)
    loo = tuple(result.leave_one_out[index[p]] if copies[p] == 1 else 0 for p in owner)
    return values, loo


def value_accepted(model_kind: str, model, global_weights: Sequence[np.ndarray],
                   updates: Sequence[Sequence[np.ndarray]], samples: Sequence[int], digests: Sequence[bytes],
                   data: Dataset, seed: int, *, averaging: str = "group", merge_copies: bool = True,
                   **options) -> tuple[Estimate, tuple[int, ...], tuple[float, ...], tuple[int, ...]]:
    """One validator's accepted updates (members, in the order given) valued on its `data`: the estimate over the
    players, each member's player, value and leave-one-out value (`per_member`). The defaults are what a validator
    reports on a `shapley` task: game [G], copies merged (a free-rider is a null player, a copy splits its original's
    value); `options` go to `shapley.estimate`."""
    chosen, owner = players(digests, merge_copies)
    utility = group_utility(model_kind, model, global_weights, [updates[k] for k in chosen],
                            [samples[k] for k in chosen], data.x, data.y, averaging)
    result = estimate(len(chosen), utility, seed=seed, **options)
    values, loo = per_member(result, chosen, owner)
    return result, owner, values, loo


class ShapleyObserver:
    """Values every validator's accepted updates of every round (`groups`, in report order); `averaging`: the game
    (`shapley.GroupUtility`); `merge_copies`: updates with the same digest are one player (of the samples the first
    claims), whose value its senders split, so copying an update earns the pair what the update is worth."""

    def __init__(self, tap: UpdateTap, validator_data: Sequence[Dataset], model_kind: str, lr: float, seed: int, *,
                 exact_limit: int = EXACT_LIMIT, permutations: int = DEFAULT_PERMUTATIONS,
                 truncation_bps: int | None = None, averaging: str = "coalition", merge_copies: bool = False) -> None:
        self.tap = tap
        self.validator_data = validator_data
        self.model_kind = model_kind
        self.model = models.shared_model(model_kind, lr, "evaluator")
        self.seed = seed
        self.averaging = averaging
        self.merge_copies = merge_copies
        self.options = dict(exact_limit=exact_limit, permutations=permutations, truncation_bps=truncation_bps)
        self.groups: list[GroupValues] = []

    def on_validator_report(self, report: ValidatorReport) -> None:
        accepted = sorted((c for c in report.contributions if c.accepted), key=lambda c: c.trainer_id)
        if not accepted:
            return
        start = time.perf_counter()
        result, owner, values, loo = value_accepted(
            self.model_kind, self.model, self.tap.global_weights[report.round],
            [self.tap.updates[report.round][c.trainer_id] for c in accepted], [c.num_examples for c in accepted],
            [c.update_digest for c in accepted], self.validator_data[report.validator_id],
            round_seed(self.seed, report.round, report.validator_id), averaging=self.averaging,
            merge_copies=self.merge_copies, **self.options)
        self.groups.append(GroupValues(report.round, report.validator_id, tuple(c.trainer_id for c in accepted),
                                       tuple(c.num_examples for c in accepted), result, owner, values,
                                       shares_bps(values), loo, time.perf_counter() - start))

    def on_round_closed(self, record: RoundRecord) -> None:
        self.tap.forget(record.round)
