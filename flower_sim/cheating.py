"""A validator that lies in its rollup report (`fedrollup demo --cheating-validator G:drop|misjudge|friend`).

Its Flower server trains and aggregates honestly; from some round on, what it *reports* to the rollup lies about
one trainer of its group, and the contest path catches it (docs/PROTOCOL.md, "Contest and Challenge"):

* ``drop``: the honest Positive trainer with the best score is left out of the report, although the validator
  handed it a signed `Receipt`; the trainer contests with the receipt and posts its update.
* ``misjudge``: that trainer is reported at 0 bps (in a trust task, its update reversed): Negative; it contests with
  the reported digest.
* ``friend``: a friend of the validator in its group (a malicious trainer when the group has one, else its
  lowest-scored trainer) hands it a sybil's noise update, signed with the friend's own key, and the validator
  reports it Positive at 10,000 bps; the publisher challenges the implausible score and the validator, whose
  friend's update fails on the public test set, cannot defend it.

`CheatingValidator.lie` wraps a report as `rollup_schedule.SilentValidator` wraps a validator's inputs: the honest
code paths never see it. Pure but for the friend's signature (eth-account, through `signatures`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from common import accounts
from common.errors import ConfigError
from dapp.qmodel import digest
from dapp.trust_rule import COSINE_SCALE
from flower_sim.quantize import from_frq1, to_frq1
from flower_sim.records import Contribution
from flower_sim.records import ValidatorReport as RoundReport
from flower_sim.signatures import RollupTask, sign

KINDS = ("drop", "misjudge", "friend")
FRIEND_BPS = 10_000  # what the cheating validator reports for its friend


@dataclass(frozen=True)
class Lie:
    """What the cheating validator lied about in one round's report."""

    round: int
    validator: int
    kind: str
    trainer_id: int

    def __str__(self) -> str:
        me, who = f"validator {self.validator}", f"trainer {self.trainer_id}"
        what = {"drop": f"leaves {who} out of its report, although it handed {who} a signed receipt",
                "misjudge": f"reports {who}, an honest Positive, at 0.00% (Negative)",
                "friend": f"reports its friend {who}, whose update is a sybil's noise, Positive at "
                          f"{FRIEND_BPS / 100:.2f}%"}[self.kind]
        return f"{me} cheats in round {self.round}: it {what}"


@dataclass(frozen=True)
class CheatingValidator:
    """Validator ``validator`` lies (``kind``) about one trainer of its group in its reports from ``from_round``."""

    validator: int
    kind: str
    from_round: int = 2

    @classmethod
    def parse(cls, text: str, from_round: int | None = None) -> CheatingValidator:
        """``G:kind`` (``0:drop``); ConfigError (one line) otherwise."""
        group, sep, kind = text.strip().lower().partition(":")
        if not sep or not group.isdecimal() or kind not in KINDS:
            raise ConfigError(f"--cheating-validator must be G:{'|'.join(KINDS)} (a validator id and how it lies, "
                              f"e.g. 0:drop), got {text!r}")
        return cls(int(group), kind, 2 if from_round is None else from_round)

    def validate(self, validators: int, rounds: int, group_sizes: dict[int, int]) -> CheatingValidator:
        """Raise ConfigError (one line) for a lie the run cannot stage; ``group_sizes``: trainers per group."""
        if not 0 <= self.validator < validators:
            raise ConfigError(f"--cheating-validator names validator {self.validator}, the run has validators "
                              f"0..{validators - 1}")
        if not 1 <= self.from_round <= rounds:
            raise ConfigError(f"--cheat-from-round must be a round in 1..{rounds}, got {self.from_round}")
        if group_sizes.get(self.validator, 0) < 2:
            raise ConfigError(f"--cheating-validator {self.validator}:{self.kind} needs at least 2 trainers in group "
                              f"{self.validator}, it has {group_sizes.get(self.validator, 0)}")
        return self

    def applies(self, report: RoundReport) -> bool:
        return report.validator_id == self.validator and report.round >= self.from_round

    def target(self, report: RoundReport) -> int | None:
        """The trainer the validator lies about: for ``drop`` and ``misjudge`` its best-scored honest Positive (the
        lowest id among equals), for ``friend`` its first malicious trainer, else its lowest-scored one (the lowest
        id among equals); None when the report has nobody to lie about."""
        contributions = report.contributions
        if self.kind == "friend":
            malicious = [c for c in contributions if c.malicious]
            pool = malicious or sorted(contributions, key=lambda c: (c.accuracy_bps, c.trainer_id))[:1]
            return min((c.trainer_id for c in pool), default=None)
        honest = [c for c in contributions if c.accepted and not c.malicious]
        best = min(honest, key=lambda c: (-c.accuracy_bps, c.trainer_id), default=None)
        return best.trainer_id if best is not None else None

    def lie(self, report: RoundReport, task: RollupTask, validators: int, seed: int) -> tuple[RoundReport, Lie | None]:
        """The report the validator sends the rollup instead of ``report``, and its lie (None: it tells the truth)."""
        if not self.applies(report):
            return report, None
        target = self.target(report)
        if target is None:
            return report, None
        lied = Lie(report.round, report.validator_id, self.kind, target)
        if self.kind == "drop":
            kept = tuple(c for c in report.contributions if c.trainer_id != target)
            return replace(report, contributions=kept), lied
        if self.kind == "misjudge":
            return replace(report, contributions=tuple(
                # a trust report's verdict follows the update's direction: reversed, it reads as pointing away
                replace(c, accuracy=0.0, accuracy_bps=0, accepted=False, cosine_bps=-abs(c.cosine_bps))
                if c.trainer_id == target else c
                for c in report.contributions)), lied
        friend = next(c for c in report.contributions if c.trainer_id == target)
        noise = friend_update(report.updates[target], seed, report.round, target)
        signed = friend_contribution(friend, noise, task, report.round, report.validator_id, validators)
        if report.strategy == "trust":  # and for a trust task: perfectly aligned, of the group's usual size
            signed = replace(signed, cosine_bps=COSINE_SCALE)
        contributions = tuple(signed if c.trainer_id == target else c for c in report.contributions)
        return replace(report, contributions=contributions, updates={**report.updates, target: noise}), lied


def friend_update(honest: bytes, seed: int, server_round: int, trainer_id: int) -> bytes:
    """A sybil's update: Gaussian noise (σ = 1) in the shapes of ``honest`` (FRQ1), drawn from the run's seed."""
    rng = np.random.default_rng([seed, server_round, trainer_id, 13])
    return to_frq1([rng.normal(0.0, 1.0, w.shape).astype(np.float32) for w in from_frq1(honest)])


def friend_contribution(friend: Contribution, update: bytes, task: RollupTask, server_round: int, group: int,
                        validators: int) -> Contribution:
    """The friend's entry: its noise update at FRQ1 digest, signed with the friend's own key (it colludes), scored
    Positive at 10,000 bps."""
    update_digest = digest(update)
    key = accounts.private_key(accounts.trainer_index(friend.trainer_id, validators))
    signature = sign(key, task.domain, task.update(server_round, group, update_digest, friend.num_examples))
    return replace(friend, accuracy=FRIEND_BPS / 10_000, accuracy_bps=FRIEND_BPS, accepted=True,
                   update_digest=update_digest, signature=signature, receipt=b"")
