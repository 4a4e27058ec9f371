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
from flower_sim.shapley import DEFAULT_PERMUTATIONS, EXACT_LIMIT, Estimate, estimate, group_utility
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
    """One validator's round: its accepted trainers (ascending ids), their samples, the estimate, seconds taken."""

    round: int
    validator_id: int
    trainer_ids: tuple[int, ...]
    samples: tuple[int, ...]
    estimate: Estimate
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


def round_seed(seed: int, server_round: int, validator_id: int) -> int:
    """The Monte-Carlo seed of one validator's round, derived from the run seed."""
    return int(np.random.SeedSequence([seed, server_round, validator_id, 15]).generate_state(1)[0])


class ShapleyObserver:
    """Values every validator's accepted updates of every round (`groups`, in report order); `averaging`: the game
    (`shapley.GroupUtility`)."""

    def __init__(self, tap: UpdateTap, validator_data: Sequence[Dataset], model_kind: str, lr: float, seed: int, *,
                 exact_limit: int = EXACT_LIMIT, permutations: int = DEFAULT_PERMUTATIONS,
                 truncation_bps: int | None = None, averaging: str = "coalition") -> None:
        self.tap = tap
        self.validator_data = validator_data
        self.model_kind = model_kind
        self.model = models.shared_model(model_kind, lr, "evaluator")
        self.seed = seed
        self.averaging = averaging
        self.options = dict(exact_limit=exact_limit, permutations=permutations, truncation_bps=truncation_bps)
        self.groups: list[GroupValues] = []

    def on_validator_report(self, report: ValidatorReport) -> None:
        accepted = sorted((c for c in report.contributions if c.accepted), key=lambda c: c.trainer_id)
        if not accepted:
            return
        start = time.perf_counter()
        data = self.validator_data[report.validator_id]
        updates = [self.tap.updates[report.round][c.trainer_id] for c in accepted]
        utility = group_utility(self.model_kind, self.model, self.tap.global_weights[report.round], updates,
                                [c.num_examples for c in accepted], data.x, data.y, self.averaging)
        result = estimate(len(accepted), utility, seed=round_seed(self.seed, report.round, report.validator_id),
                          **self.options)
        self.groups.append(GroupValues(report.round, report.validator_id, tuple(c.trainer_id for c in accepted),
                                       tuple(c.num_examples for c in accepted), result,
                                       time.perf_counter() - start))

    def on_round_closed(self, record: RoundRecord) -> None:
        self.tap.forget(record.round)
