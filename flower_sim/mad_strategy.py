"""MadFedAvg: FedAvg over the contributions that pass the Maximum Acceptable Deviation rule.

Reference: J. P. de Brito Gonçalves et al., "A Quality-of-Service Compliance System using Federated
Learning and Optimistic Rollups", §4 and Algorithm 1 ("Rewards Analysis").
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from dapp.mad import DEFAULT_MAD_BPS, is_positive
from flower_sim.models import Score


class Judge(Protocol):
    """The validator's private data, as the strategy needs it."""

    def reference(self, global_arrays: ArrayRecord) -> Score:
        """Train the validator's own model from the global model (one epoch) and score it on its data."""

    def score(self, arrays: ArrayRecord) -> Score:
        """Score a received model on the validator's data."""


@dataclass(frozen=True)
class Decision:
    """The MAD verdict on one reply."""

    node_id: int
    trainer_id: int
    score: Score
    num_examples: int
    positive: bool


class MadFedAvg(FedAvg):
    """Weighted FedAvg of the Positive contributions only (the seed paper's MAD validator).

    Per round the validator trains its own reference model for one epoch on its private data, starting
    from the current global model (in `configure_train`), and scores it there. In `aggregate_train` it
    scores every reply on the same data and marks it Positive when
    `accuracy >= (1 - MAD) x reference accuracy`, decided in integer basis points by `dapp.mad.is_positive`
    (the rollup recomputes exactly this). Positives are averaged by FedAvg weighted by "num-examples";
    when nothing is Positive the current global model is kept.

    Parameters
    ----------
    judge : Judge
        Trains the reference model and scores models on the validator's private data.
    mad_bps : int (default: 2_500)
        Maximum Acceptable Deviation in basis points (the paper's 25%).
    **kwargs
        Passed to `FedAvg` (fraction_train, min_train_nodes, weighted_by_key, ...).

    After `aggregate_train`, `reference_score` and `decisions` describe the round and `validation_s` is
    the time spent training the reference and scoring replies.
    """

    def __init__(self, judge: Judge, mad_bps: int = DEFAULT_MAD_BPS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.judge = judge
        self.mad_bps = mad_bps
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
            raise RuntimeError("aggregate_train before configure_train: no reference accuracy")
        start = time.perf_counter()
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        positives = []
        for reply in valid:
            metrics = reply.content["metrics"]
            result = self.judge.score(reply.content[self.arrayrecord_key])
            positive = is_positive(result.bps, self.reference_score.bps, self.mad_bps)
            self.decisions.append(Decision(
                node_id=reply.metadata.src_node_id, trainer_id=int(metrics.get("trainer-id", -1)),
                score=result, num_examples=int(metrics[self.weighted_by_key]), positive=positive))
            if positive:
                positives.append(reply)
        self.validation_s += time.perf_counter() - start
        if not positives:
            return self.current_arrays, None
        return super().aggregate_train(server_round, positives)
