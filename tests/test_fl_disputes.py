"""A validator that lies in its rollup report is caught by the contest path, on the rollup's own rules: a dropped or
misjudged trainer contests and posts its update, the publisher challenges an implausible friend; the rollup pays
the wronged trainer first, cuts the liar's stake and does not reward it. The recorder, the cheating validator and
the disputes are the real ones; L1 and the node are tests/rollup_fakes.py (the same run on anvil and the node:
tests/test_e2e_demo.py). The updates and models are real `logreg` models scored by the rollup on the public set."""
from __future__ import annotations

import threading
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from eth_utils import to_checksum_address

from common import accounts
from common.errors import ConfigError
from dapp.schema import (DISPUTE_CHALLENGED, DISPUTE_DROPPED, DISPUTE_MISJUDGED, PENALTY_CHALLENGE, PENALTY_CONTEST,
                         Contested, ContestResolved, ContributionClassified, RewardPaid,
                         ValidatorPenalized, ValidatorRewarded)
from dapp.qmodel import digest as qmodel_digest
from dapp.state import format_wei
from flower_sim.cheating import CheatingValidator, Lie
from flower_sim.data import make_splits
from flower_sim.disputes import Chatter, challenges, implausible
from flower_sim.manager import global_model
from flower_sim.quantize import save_frq1, to_frq1
from flower_sim.records import Contribution, RoundRecord, ValidatorReport
from flower_sim.rollup_schedule import Schedule, plan_close
from flower_sim.signatures import sign
from frontend_console.views import disputes_table
from rollup_fakes import CFG, TERMS, FakeRollup, recorder_on
from test_console_late import text
from rollups_client.l1 import L1

DISPUTE_TERMS = replace(TERMS, contest_blocks=40, report_blocks=400)  # the fake chain moves a block per input and
# per look, and the worker looks while the next round reports: its report window must outlast the close
ROUNDS = 2


def centroid_weights(bias_nudge: float) -> list[np.ndarray]:
    """A logreg that scores every image against each digit's mean image (about 60% on the public set here);
    ``bias_nudge`` on class 0's bias gives every model a digest of its own at the same accuracy."""
    data = make_splits(CFG.split_spec()).test
    x, y = np.asarray(data.x, dtype=np.float64).reshape(len(data), -1), np.asarray(data.y)
    means = np.stack([x[y == k].mean(axis=0) for k in range(10)])
    kernel = (means - means.mean(axis=0)).T.astype(np.float32)
    bias = np.zeros(10, dtype=np.float32)
    bias[0] = bias_nudge
    return [kernel, bias]


def record_rounds(recorder, run_dir) -> dict[int, int]:
    """``ROUNDS`` rounds: every trainer sends a centroid model (nudged: its own digest), signed with its key; its
    validator receipts it and reports it Positive. Returns the trainers' group."""
    recorder.open_task(ROUNDS)
    task, groups = recorder.signing_task(), {t: CFG.group_of(t) for t in range(CFG.trainers)}
    for rnd in range(1, ROUNDS + 1):
        models = []
        for v in range(CFG.validators):
            vkey = accounts.private_key(accounts.validator_index(v))
            updates, contributions = {}, []
            for t in (t for t, g in groups.items() if g == v):
                updates[t] = to_frq1(centroid_weights(1e-3 * (rnd * 10 + t + 1)))
                digest = qmodel_digest(updates[t])
                address = accounts.address(accounts.trainer_index(t, CFG.validators))
                tkey = accounts.private_key(accounts.trainer_index(t, CFG.validators))
                contributions.append(Contribution(
                    trainer_id=t, validator_id=v, accuracy=0.9, accuracy_bps=9000 + t, num_examples=100 + t,
                    accepted=True, malicious=False, attacked=False, update_digest=digest,
                    signature=sign(tkey, task.domain, task.update(rnd, v, digest, 100 + t)),
                    receipt=sign(vkey, task.domain, task.receipt(rnd, address, digest, 100 + t))))
            models.append(to_frq1(centroid_weights(-1e-3 * (rnd * 10 + v + 1))))
            name = f"round-{rnd:03d}-validator-{v}.frq"
            recorder.on_validator_report(ValidatorReport(
                round=rnd, validator_id=v, strategy="mad", own_accuracy=0.91, own_accuracy_bps=9100,
                contributions=tuple(contributions), model_file=name, model_digest=save_frq1(run_dir / name, models[-1]),
                training_s=0.0, validation_s=0.0, aggregation_s=0.0, model=models[-1], updates=updates))
        glob = global_model(models)
        recorder.on_round_closed(RoundRecord(
            round=rnd, global_accuracy=0.8, global_accuracy_bps=8000, global_loss=0.3,
            global_model_file=f"round-{rnd:03d}.frq", global_digest=save_frq1(run_dir / f"round-{rnd:03d}.frq", glob),
            best_validator=0, validators=(), contributions=(), global_model=glob))
    recorder.finish()  # the last round's close, handed to the recorder's worker
    return groups


def run(monkeypatch, tmp_path, kind: str | None):
    rollup = FakeRollup()
    cheating = CheatingValidator(0, kind, from_round=2) if kind else None
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=DISPUTE_TERMS, cheating=cheating)
    record_rounds(recorder, tmp_path)
    assert "REJECTED" not in rollup.statuses.values(), [rollup.reasons]
    assert rollup.chain.state.tasks[1].finished
    return rollup, recorder, said


def round_of(rollup, kind, round_):
    return [n for n in rollup.all(kind) if n.round == round_]


def test_honest_validators_face_no_dispute(monkeypatch, tmp_path):
    rollup, _, said = run(monkeypatch, tmp_path, None)
    assert not rollup.all(Contested) and not rollup.all(ValidatorPenalized)
    assert not any(" contests" in s or " challenges" in s for s in said), said


@pytest.mark.parametrize("kind, dispute", [("drop", DISPUTE_DROPPED), ("misjudge", DISPUTE_MISJUDGED)])
def test_a_dropped_or_misjudged_trainer_contests_is_paid_first_and_the_validator_is_penalised(monkeypatch, tmp_path,
                                                                                              kind, dispute):
    rollup, recorder, said = run(monkeypatch, tmp_path, kind)
    victim = L1.address(recorder.trainer_keys[1]).lower()  # group 0's best-scored honest Positive (9001 bps)
    v0 = recorder.validator_addresses[0]
    assert not round_of(rollup, Contested, 1)  # validator 0 lies from round 2 on
    (contested,) = round_of(rollup, Contested, 2)
    assert (contested.trainer.lower(), contested.kind, contested.group) == (victim, dispute, 0)
    (verdict,) = round_of(rollup, ContestResolved, 2)
    assert verdict.upheld and verdict.posted and verdict.update_bps > 5000 and verdict.validator_bps > 5000
    group0 = [p.trainer.lower() for p in round_of(rollup, RewardPaid, 2)
              if p.trainer.lower() in {L1.address(recorder.trainer_keys[t]).lower() for t in (0, 1)}]
    assert group0[0] == victim  # paid first
    (penalty,) = round_of(rollup, ValidatorPenalized, 2)
    assert (penalty.validator.lower(), penalty.reason) == (v0, PENALTY_CONTEST)
    assert all(r.validator.lower() != v0 for r in round_of(rollup, ValidatorRewarded, 2))
    assert any(f"trainer 1's contest: its update scores {verdict.update_bps / 100:.2f}%" in s for s in said), said
    assert any("trainer 1 is paid first, validator 0's stake is cut by" in s for s in said), said


def test_a_friend_reported_at_100_percent_is_challenged_and_the_validator_cannot_defend_it(monkeypatch, tmp_path):
    rollup, recorder, said = run(monkeypatch, tmp_path, "friend")
    friend = L1.address(recorder.trainer_keys[0]).lower()  # group 0's lowest-scored trainer (no malicious one)
    classified = [c for c in round_of(rollup, ContributionClassified, 2) if c.trainer.lower() == friend]
    assert classified[0].accuracy_bps == 10_000 and classified[0].positive
    assert any("the publisher challenges trainer 0's score of 100.00% in validator 0's report of round 2" in s
               for s in said), said
    (contested,) = round_of(rollup, Contested, 2)
    assert (contested.trainer.lower(), contested.kind) == (friend, DISPUTE_CHALLENGED)
    (verdict,) = round_of(rollup, ContestResolved, 2)
    assert verdict.upheld and not verdict.posted  # the validator posted nothing in its defence
    assert friend not in {p.trainer.lower() for p in round_of(rollup, RewardPaid, 2)}
    (penalty,) = round_of(rollup, ValidatorPenalized, 2)
    assert (penalty.validator.lower(), penalty.reason) == (recorder.validator_addresses[0], PENALTY_CHALLENGE)
    close = rollup.chain.state.tasks[1].history[1]
    assert close.block > contested.response_deadline  # the close waited for the missing update
    assert any("validator 0 cannot defend trainer 0's Positive" in s for s in said), said


# ------------------------------------------------------------------------------------------- pure parts
def test_the_publisher_challenges_implausible_positives_highest_first_within_its_limit():
    def c(group, bps, positive=True):
        return ContributionClassified(1, 2, group, "0x" + f"{bps:040x}", bps, 3000, 10, positive)
    assert implausible(9_950, 9_500) and implausible(8_001, 6_000) and not implausible(8_000, 6_000)
    # Round 1's scores sit far above the validator's own reference (3000 here) and spread: nobody is challenged.
    assert challenges([c(0, 5200), c(0, 4300), c(0, 6100), c(1, 5000), c(1, 5400)], 2) == []
    group0 = [c(0, 9000), c(0, 9100), c(0, 9200), c(0, 9950), c(0, 10_000), c(0, 10_000, positive=False)]
    picked = challenges(group0 + [c(1, 9000), c(1, 9100)], 1)
    assert [(p.group, p.accuracy_bps) for p in picked] == [(0, 10_000)]
    assert [p.accuracy_bps for p in challenges(group0, 2)] == [10_000, 9950]


@pytest.mark.parametrize("text, message", [
    ("0", "must be G:drop|misjudge|friend"), ("0:lie", "must be G:drop"), ("x:drop", "must be G:drop"),
])
def test_a_cheat_that_does_not_parse_is_a_one_line_error(text, message):
    with pytest.raises(ConfigError, match=message):
        CheatingValidator.parse(text)


@pytest.mark.parametrize("cheat, message", [
    (CheatingValidator(2, "drop"), "validators 0..1"), (CheatingValidator(0, "drop", 4), "round in 1..3"),
    (CheatingValidator(1, "friend"), "at least 2 trainers in group 1"),
])
def test_a_cheat_the_run_cannot_stage_is_a_one_line_error(cheat, message):
    with pytest.raises(ConfigError, match=message):
        cheat.validate(2, 3, {0: 2, 1: 1})


def contribution(t, bps, accepted=True, malicious=False):
    return Contribution(t, 0, bps / 10_000, bps, 10, accepted, malicious, False)


def report(*contributions, round_=2):
    return ValidatorReport(round_, 0, "mad", 0.9, 9000, contributions, "m.frq", b"", 0.0, 0.0, 0.0)


def test_the_cheater_lies_about_its_best_honest_positive_or_its_malicious_friend_from_its_round_on():
    drop = CheatingValidator(0, "drop", from_round=2)
    r = report(contribution(3, 9000), contribution(4, 9500), contribution(5, 9900, malicious=True),
               contribution(6, 9600, accepted=False))
    assert drop.target(r) == 4
    sent, lie = drop.lie(r, None, 2, 7)
    assert lie == Lie(2, 0, "drop", 4) and [c.trainer_id for c in sent.contributions] == [3, 5, 6]
    sent, lie = CheatingValidator(0, "misjudge").lie(r, None, 2, 7)
    misjudged = [(c.trainer_id, c.accuracy_bps, c.accepted) for c in sent.contributions if c.trainer_id == 4]
    assert misjudged == [(4, 0, False)]
    assert CheatingValidator(0, "friend").target(r) == 5  # a malicious trainer of the group
    assert CheatingValidator(0, "friend").target(report(contribution(3, 9000), contribution(4, 8000))) == 4
    assert drop.lie(report(contribution(3, 9000), round_=1), None, 2, 7) == (report(contribution(3, 9000), round_=1),
                                                                              None)  # before its round: the truth
    assert str(Lie(2, 0, "drop", 4)) == ("validator 0 cheats in round 2: it leaves trainer 4 out of its report, "
                                         "although it handed trainer 4 a signed receipt")


def test_the_console_disputes_table_shows_who_what_the_public_accuracies_the_verdict_the_cut_and_the_pay(monkeypatch,
                                                                                                        tmp_path):
    rollup, recorder, _ = run(monkeypatch, tmp_path, "drop")
    notices = [o for o in rollup.decoded() if o.message is not None]
    (verdict,), (penalty,) = rollup.all(ContestResolved), rollup.all(ValidatorPenalized)
    paid = next(p for p in rollup.all(RewardPaid) if p.round == 2 and p.trainer == verdict.trainer)
    rows = [line for line in text(disputes_table(notices, 1)).splitlines() if line.startswith("│")]
    assert len(rows) == 1  # the one dispute
    cells = [c.strip() for c in rows[0].strip("│").split("│")]
    assert cells == ["1", "2", "0", to_checksum_address(verdict.trainer), "dropped trainer", f"{verdict.update_bps / 100:.2f}%",
                     f"{verdict.validator_bps / 100:.2f}%", "yes: against the validator",
                     format_wei(penalty.stake_cut), format_wei(paid.amount)]
    assert len([line for line in text(disputes_table(notices, 2)).splitlines() if line.startswith("│")]) == 0


def test_a_dispute_of_a_round_not_closed_yet_shows_as_pending():
    filed = Contested(1, 2, 0, "0x" + "ab" * 20, DISPUTE_DROPPED, bytes(32), 77)
    shown = text(disputes_table([SimpleNamespace(message=filed, name="Contested", index=0)], None))
    assert "due by block 77" in shown and "pending" in shown


def test_the_close_waits_for_the_response_deadline_only_while_a_disputed_update_is_missing():
    a = "0x" + "aa" * 20
    producer = {"round": 2, "report_deadline": 40, "contest_deadline": 44, "response_deadline": 48,
                "turns": [{"producer": a, "until_block": 52}]}
    task = {"groups": 2, "reports_in": [0, 1], "disputes": [{"posted": True}, {"posted": False}]}
    waiting = Schedule.from_inspect(producer, task)
    assert waiting.disputes_pending == 1
    assert plan_close(waiting, now=30, silent=frozenset(), held=frozenset({a})).first_block == 49
    posted = Schedule.from_inspect(producer, {**task, "disputes": [{"posted": True}]})
    assert plan_close(posted, now=30, silent=frozenset(), held=frozenset({a})).first_block == 45


def test_a_validators_penalties_for_one_reason_are_said_in_one_line(monkeypatch):
    """100 upheld contests in a round are one fact to a researcher (a 1,000-trainer run printed 100 lines)."""
    recorder, said = recorder_on(FakeRollup(), monkeypatch, None)
    v0, v1 = recorder.validator_addresses
    cuts = [ValidatorPenalized(1, 2, v0, 0, PENALTY_CONTEST, 10**15, 10**16 - i * 10**15) for i in range(1, 4)]
    recorder._tell_late([*cuts, ValidatorPenalized(1, 2, v1, 1, PENALTY_CHALLENGE, 0, 0)])
    assert said == [f"the rollup penalised validator 0 in round 2 (contest upheld, 3 times): stake cut by "
                    f"{format_wei(3 * 10**15)} to {format_wei(7 * 10**15)}",
                    f"the rollup penalised validator 1 in round 2 (challenge upheld): stake cut by {format_wei(0)} to "
                    f"{format_wei(0)}"]


class HoldsRound1Close(FakeRollup):
    """Holds the confirmation of round 1's close until round 2's contest was sent (a deadlock guard aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.contested = threading.Event()

    def _apply(self, sender: str, payload: bytes) -> int:
        index = super()._apply(sender, payload)
        if self.kinds[index] == ("Contest", 2):
            self.contested.set()
        return index

    def confirmed(self, index: int) -> None:
        if self.kinds[index] == ("RoundClose", 1) and not self.contested.wait(60):
            raise AssertionError("round 2's contest waited for round 1's close")
        super().confirmed(index)


def test_with_rounds_open_at_once_a_rounds_contests_go_out_before_the_earlier_round_closed(monkeypatch, tmp_path):
    """A round's contest window runs from its last report: filing its disputes only once the earlier rounds closed
    made most contests of rounds 2 and 3 late in a 1,000-trainer run."""
    rollup = HoldsRound1Close()
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=DISPUTE_TERMS,
                                 cheating=CheatingValidator(0, "drop", from_round=1))
    record_rounds(recorder, tmp_path)
    assert "REJECTED" not in rollup.statuses.values() and rollup.chain.state.tasks[1].finished
    assert rollup.events.index(("sent", "Contest", 2)) < rollup.events.index(("confirmed", "RoundClose", 1))
    assert [r.upheld for r in rollup.all(ContestResolved)] == [True, True]  # both rounds' contests in time


def test_a_hundred_alike_dispute_lines_are_five_and_a_count():
    said: list[str] = []
    chat = Chatter(said.append)
    for t in range(100):
        chat("trainers who contest", f"trainer {t} contests")
    chat("dispute inputs refused", "one refused")
    chat.summary(3)
    assert said == [f"trainer {t} contests" for t in range(5)] + [
        "one refused", "… and 95 more trainers who contest in round 3 (`fedrollup console disputes` lists every "
        "dispute and its verdict)"]
