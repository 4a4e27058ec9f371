"""MadFedAvg: FedAvg over the contributions that pass the Maximum Acceptable Deviation rule.

Reference: J. P. de Brito Gonçalves et al., "A Quality-of-Service Compliance System using Federated
Learning and Optimistic Rollups", §4 and Algorithm 1 ("Rewards Analysis").
"""
from __future__ import annotations

from flwr.app import Message

from dapp.mad import DEFAULT_MAD_BPS, is_positive
from flower_sim.judging import Decision, Judge, JudgingFedAvg

__all__ = ["Decision", "Judge", "MadFedAvg"]


class MadFedAvg(JudgingFedAvg):
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
        super().__init__(judge, **kwargs)
        self.mad_bps = mad_bps

    def judge_replies(self, server_round: int, replies: list[Message]) -> list[Decision]:
        decisions = []
        for reply in replies:
            score = self.scored(reply)
            positive = is_positive(score.bps, self.reference_score.bps, self.mad_bps)
            reason = "" if positive else (f"its accuracy on the validator's data ({score.bps / 100:.2f} %) is under "
                                          f"{100 - self.mad_bps / 100:g} % of the validator's own "
                                          f"({self.reference_score.bps / 100:.2f} %)")
            decisions.append(self.decision(reply, score, positive, reason=reason))
        return decisions
