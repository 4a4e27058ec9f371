"""Who is paid and who produces next: the payment order of Positives and the FLPoS election order. Pure."""
from __future__ import annotations

from typing import Mapping

from eth_utils import keccak

from dapp.schema import RULE_BEST_CONTRIBUTION, RULE_GREATEST_STAKE, RULE_RANDAO_DRAW


def ranked_tiers(scored: list[tuple[str, int]]) -> list[list[str]]:
    """Trainers grouped by equal score, best score first, in the given order within a score."""
    by_score: dict[int, list[str]] = {}
    for trainer, score in scored:
        by_score.setdefault(score, []).append(trainer)
    return [by_score[score] for score in sorted(by_score, reverse=True)]


def pay_in_order(tiers: list[list[str]], amounts: Mapping[str, int], budget: int) -> list[tuple[str, int]]:
    """Pay each trainer its amount, tier by tier, from ``budget``; a tier the rest cannot pay in full shares it in
    proportion to the amounts (equal amounts: equal shares; wei that do not divide stay in escrow, or pay a later,
    smaller tier). Never by address, so no key can buy its place."""
    paid: list[tuple[str, int]] = []
    left = budget
    for tied in tiers:
        wanted = sum(amounts[t] for t in tied)
        if wanted == 0:
            continue
        shares = [(t, amounts[t] if wanted <= left else amounts[t] * left // wanted) for t in tied]
        shares = [(t, a) for t, a in shares if a > 0]
        if not shares:
            break
        paid += shares
        left -= sum(a for _, a in shares)
    return paid


def share_of(budget: int, share_bps: int) -> int:
    """A shapley task's pay for a Positive: its share (basis points) of its group's round budget, floored."""
    return budget * share_bps // 10_000


def election_order(validators: list[str], live: set[str], stakes: Mapping[str, int], rewarded: str,
                   prev_randao: bytes) -> tuple[list[str], int]:
    """FLPoS: who closes the next round, in turn, and the rule that put the first there.

    Validators that reported this round (``live``) come before those that did not; within each, the greatest
    stake first, then the one rewarded this round, then the lowest ``keccak256(prev_randao ‖ address)``.
    The rule is 0 (greatest stake), 1 (tie, best contribution) or 2 (tie, prev_randao draw)."""
    def key(v: str) -> tuple:
        return (v not in live, -stakes[v], v != rewarded, keccak(prev_randao + bytes.fromhex(v[2:])))

    order = sorted(validators, key=key)
    first = order[0]
    tied = [v for v in order if v in live and stakes[v] == stakes[first]]
    if len(tied) == 1:
        return order, RULE_GREATEST_STAKE
    return order, RULE_BEST_CONTRIBUTION if first == rewarded else RULE_RANDAO_DRAW
