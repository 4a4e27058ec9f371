"""The validator: Flower server logic for one group of trainers (MAD or a baseline strategy).

A validator owns a private data set, a Grid that reaches only its group (in-process here, its own
SuperLink in a deployment), and one Flower strategy. A round is the strategy's own
`configure_train` -> `send_and_receive` -> `aggregate_train`; around it the validator scores every reply on
its data for the record, writes its aggregated model as `.npz` and reports the round.

Strategies (`--strategy`): `mad` (MadFedAvg), and Flower's own `fedavg` (no validation), `krum`,
`median` (FedMedian) and `trimmed` (FedTrimmedAvg), all applied to the group's replies only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedMedian, FedTrimmedAvg, Krum

from flower_sim import models
from flower_sim.config import SimulationConfig
from flower_sim.data import Dataset
from flower_sim.mad_strategy import MadFedAvg
from flower_sim.models import Score
from flower_sim.npz import save_weights
from flower_sim.records import Contribution, ValidatorReport


class ValidatorJudge:
    """The validator's private data and models: trains its reference model and scores received ones."""

    def __init__(self, validator_id: int, data: Dataset, cfg: SimulationConfig) -> None:
        self.validator_id = validator_id
        self.data = data
        self.cfg = cfg
        self.round = 0

    def reference(self, global_arrays: ArrayRecord) -> Score:
        self.round += 1
        model = models.shared_model(self.cfg.model, self.cfg.lr, "validator")
        seed = int(np.random.SeedSequence([self.cfg.seed, self.round, self.validator_id, 2]).generate_state(1)[0])
        weights, _ = models.train(model, global_arrays.to_numpy_ndarrays(), self.data.x, self.data.y,
                                  epochs=self.cfg.validator_epochs, batch_size=self.cfg.batch_size, seed=seed)
        return models.score(model, weights, self.data.x, self.data.y)

    def score(self, arrays: ArrayRecord) -> Score:
        model = models.shared_model(self.cfg.model, self.cfg.lr, "evaluator")
        return models.score(model, arrays.to_numpy_ndarrays(), self.data.x, self.data.y)


def make_strategy(cfg: SimulationConfig, judge: ValidatorJudge, group_size: int) -> FedAvg:
    """The group's strategy; every one samples all of the group's trainers each round."""
    common = dict(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=group_size,
                  min_available_nodes=group_size)
    if cfg.strategy == "mad":
        return MadFedAvg(judge, mad_bps=cfg.mad_bps, **common)
    if cfg.strategy == "fedavg":
        return FedAvg(**common)
    if cfg.strategy == "krum":
        # Krum needs n > 2f + 2: assume the malicious share of the run, capped at what n allows.
        expected = -(-cfg.malicious_count // cfg.validators)
        return Krum(num_malicious_nodes=max(0, min(expected, (group_size - 3) // 2)), **common)
    if cfg.strategy == "median":
        return FedMedian(**common)
    if cfg.strategy == "trimmed":
        return FedTrimmedAvg(beta=cfg.trim_beta, **common)
    raise ValueError(f"unknown strategy {cfg.strategy!r}")


@dataclass
class ValidatorRound:
    """What the manager receives from a validator: its aggregated weights and its report."""

    weights: list[np.ndarray]
    report: ValidatorReport


class Validator:
    """One validator group: a Grid view, a strategy, a judge over private data."""

    def __init__(self, validator_id: int, grid: Grid, judge: ValidatorJudge, cfg: SimulationConfig,
                 malicious: frozenset[int], out_dir: Path) -> None:
        self.validator_id = validator_id
        self.grid = grid
        self.judge = judge
        self.cfg = cfg
        self.malicious = malicious
        self.out_dir = out_dir
        self.strategy = make_strategy(cfg, judge, len(list(grid.get_node_ids())))

    def train_config(self) -> ConfigRecord:
        return ConfigRecord({"local-epochs": self.cfg.local_epochs, "batch-size": self.cfg.batch_size,
                             "lr": self.cfg.lr})

    def run_round(self, server_round: int, global_weights: list[np.ndarray]) -> ValidatorRound:
        """Send the global model to the group, judge and aggregate the replies, save and report."""
        global_arrays = ArrayRecord(global_weights)
        t0 = time.perf_counter()
        messages = list(self.strategy.configure_train(server_round, global_arrays, self.train_config(),
                                                      self.grid))
        t1 = time.perf_counter()
        replies = list(self.grid.send_and_receive(messages))
        t2 = time.perf_counter()
        # Baselines do not judge; score their replies for the record before aggregating, because some
        # Flower strategies (FedMedian) consume the replies' arrays while aggregating.
        scored, scoring_s = ([], 0.0) if isinstance(self.strategy, MadFedAvg) else self._score_replies(replies)
        t3 = time.perf_counter()
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        t4 = time.perf_counter()
        weights = arrays.to_numpy_ndarrays() if arrays is not None else global_weights
        contributions = self._contributions(replies, scored, metrics)
        validation_s = getattr(self.strategy, "validation_s", scoring_s)
        reference = getattr(self.strategy, "reference_score", None)
        path = self.out_dir / f"round-{server_round:03d}-validator-{self.validator_id}.npz"
        digest = save_weights(path, weights)
        report = ValidatorReport(
            round=server_round, validator_id=self.validator_id, strategy=self.cfg.strategy,
            own_accuracy=reference.accuracy if reference else None,
            own_accuracy_bps=reference.bps if reference else None,
            contributions=tuple(contributions), model_file=path.name, model_sha256=digest,
            training_s=t2 - t1, validation_s=validation_s,
            aggregation_s=(t4 - t3) + (t1 - t0) - (validation_s if isinstance(self.strategy, MadFedAvg) else 0.0))
        return ValidatorRound(weights=weights, report=report)

    def _score_replies(self, replies: list[Message]) -> tuple[list[tuple[int, Score, int, bool]], float]:
        """(trainer id, score on the validator's data, samples, attacked) of every reply, and the time taken."""
        start = time.perf_counter()
        scored = []
        for reply in replies:
            m = reply.content["metrics"]
            scored.append((int(m["trainer-id"]), self.judge.score(reply.content["arrays"]),
                           int(m["num-examples"]), bool(m["attacked"])))
        return scored, time.perf_counter() - start

    def _contributions(self, replies: list[Message], scored, metrics) -> list[Contribution]:
        """Every reply with its accuracy on the validator's data and whether the strategy used it."""
        if isinstance(self.strategy, MadFedAvg):
            attacked = {int(r.content["metrics"]["trainer-id"]): bool(r.content["metrics"]["attacked"])
                        for r in replies}
            return [self._contribution(d.trainer_id, d.score, d.num_examples, d.positive, attacked[d.trainer_id])
                    for d in self.strategy.decisions]
        krum_pick = None
        if isinstance(self.strategy, Krum) and metrics is not None:
            krum_pick = round(float(metrics["trainer-id"]))  # Krum keeps one reply: its id survives averaging
        return [self._contribution(t, score, n, krum_pick is None or t == krum_pick, attacked)
                for t, score, n, attacked in scored]

    def _contribution(self, trainer_id: int, score: Score, n: int, accepted: bool, attacked: bool) -> Contribution:
        return Contribution(trainer_id=trainer_id, validator_id=self.validator_id, accuracy=score.accuracy,
                            accuracy_bps=score.bps, num_examples=n, accepted=accepted,
                            malicious=trainer_id in self.malicious, attacked=attacked)
