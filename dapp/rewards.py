"""Who is paid and who produces next: the payment order of Positives and the FLPoS election order. Pure."""
from __future__ import annotations

from typing import Mapping

from eth_utils import keccak

from dapp.schema import RULE_BEST_CONTRIBUTION, RULE_GREATEST_STAKE, RULE_RANDAO_DRAW, Contribution


def positive_rewards(positives: list[Contribution], reward: int, budget: int) -> list[tuple[str, int]]:
    """What each Positive of a group earns from the group's budget: the best scores first; Positives with the
    same score share pro rata what is left when it cannot pay them all in full (wei that do not divide stay
    in escrow). Never by address, so no key can buy its place. In report order within a score."""
    return pay_in_order(ranked_tiers([(c.trainer, c.accuracy_bps) for c in positives]), reward, budget)


def ranked_tiers(scored: list[tuple[str, int]]) -> list[list[str]]:
    """Trainers grouped by equal score, best score first, in the given order within a score."""
    by_score: dict[int, list[str]] = {}
    for trainer, score in scored:
        by_score.setdefault(score, []).append(trainer)
    return [by_score[score] for score in sorted(by_score, reverse=True)]


def pay_in_order(tiers: list[list[str]], reward: int, budget: int) -> list[tuple[str, int]]:
    """Pay ``reward`` to each trainer, tier by tier, from ``budget``; a tier the rest cannot pay in full shares it
    pro rata (wei that do not divide stay in escrow, or pay a later, smaller tier)."""
    paid: list[tuple[str, int]] = []
    left = budget
    for tied in tiers:
        if not tied:
            continue
        amount = min(reward, left // len(tied))
        if amount == 0:
            break
        paid += [(trainer, amount) for trainer in tied]
        left -= amount * len(tied)
    return paid


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
