"""What the validating strategies share (`mad`, `trust`): train the validator's own update from the global model, judge
every reply against it, aggregate the accepted ones, keep the global model when none is.

A judging strategy's `decisions` say, per reply of the last round, what the validator scored and decided: the
validator reports them as the round's contributions (`flower_sim.validator`), and the rollup re-derives each verdict
from the numbers in them.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from flower_sim.models import Score


class Judge(Protocol):
    """The validator's private data, as the strategy needs it."""

    def reference(self, global_arrays: ArrayRecord) -> Score:
        """Train the validator's own model from the global model (one epoch) and score it on its data."""

    def score(self, arrays: ArrayRecord) -> Score:
        """Score a received model on the validator's data."""


@dataclass(frozen=True)
class Decision:
    """A validating strategy's verdict on one reply, with the numbers it was decided from (`cosine_bps` and
    `norm_centi`: `trust`'s two measures, 0 for `mad`) and, when rejected, why in words."""

    node_id: int
    trainer_id: int
    score: Score
    num_examples: int
    positive: bool
    cosine_bps: int = 0
    norm_centi: int = 0
    reason: str = ""


class JudgingFedAvg(FedAvg):
    """FedAvg over the replies a validator accepts. `configure_train` trains the validator's reference (the judge's
    one-epoch model from the global one); `aggregate_train` asks `judge_replies` for a verdict per reply and averages
    the accepted with `aggregate_accepted`; nothing accepted keeps the global model.

    After `aggregate_train`, `reference_score` and `decisions` describe the round and `validation_s` is the time spent
    training the reference and judging replies."""

    def __init__(self, judge: Judge, **kwargs) -> None:
        super().__init__(**kwargs)
        self.judge = judge
        self.current_arrays: ArrayRecord | None = None
        self.reference_score: Score | None = None
        self.decisions: list[Decision] = []
        self.validation_s = 0.0

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        start = time.perf_counter()
        self.current_arrays = arrays
        self.reference_score = self.judge.reference(arrays)
        self.decisions = []
        self.validation_s = time.perf_counter() - start
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int,
                        replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        if self.reference_score is None:
            raise RuntimeError("aggregate_train before configure_train: no reference model")
        start = time.perf_counter()
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        self.decisions = self.judge_replies(server_round, valid)
        accepted = [(reply, d) for reply, d in zip(valid, self.decisions) if d.positive]
        self.validation_s += time.perf_counter() - start
        aggregated = self.aggregate_accepted(server_round, accepted) if accepted else (None, None)
        return aggregated if aggregated[0] is not None else (self.current_arrays, None)

    def judge_replies(self, server_round: int, replies: list[Message]) -> list[Decision]:
        """One decision per reply, in the replies' order."""
        raise NotImplementedError

    def aggregate_accepted(self, server_round: int,
                           accepted: list[tuple[Message, Decision]]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """FedAvg of the accepted replies weighted by their samples (None arrays: keep the global model)."""
        return super().aggregate_train(server_round, [reply for reply, _ in accepted])

    def scored(self, reply: Message) -> Score:
        """A reply's model scored on the validator's data (what the record and the public contests use)."""
        return self.judge.score(reply.content[self.arrayrecord_key])

    def decision(self, reply: Message, score: Score, positive: bool, **measures) -> Decision:
        metrics = reply.content["metrics"]
        return Decision(node_id=reply.metadata.src_node_id, trainer_id=int(metrics.get("trainer-id", -1)),
                        score=score, num_examples=int(metrics[self.weighted_by_key]), positive=positive, **measures)
