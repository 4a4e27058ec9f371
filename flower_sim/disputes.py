"""The disputes of a recorded run (docs/PROTOCOL.md, "Contest and Challenge"), each from its party's own key.

Once a round's reports are in and the validators' models revealed, before the close:

* every **trainer** reads its group's `ContributionClassified` notices; one left out although it holds its
  validator's `Receipt` (dropped), or reported Negative (misjudged), scores its own update on the public test set
  as the rollup will (`dapp.qnn`) and contests when the task's rule upholds it against the validator model's public
  accuracy: it sends `Contest` and posts its update (`ModelChunk`s) in the same breath;
* the **publisher** challenges the reported Positives whose score is implausible (`implausible`: more than
  `CHALLENGE_MARGIN_BPS` above the median Positive of the same report, or above `CHALLENGE_CEILING_BPS`), the
  highest first, at most the task's challenges per group and round;
* a **validator** whose Positive is challenged posts the update in its defence when the rule would keep it
  Positive on the public numbers; otherwise it posts nothing (the round then waits for the response deadline).

`DisputeDesk` does this for a `RollupRecorder` and says each dispute, and its verdict at the close, in words. It
acts where the parties' evidence is, in a run of one process (the reports carry the updates' bytes); across the
emulated network the updates stay on the validators' hosts and it files nothing.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median_low
from typing import Any

from dapp import qnn
from dapp.mad import is_positive
from dapp.qmodel import Arch, QModelError, decode
from dapp.schema import (DISPUTE_CHALLENGED, DISPUTE_DROPPED, DISPUTE_MISJUDGED, Challenge, Contest, Contested,
                         ContestResolved, ContributionClassified, ModelChunk, RewardPaid, ValidatorPenalized)
from dapp.state import format_wei
from flower_sim.records import ValidatorReport as RoundReport
from flower_sim.rollup_inputs import model_chunks

CHALLENGE_MARGIN_BPS = 2_000  # a Positive more than 20 points above the median Positive of its report ...
CHALLENGE_CEILING_BPS = 9_900  # ... or above 99 %, is implausible: the publisher challenges it
NO_RECEIPT = bytes(32)


def implausible(accuracy_bps: int, median_bps: int) -> bool:
    """The publisher's policy: a reported score it does not believe, against the median Positive of the report
    (trainers of one group, scored on the same private data, land within a few points of each other)."""
    return accuracy_bps > min(median_bps + CHALLENGE_MARGIN_BPS, CHALLENGE_CEILING_BPS)


def challenges(classified: list[ContributionClassified], per_group: int) -> list[ContributionClassified]:
    """The Positives the publisher challenges: the implausible ones, highest score first (then by report order),
    at most ``per_group`` in each group."""
    positives: dict[int, list[int]] = {}
    for c in classified:
        if c.positive:
            positives.setdefault(c.group, []).append(c.accuracy_bps)
    suspects = [c for c in classified if c.positive and implausible(c.accuracy_bps, median_low(positives[c.group]))]
    picked: list[ContributionClassified] = []
    for c in sorted(suspects, key=lambda c: -c.accuracy_bps):
        if sum(p.group == c.group for p in picked) < per_group:
            picked.append(c)
    return picked


@dataclass(frozen=True)
class Held:
    """What a trainer keeps of its update of a round: the update, its digest and samples, its validator's receipt."""

    trainer_id: int
    address: str  # lowercase
    group: int
    update: bytes
    update_digest: bytes
    samples: int
    receipt: bytes  # 64 bytes: r ‖ yParityAndS


def grievance(held: Held, classified: list[ContributionClassified]) -> int | None:
    """DISPUTE_DROPPED when the trainer is missing from its group's notices, DISPUTE_MISJUDGED when reported
    Negative, None when reported Positive (nothing to contest)."""
    mine = [c for c in classified if c.trainer.lower() == held.address]
    if not mine:
        return DISPUTE_DROPPED
    return None if mine[0].positive else DISPUTE_MISJUDGED


def upholds(update_bps: int | None, model_bps: int | None, mad_bps: int) -> bool:
    """Whether the task's rule would uphold a trainer's contest on the public numbers: its update is a valid model
    and Positive against the validator model's public accuracy (or that model was never revealed)."""
    return update_bps is not None and (model_bps is None or is_positive(update_bps, model_bps, mad_bps))


def public_accuracy(update: bytes, test_set: qnn.TestSet) -> int | None:
    """The update's accuracy on the public test set, as the rollup scores it (None: not a valid model)."""
    try:
        return qnn.accuracy(decode(update), test_set)
    except (QModelError, qnn.QnnError):
        return None


def contest_inputs(task_id: int, round_: int, held: Held, kind: int) -> list[Contest | ModelChunk]:
    """A trainer's contest of ``kind`` and its update's chunks, in the order it sends them (a dropped trainer's
    contest carries its validator's receipt)."""
    receipt = (held.receipt[:32], held.receipt[32:]) if kind == DISPUTE_DROPPED else (NO_RECEIPT, NO_RECEIPT)
    return [Contest(task_id, round_, held.update_digest, held.samples, *receipt),
            *model_chunks(task_id, round_, held.update_digest, held.update)]


class Chatter:
    """Says the first `LIMIT` lines of each kind, then counts the rest: at 1,000 trainers a round had 100 contests,
    and a log of 100 alike lines per step says less to a researcher than five and a count (`summary`)."""

    LIMIT = 5

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.counts = say, Counter()

    def __call__(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= self.LIMIT:
            self.say(text)

    def summary(self, round_: int) -> None:
        """One line per kind that had more than `LIMIT`: how many were not said."""
        for kind, n in self.counts.items():
            if n > self.LIMIT:
                self.say(f"… and {n - self.LIMIT} more {kind} in round {round_} (`fedrollup console disputes` lists "
                         f"every dispute and its verdict)")


def pct(bps: int | None) -> str:
    return "none (not revealed)" if bps is None else f"{bps / 100:.2f}%"


class DisputeDesk:
    """The trainers', the publisher's and the validators' dispute logic for one `RollupRecorder` (``recorder``:
    its keys, its `_send`/`_confirm`/`_notices`, its `say` and `who`)."""

    def __init__(self, recorder: Any, test_set: bytes, arch: Arch, mad_bps: int, challenges_per_round: int,
                 rejected: type[Exception]) -> None:
        self.r, self.mad_bps, self.per_group, self.rejected = recorder, mad_bps, challenges_per_round, rejected
        self.test_set = qnn.parse_test_set(test_set, arch)
        self.reports: dict[int, dict[int, tuple[RoundReport, RoundReport, Any]]] = {}  # round -> group -> ...

    def reported(self, honest: RoundReport, sent: RoundReport, tx) -> None:
        """Validator ``sent.validator_id`` sent ``sent`` in ``tx``; its trainers hold what ``honest`` gave them."""
        self.reports.setdefault(sent.round, {})[sent.validator_id] = (honest, sent, tx)

    def public_bps(self, update: bytes) -> int | None:
        return public_accuracy(update, self.test_set)

    def file(self, round_: int, model_bps: dict[str, int]) -> None:
        """Every dispute of the round, each from its party's key, confirmed (a refused one is said, not fatal)."""
        reports = self.reports.pop(round_, {})
        if not any(honest.updates for honest, _, _ in reports.values()):
            return  # the updates' bytes are on the validators' hosts (the emulated network): no party here holds them
        classified = {g: [n for n in self.r._notices(self.r._input_index(tx)) if isinstance(n, ContributionClassified)]
                      for g, (_, _, tx) in reports.items()}
        sent: list[tuple[str, Any]] = []
        chat = Chatter(self.r.say)
        for g, (honest, _, _) in sorted(reports.items()):
            for held in self._held(honest):
                sent += self._contest(round_, held, classified[g], model_bps.get(str(g)), chat)
        picks = challenges([c for g in sorted(classified) for c in classified[g]], self.per_group)
        for c in picks:
            self.r.say(f"the publisher challenges {self.r.who(c.trainer)}'s score of {pct(c.accuracy_bps)} in "
                       f"validator {c.group}'s report of round {round_}: implausible (the validator's own reference "
                       f"scores {pct(c.validator_accuracy_bps)})")
            sent.append((f"the publisher's challenge of {self.r.who(c.trainer)}",
                         self.r._send(self.r.manager_key, Challenge(self.r.task_id, round_, c.trainer))))
        challenged = [n for n in self._confirm(sent, chat) if isinstance(n, Contested) and n.kind == DISPUTE_CHALLENGED]
        self._confirm([s for n in challenged for s in self._defend(round_, n, reports, model_bps.get(str(n.group)))],
                      chat)
        chat.summary(round_)

    def _held(self, honest: RoundReport) -> list[Held]:
        addresses = {t: self.r.trainer_addresses[t].lower() for t in honest.updates}
        return [Held(c.trainer_id, addresses[c.trainer_id], honest.validator_id, honest.updates[c.trainer_id],
                     c.update_digest, c.num_examples, c.receipt)
                for c in honest.contributions if c.receipt and c.trainer_id in honest.updates]

    def _contest(self, round_: int, held: Held, classified: list[ContributionClassified],
                 model_bps: int | None, chat: Chatter) -> list[tuple[str, Any]]:
        kind = grievance(held, classified)
        if kind is None:
            return []
        me = f"trainer {held.trainer_id}"
        why = (f"{me} was left out of validator {held.group}'s report of round {round_} although it holds a receipt"
               if kind == DISPUTE_DROPPED else f"validator {held.group} reported {me} Negative in round {round_}")
        update_bps = self.public_bps(held.update)
        if not upholds(update_bps, model_bps, self.mad_bps):
            chat("trainers who do not contest", f"{why}; its update scores {pct(update_bps)} on the public test set "
                 f"against the validator model's {pct(model_bps)}, which the rule would not uphold: it does not "
                 f"contest")
            return []
        key = self.r.trainer_keys[held.trainer_id]
        if key is None:  # it holds its own key (`fedrollup trainer --rollup-key-file`): it contests from its device
            return []
        chat("trainers who contest", f"{why}: it contests and posts its update ({len(held.update):,} bytes; it scores "
             f"{pct(update_bps)} on the public test set against the validator model's {pct(model_bps)})")
        inputs = contest_inputs(self.r.task_id, round_, held, kind)
        return [(f"{me}'s contest" if isinstance(m, Contest) else f"{me}'s update chunk {m.index}",
                 self.r._send(key, m)) for m in inputs]

    def _defend(self, round_: int, n: Contested, reports: dict, model_bps: int | None) -> list[tuple[str, Any]]:
        _, sent, _ = reports[n.group]
        trainer = self.r.who(n.trainer)
        update = next((sent.updates[c.trainer_id] for c in sent.contributions
                       if c.update_digest == n.update_digest and c.trainer_id in sent.updates), None)
        update_bps = self.public_bps(update) if update is not None else None
        if update is None or update_bps is None or model_bps is None \
                or not is_positive(update_bps, model_bps, self.mad_bps):
            self.r.say(f"validator {n.group} cannot defend {trainer}'s Positive: its update scores "
                       f"{pct(update_bps)} on the public test set against the validator model's {pct(model_bps)}; "
                       f"it posts nothing, and the round waits for the response deadline at block "
                       f"{n.response_deadline}")
            return []
        self.r.say(f"validator {n.group} defends {trainer}'s Positive: it posts the update, which scores "
                   f"{pct(update_bps)} on the public test set against its model's {pct(model_bps)}")
        key = self.r.validator_keys[n.group]
        if key is None:  # it holds its own key (`fedrollup validator --key-file`): its defences are not built yet
            self.r.say(f"validator {n.group} holds its own key: this process cannot defend {trainer}'s Positive "
                       f"for it; the round waits for the response deadline at block {n.response_deadline}")
            return []
        return [(f"validator {n.group}'s defence chunk {c.index}", self.r._send(key, c))
                for c in model_chunks(self.r.task_id, round_, n.update_digest, update)]

    def _confirm(self, sent: list[tuple[str, Any]], chat: Chatter) -> list:
        """The notices of every input confirmed; a refused dispute input is said and skipped."""
        notices = []
        for what, tx in sent:
            try:
                notices += self.r._notices(self.r._confirm(what, tx))
            except self.rejected as err:  # a late or refused dispute input does not stop the run
                chat("dispute inputs refused", f"{err}: this dispute input does not count")
        return notices

    def tell(self, notices: list) -> None:
        """The close's verdicts, in words: who, what, the public accuracies, who is paid first, the stake cut."""
        cuts = {(n.group, n.validator.lower()): n.stake_cut for n in notices if isinstance(n, ValidatorPenalized)}
        group_of = {address.lower(): self.r.cfg.group_of(t) for t, address in enumerate(self.r.trainer_addresses)}
        first: dict[int, str] = {}  # group -> the first trainer the close paid in it
        chat, round_ = Chatter(self.r.say), None
        for n in notices:
            if isinstance(n, RewardPaid):
                first.setdefault(group_of.get(n.trainer.lower(), -1), n.trainer.lower())
        for n in notices:
            if not isinstance(n, ContestResolved):
                continue
            validator = self.r.validator_addresses[n.group]
            who, v = self.r.who(n.trainer), f"validator {n.group}"
            what = f"the publisher's challenge of {who}" if n.kind == DISPUTE_CHALLENGED else f"{who}'s contest"
            scores = (f"its update scores {pct(n.update_bps)} on the public test set against the validator's "
                      f"{pct(n.validator_bps or None)}" if n.posted else "its update was not posted")
            round_ = n.round
            if not n.upheld:
                chat("disputes rejected", f"in round {n.round}, the rollup rejected {what}: {scores}; {v} keeps its "
                                          f"stake")
                continue
            cut = format_wei(cuts.get((n.group, validator), 0))
            pay = f"{who} is paid first" if n.kind != DISPUTE_CHALLENGED and first.get(n.group) == n.trainer.lower() \
                else f"{who} is not paid"
            chat("disputes upheld", f"in round {n.round}, the rollup upheld {what}: {scores}; {pay}, {v}'s stake "
                                    f"is cut by {cut}")
        if round_ is not None:
            chat.summary(round_)
