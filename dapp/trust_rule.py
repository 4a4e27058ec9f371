"""The project's own validation rule, `trust`, and the trainers' standing across rounds (issue 14). Integers only.

MAD (`dapp.mad`) compares a trainer's model with a fresh one-epoch model: on non-IID data an honest trainer whose
partition holds two digits scores far below it and is rejected. `trust` judges what an update *does*, the way
FLTrust (Cao et al., NDSS 2021) does: the validator trains its own update δ_v from the global model on its private
data and, for each trainer's update δ_i, reports

  * its direction, cos(δ_i, δ_v) in basis points (−10,000..10,000): an honest update on any partition still
    points, on the whole, where the validator's own data pulls (measured +0.05 … +0.71 in round 1); a reversed
    update points away;
  * its size, ‖δ_i‖ / ‖δ_v‖ in hundredths: a boosted or noised update is many times the group's usual size.

The rollup re-derives every verdict from those numbers: an update is accepted when its size is within a factor
`NORM_LIMIT` of the median size of the updates in the same report, either way (a median, so fewer than half of the
group cannot move it; at most 3x catches boosted and noised updates, at least a third a free-rider's empty or
shrunken one: honest updates measured 0.55x to 1.84x the median), its cosine is positive — or, for a *trusted*
trainer (a score of at least `TRUSTED_SCORE` and no rejection since its last acceptance), above −`DOUBT_BPS` — and
its trainer is not banned. The benefit of the doubt
is what reputation buys: once the global model is good, an honest update from a skewed partition is nearly
orthogonal to the validator's (cosines −0.11 … +0.1 measured after 5 rounds on Dirichlet 0.3), and a strict
cos > 0 rejected 27 % of honest updates over 20 rounds; a reversed update is caught in round 1, where its cosine is
clearly negative and nobody is trusted yet, and never earns the doubt back by attacking. The same functions decide
in the validator (`flower_sim.trust_strategy`), so the two planes agree bit for bit, as they do for MAD.

Standing: every trainer of a `trust` task has a score (0..`SCORE_MAX`, `SCORE_START` when it joins) that rises by
`SCORE_GAIN` with each accepted update and falls by `SCORE_LOSS` with each rejected one. The score weighs what it
is paid (`payout`) and how much its update counts in its validator's average (`aggregation_weight`).
`STRIKES_TO_BAN` rejections in a row ban it for `BAN_ROUNDS` rounds, doubled with each further ban; while banned
its updates are rejected and unpaid and its standing waits; when the ban ends it comes back with its strikes
cleared and the score it had, and earns trust back round by round.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

COSINE_SCALE = 10_000  # cosine in basis points
NORM_SCALE = 100  # size ratio in hundredths
MAX_NORM = 0xFFFF  # the report's 16 bits: a size ratio above 655.35 is reported as this
NORM_LIMIT = 3  # accepted sizes: from a third of the report's median size to 3 x it
DOUBT_BPS = 2_000  # a trusted trainer's update passes with a cosine above -0.2

SCORE_MAX = 10_000
SCORE_START = 5_000  # a newcomer is paid half until it has shown its updates are sound
SCORE_GAIN = 1_000
SCORE_LOSS = 2_500
TRUSTED_SCORE = 6_000  # a newcomer is trusted after its first accepted update
STRIKES_TO_BAN = 3
BAN_ROUNDS = 3


def cosine_bps(cosine: float) -> int:
    """A cosine (float, from the validator's arithmetic) as the integer basis points the report carries."""
    return max(-COSINE_SCALE, min(COSINE_SCALE, round(cosine * COSINE_SCALE)))


def norm_centi(ratio: float) -> int:
    """A size ratio ‖δ_i‖ / ‖δ_v‖ as the report's hundredths, capped at `MAX_NORM`; not finite -> the cap."""
    if not ratio == ratio or ratio == float("inf"):  # NaN or inf: an update no finite arithmetic measures
        return MAX_NORM
    return max(0, min(MAX_NORM, round(ratio * NORM_SCALE)))


def median_norm(norms: Sequence[int]) -> int:
    """The lower median of a report's sizes (0 for an empty report): what fewer than half cannot move."""
    ordered = sorted(norms)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0


@dataclass(frozen=True)
class Standing:
    """A trainer's standing in one task: its score, rejections in a row, bans so far, last banned round (0: none)."""

    score: int = SCORE_START
    strikes: int = 0
    bans: int = 0
    banned_until: int = 0

    def banned(self, round_: int) -> bool:
        return round_ <= self.banned_until

    @property
    def trusted(self) -> bool:
        """Earned the benefit of the doubt: a score of at least `TRUSTED_SCORE`, no rejection since its last
        acceptance."""
        return self.score >= TRUSTED_SCORE and self.strikes == 0


def rejection(cosine: int, norm: int, median: int, standing: Standing, round_: int) -> str | None:
    """Why the rule rejects one update of round `round_` (None: accepted), in words a researcher reads.

    Exactly `NORM_LIMIT` x and exactly 1 / `NORM_LIMIT` of the median size pass; a cosine of exactly 0 passes only
    for a trusted trainer, and exactly -`DOUBT_BPS` never."""
    if standing.banned(round_):
        return f"its trainer is banned until round {standing.banned_until}"
    if norm > NORM_LIMIT * median:
        return (f"its update is {norm / NORM_SCALE:.2f} x the validator's own, above {NORM_LIMIT} x the group's median "
                f"{median / NORM_SCALE:.2f}")
    if norm * NORM_LIMIT < median:
        return (f"its update is {norm / NORM_SCALE:.2f} x the validator's own, below a {NORM_LIMIT}rd of the group's "
                f"median {median / NORM_SCALE:.2f} (little or no training)")
    floor = -DOUBT_BPS if standing.trusted else 0
    if cosine <= floor:
        return (f"its update points away from the validator's (cos {cosine / COSINE_SCALE:+.2f}"
                + (f", trusted: the floor is {floor / COSINE_SCALE:+.2f})" if standing.trusted else ")"))
    return None


def verdicts(measures: Sequence[tuple[int, int]], standings: Sequence[Standing], round_: int) -> list[bool]:
    """The rule on a whole report: (cosine bps, size centi) per update and its trainer's standing before the round,
    in report order -> accepted or not."""
    median = median_norm([n for _, n in measures])
    return [rejection(c, n, median, s, round_) is None for (c, n), s in zip(measures, standings, strict=True)]


def after_round(standing: Standing, round_: int, was_accepted: bool, lag: int = 1,
                judged_banned: bool | None = None) -> Standing:
    """The standing after `round_`'s verdict on one of its updates. A trainer whose verdict was a ban
    (`judged_banned`, default: banned in `standing`) does not move.

    `lag`: the verdicts of round r read the standings after round r - `lag` (a task with `lag` rounds open on chain
    at once, `openRounds`), so a ban decided now first shows in round `round_ + lag`; it lasts `BAN_ROUNDS x 2^bans`
    rounds of verdicts from there (lag 1: the rounds right after this one)."""
    if standing.banned(round_) if judged_banned is None else judged_banned:
        return standing
    if was_accepted:
        return replace(standing, score=min(SCORE_MAX, standing.score + SCORE_GAIN), strikes=0)
    score, strikes = max(0, standing.score - SCORE_LOSS), standing.strikes + 1
    if strikes < STRIKES_TO_BAN:
        return replace(standing, score=score, strikes=strikes)
    return Standing(score=score, strikes=0, bans=standing.bans + 1,
                    banned_until=round_ + lag - 1 + BAN_ROUNDS * (1 << standing.bans))


def payout(reward: int, standing: Standing) -> int:
    """What an accepted update earns: the task's reward per Positive times the trainer's score (after the round)."""
    return reward * standing.score // SCORE_MAX


def aggregation_weight(samples: int, standing: Standing) -> int:
    """How much an accepted update counts in its validator's average: its samples times its trainer's score. Not its
    cosine (FLTrust's weight): on two-digit partitions honest cosines differ tenfold, and weighting by them starves
    the digits whose trainers point least the validator's way."""
    return samples * standing.score
