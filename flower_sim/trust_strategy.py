"""TrustFedAvg: the project's own validation (`--strategy trust`, issue 14), the rule of `dapp.trust_rule`.

MAD compares a trainer's model with the validator's fresh one-epoch model, which rejects honest trainers whose data
holds other digits. `trust` judges what an update does instead, as FLTrust (Cao et al., NDSS 2021) does: the
validator's own update δ_v (its one-epoch reference minus the global model) against each reply's δ_i, by direction
(cosine) and size (‖δ_i‖ / ‖δ_v‖). The float64 measures are reported as integers (`cosine_bps`, `norm_centi`) and the
verdicts come from those integers and the trainers' standings by `dapp.trust_rule.verdicts` over the whole group's
replies, so the rollup derives the same verdicts from the same report (a positive cosine, or above −0.2 for a trusted
trainer; from a third to 3 × the median size; not banned). Each trainer's `Standing` (score, strikes, bans) is kept
across rounds with `after_round`, as the rollup keeps it from the verdicts (the rollup's after disputes: in a run
without an upheld contest, the same), and the accepted are averaged weighted by `aggregation_weight(samples,
standing before the round)`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from dapp import trust_rule
from dapp.trust_rule import Standing
from flower_sim.judging import Decision, Judge, JudgingFedAvg


class TrustJudge(Judge, Protocol):
    """A judge that keeps its last reference model's weights (δ_v = those minus the global model)."""

    reference_weights: list[np.ndarray]


def flat(arrays: list[np.ndarray]) -> np.ndarray:
    """A model's weights as one float64 vector (the measures' arithmetic)."""
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def measures(update: np.ndarray, own: np.ndarray) -> tuple[int, int]:
    """(cosine bps, size centi) of an update δ_i against the validator's own δ_v. A zero vector has no direction
    (cosine 0: rejected); a zero δ_v makes every size unmeasurable (the report's cap)."""
    size, own_size = float(np.linalg.norm(update)), float(np.linalg.norm(own))
    cosine = float(update @ own) / (size * own_size) if size > 0 and own_size > 0 else 0.0
    return trust_rule.cosine_bps(cosine), trust_rule.norm_centi(size / own_size if own_size > 0 else float("inf"))


class TrustFedAvg(JudgingFedAvg):
    """FedAvg of the updates that point the validator's way and are not oversized, weighted by samples x standing.

    Parameters
    ----------
    judge : TrustJudge
        Trains the validator's reference (keeping its weights) and scores models on its private data.
    lag : int
        The rollup task's openRounds K: round r is judged by the standings after round r - K, as the rollup judges
        it (its reports may reach the chain before round r - 1 closes there); 1 without a rollup.
    **kwargs
        Passed to `FedAvg` (fraction_train, min_train_nodes, ...).

    `standings` holds each trainer's `Standing` after the last round; `decisions` carry the two measures.
    """

    def __init__(self, judge: TrustJudge, lag: int = 1, **kwargs) -> None:
        super().__init__(judge, **kwargs)
        self.lag = lag
        self.standings: dict[int, Standing] = {}
        self.after: dict[int, dict[int, Standing]] = {}  # lag > 1: round -> the standings after it (the last lag)
        self.weights: dict[int, int] = {}  # trainer id -> its weight in the last round's average (accepted only)

    def read_standings(self, server_round: int) -> dict[int, Standing]:
        """The standings round ``server_round`` is judged by: after the last round (lag 1), or after round r - lag."""
        if self.lag == 1:
            return self.standings
        kept = [r for r in self.after if r <= server_round - self.lag]
        return self.after[max(kept)] if kept else {}

    def judge_replies(self, server_round: int, replies: list[Message]) -> list[Decision]:
        start = flat(self.current_arrays.to_numpy_ndarrays())
        own = flat(self.judge.reference_weights) - start
        measured = [measures(flat(r.content[self.arrayrecord_key].to_numpy_ndarrays()) - start, own)
                    for r in replies]
        trainers = [int(r.content["metrics"].get("trainer-id", -1)) for r in replies]
        read = self.read_standings(server_round)
        before = [read.get(t, Standing()) for t in trainers]
        verdicts = trust_rule.verdicts(measured, before, server_round)  # the rollup's own function
        median = trust_rule.median_norm([n for _, n in measured])
        decisions, self.weights = [], {}
        for reply, trainer, standing, (cosine, norm), ok in zip(replies, trainers, before, measured, verdicts):
            why = "" if ok else trust_rule.rejection(cosine, norm, median, standing, server_round) or ""
            decision = self.decision(reply, self.scored(reply), ok, cosine_bps=cosine, norm_centi=norm, reason=why)
            if ok:
                self.weights[trainer] = trust_rule.aggregation_weight(decision.num_examples, standing)
            self.standings[trainer] = trust_rule.after_round(self.standings.get(trainer, Standing()), server_round, ok,
                                                             self.lag, standing.banned(server_round))
            decisions.append(decision)
        if self.lag > 1:
            self.after = {r: s for r, s in self.after.items() if r >= server_round - self.lag}
            self.after[server_round] = dict(self.standings)
        return decisions

    def aggregate_accepted(self, server_round: int,
                           accepted: list[tuple[Message, Decision]]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The accepted updates averaged by `aggregation_weight`; none of them weighing anything (every accepted
        trainer at score 0) keeps the global model."""
        weights = [self.weights[d.trainer_id] for _, d in accepted]
        if sum(weights) == 0:
            return None, None
        weighted = [RecordDict({"arrays": reply.content[self.arrayrecord_key], "weight": MetricRecord({"w": w})})
                    for (reply, _), w in zip(accepted, weights)]
        return aggregate_arrayrecords(weighted, "w"), None
