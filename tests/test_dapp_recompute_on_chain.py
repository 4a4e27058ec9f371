"""Issue 13's "Done when", replayed on the real parts: anvil, the official @cartesi/rollups 2.2.0 contracts, the
host-mode node and `python -m dapp`, every input a web3 transaction from its party's own key, every check on the
notices the node serves (`rollups_client`: the auditors' console's reader), none on the backend's state.

(a) Producer capture (the issue's measurement): validator A wins round 1 honestly and is elected producer. In
    round 2 it claims 100% for itself and reveals a model that scores 50% on the public test set, then closes the
    round it produces. It can no longer write the numbers: a RoundClose carrying them is not an input the rollup
    knows, the recorded global accuracy is the rollup's own (the integer mean of the revealed models, scored on
    the public test set: an auditor recomputes it here from the notices' bytes), A is not rewarded and the next
    round is produced by B.
(b) A validator drops one honest trainer from its report (after giving it a receipt), reports another at 0%
    and a friend at 100%: both contest, post their updates, are upheld and paid first (the friend gets what is
    left: nothing), and the validator is penalised, its stake cut, its reward going to the honest group.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from dapp_fixtures import TEST_SET, band_bps, band_model, update_of, validator_model
from eth_abi import encode as abi_encode
from eth_utils import keccak
from onchain_fixtures import MILLI, Entry, Rollup, of, receipt, rollup, signed_report, task  # noqa: F401 (fixture)

from dapp import qmodel, qnn
from dapp.schema import (BLOB_CONTESTED_UPDATE, DISPUTE_DROPPED, DISPUTE_MISJUDGED, PENALTY_CONTEST, ROLE_TRAINER,
                         ROLE_VALIDATOR, RULE_BEST_CONTRIBUTION, VALIDATION_TRUST, Contest, ContestResolved, Contested,
                         ContributionClassified, GlobalModel, ModelScored, ProducerElected, Register, RewardPaid,
                         RoundClose, RoundRecorded, TaskFinished, TrainerStanding, ValidatorPenalized,
                         ValidatorRewarded)
from flower_sim.rollup_inputs import split_report
from rollups_client.l1 import L1

pytestmark = pytest.mark.slow
LIAR = band_model(dead={1, 2, 3, 4, 5}, salt=13)  # scores 5,000 bps on the public test set
WORSE = band_model(dead={1, 2}, salt=17)  # 8,000 bps


@dataclass
class Cast:
    """A task's parties: the publisher, a validator per group and the trainers of each group (keys)."""

    rollup: Rollup
    task_id: int
    publisher: str
    validators: tuple[str, str]
    trainers: tuple[list[str], list[str]]

    def address(self, key: str) -> str:
        return L1.address(key)

    def report(self, group: int, round_: int, model: bytes, scores: dict[str, int], validator_bps: int = 9000,
               measures: dict[str, tuple[int, int]] | None = None):
        """Validator ``group``'s signed report of ``scores`` (trainer key -> bps; each signs `update_of`), with a
        trust task's ``measures`` (trainer key -> (cosine bps, size hundredths))."""
        entries = [Entry(k, bps, update_of(self.address(k), round_), measures=(measures or {}).get(k, (0, 0)))
                   for k, bps in scores.items()]
        return self.rollup.accepted(self.validators[group], signed_report(
            self.rollup.domain, self.task_id, round_, group, validator_bps, model, entries))

    def reveal(self, group: int, round_: int, model: bytes) -> int:
        """The validator posts the model it committed to; the rollup's score of it."""
        (scored,) = of(self.rollup.post_blob(self.validators[group], self.task_id, round_, model), ModelScored)
        return scored.accuracy_bps

    def close(self, producer: str, round_: int) -> list:
        self.rollup.mine_to(self.rollup.contest_deadline(self.task_id))
        return self.rollup.accepted(producer, RoundClose(self.task_id, round_))


def staffed(rollup: Rollup, rounds: int, trainers: tuple[int, int], **terms) -> Cast:
    """A task with 2 groups, its test set and escrow posted, every trainer and both validators registered."""
    publisher, a, b = rollup.key(), rollup.key(), rollup.key()
    teams = tuple([rollup.key() for _ in range(n)] for n in trainers)
    (created,) = rollup.accepted(publisher, task((L1.address(a), L1.address(b)), rounds=rounds, **terms))
    t = created.task_id
    rollup.post_test_set(publisher, t)
    rollup.deposit(publisher, t, created.required_escrow)
    for g, team in enumerate(teams):
        for key in team:
            rollup.accepted(key, Register(t, ROLE_TRAINER, g))
    for g, key in enumerate((a, b)):
        rollup.accepted(key, Register(t, ROLE_VALIDATOR, g))
    return Cast(rollup, t, publisher, (a, b), teams)  # type: ignore[arg-type]


def recomputed(global_model: GlobalModel, revealed: list[bytes]) -> int:
    """An auditor's check of a GlobalModel notice: its bytes are the integer mean of the revealed models, its
    accuracy that mean's on the public test set, both recomputed here; the accuracy."""
    mean = qmodel.average([qmodel.decode(m) for m in revealed])
    assert global_model.model == qmodel.encode(mean) and global_model.digest == qmodel.digest(global_model.model)
    accuracy = qnn.accuracy(mean, qnn.parse_test_set(TEST_SET, qmodel.ARCHS[1]))
    assert global_model.accuracy_bps == accuracy
    return accuracy


def round_close_with_numbers(task_id: int, round_: int) -> bytes:
    """The RoundClose of before issue 13, in which the producer wrote the global accuracy and each group's."""
    signature = "RoundClose(uint64,uint16,bytes32,uint16,uint16[])"
    return keccak(text=signature)[:4] + abi_encode(["uint64", "uint16", "bytes32", "uint16", "uint16[]"],
                                                    [task_id, round_, bytes(32), 10_000, [10_000, 0]])


def test_an_elected_producer_can_no_longer_write_the_numbers_and_a_model_worse_than_claimed_is_not_rewarded(rollup):
    cast = staffed(rollup, rounds=3, trainers=(1, 1))
    a, b = cast.validators
    scores = [{cast.trainers[g][0]: 8800} for g in range(2)]
    recorded = []

    # Round 1, honest: A's model is the better one, closest to the global: A is rewarded and elected.
    models = [validator_model(0, 1), WORSE]
    for g in range(2):
        cast.report(g, 1, models[g], scores[g])
    assert [cast.reveal(g, 1, models[g]) for g in range(2)] == [10_000, band_bps({1, 2})]
    notices = cast.close(cast.publisher, 1)
    recorded.append(recomputed(of(notices, GlobalModel)[0], models))
    assert [n.validator for n in of(notices, ValidatorRewarded)] == [cast.address(a)]
    assert of(notices, ProducerElected)[0].producer == cast.address(a)

    # Round 2: A claims 100% on its own data and reveals a model that scores 50% on the public set.
    models = [LIAR, validator_model(1, 2)]
    cast.report(0, 2, LIAR, scores[0], validator_bps=10_000)
    cast.report(1, 2, models[1], scores[1])
    assert [cast.reveal(g, 2, models[g]) for g in range(2)] == [5_000, 10_000]
    rollup.mine_to(rollup.contest_deadline(cast.task_id))
    why = rollup.rejected(a, round_close_with_numbers(cast.task_id, 2))
    assert why.startswith("unknown input tag")  # the numbers of the old RoundClose have no input left to ride
    notices = rollup.accepted(a, RoundClose(cast.task_id, 2))  # A produces the round, without a say in it
    (global_model,) = of(notices, GlobalModel)
    recorded.append(recomputed(global_model, models))
    assert global_model.groups == (0, 1)
    assert [(n.validator, n.group) for n in of(notices, ValidatorRewarded)] == [(cast.address(b), 1)]
    (elected,) = of(notices, ProducerElected)
    assert (elected.producer, elected.rule) == (cast.address(b), RULE_BEST_CONTRIBUTION)  # equal stakes: B won r2

    # Round 3, honest again; B produces it.
    models = [validator_model(0, 3), validator_model(1, 3)]
    for g in range(2):
        cast.report(g, 3, models[g], scores[g])
    for g in range(2):
        cast.reveal(g, 3, models[g])
    notices = cast.close(b, 3)
    recorded.append(recomputed(of(notices, GlobalModel)[0], models))
    assert of(notices, TaskFinished)[0].accumulated_accuracy_bps == sum(recorded) // 3

    # The record the console reads: the rollup's numbers in every round; A's stake did not grow in the round it lied.
    records = [o.message for o in rollup.node.notices() if isinstance(o.message, RoundRecorded)
               and o.message.task_id == cast.task_id]
    assert [r.global_accuracy_bps for r in records] == recorded
    stakes = [dict(zip(r.validators, r.validator_stakes)) for r in records]
    assert [(s[cast.address(a)], s[cast.address(b)]) for s in stakes[:2]] == [(MILLI, 0), (MILLI, MILLI)]
    rollup.assert_serving_and_audited()


def test_a_dropped_and_a_misjudged_trainer_contest_are_upheld_paid_first_and_the_validator_penalised(rollup):
    cast = staffed(rollup, rounds=2, trainers=(3, 1))
    v, w = cast.validators
    friend, misjudged, dropped = cast.trainers[0]
    honest = {cast.trainers[1][0]: 8800}

    # Round 1, honest: v's model is the better one, so v is rewarded (a stake of 1 mETH) and produces round 2.
    models = [validator_model(0, 1), WORSE]
    cast.report(0, 1, models[0], {k: 8800 for k in cast.trainers[0]})
    cast.report(1, 1, models[1], honest)
    for g in range(2):
        cast.reveal(g, 1, models[g])
    notices = cast.close(cast.publisher, 1)
    assert of(notices, ProducerElected)[0].producer == cast.address(v)

    # Round 2: v had receipted the dropped trainer's update, leaves it out, puts the other honest one at 0%.
    models = [validator_model(0, 2), validator_model(1, 2)]
    cast.report(0, 2, models[0], {friend: 10_000, misjudged: 0})
    cast.report(1, 2, models[1], honest)
    for g in range(2):
        cast.reveal(g, 2, models[g])
    updates = {k: update_of(cast.address(k), 2) for k in (misjudged, dropped)}
    evidence = receipt(rollup.domain, v, cast.task_id, 2, dropped, updates[dropped])
    filed = [rollup.accepted(dropped, Contest(cast.task_id, 2, qmodel.digest(updates[dropped]), 600, evidence[:32],
                                              evidence[32:])),
             rollup.accepted(misjudged, Contest(cast.task_id, 2, qmodel.digest(updates[misjudged]), 600, bytes(32),
                                                bytes(32)))]
    assert [(n.trainer, n.kind) for n in of(filed[0] + filed[1], Contested)] == [
        (cast.address(dropped), DISPUTE_DROPPED), (cast.address(misjudged), DISPUTE_MISJUDGED)]
    for key in (dropped, misjudged):  # each posts its update: the rollup scores it on the public test set
        (scored,) = of(rollup.post_blob(key, cast.task_id, 2, updates[key]), ModelScored)
        assert (scored.kind, scored.accuracy_bps) == (BLOB_CONTESTED_UPDATE, 10_000)

    notices = cast.close(v, 2)
    resolved = of(notices, ContestResolved)
    assert [(n.trainer, n.upheld, n.update_bps, n.validator_bps) for n in resolved] == [
        (cast.address(dropped), True, 10_000, 10_000), (cast.address(misjudged), True, 10_000, 10_000)]
    penalties = of(notices, ValidatorPenalized)
    assert [(n.validator, n.reason) for n in penalties] == [(cast.address(v), PENALTY_CONTEST)] * 2
    assert [n.stake_cut for n in penalties] == [MILLI, 0] and penalties[-1].stake == 0  # its whole stake
    paid = [(n.trainer, n.amount) for n in of(notices, RewardPaid)]
    # Group 0's budget (2 mETH) goes to the upheld contesters first; the friend's "100%" is left nothing.
    assert paid[:2] == [(cast.address(dropped), MILLI), (cast.address(misjudged), MILLI)]
    assert cast.address(friend) not in dict(paid)
    assert [n.validator for n in of(notices, ValidatorRewarded)] == [cast.address(w)]
    (record,) = of(notices, RoundRecorded)
    assert dict(zip(record.validators, record.validator_stakes))[cast.address(v)] == 0
    rollup.assert_serving_and_audited()


def test_a_trust_task_bans_a_reversing_trainer_on_chain_and_pays_the_others_by_standing(rollup):
    """Issue 14 on the real parts: in a trust task, trainer X of group 0 sends a reversed update three rounds in a
    row; the rollup rejects it from the reported measures each time, bans it in round 3 (TrainerStanding, read from
    the node), refuses its contest in round 4 although its update then looks sound, and pays the honest trainers by
    their standing; the audit re-derives every verdict."""
    cast = staffed(rollup, rounds=4, trainers=(2, 1), validation=VALIDATION_TRUST)
    x, honest = cast.trainers[0]
    other = cast.trainers[1][0]
    for round_ in range(1, 5):
        producer = rollup.turns(cast.task_id)[0][0].lower()
        producer_key = next(k for k in (cast.publisher, *cast.validators) if cast.address(k).lower() == producer)
        x_measures = (-6000, 100) if round_ <= 3 else (6000, 100)
        classified = cast.report(0, round_, validator_model(0, round_), {x: 8800, honest: 8800},
                                 measures={x: x_measures, honest: (6000, 100)})
        cast.report(1, round_, validator_model(1, round_), {other: 8800}, measures={other: (5000, 120)})
        assert [n.positive for n in of(classified, ContributionClassified)] == [False, True]
        for g in range(2):
            cast.reveal(g, round_, validator_model(g, round_))
        if round_ == 4:
            # inside the 10-block window with room: the chain also mines on its own (a slow run's contest came late)
            rollup.mine_to(rollup.contest_deadline(cast.task_id) - 3)
            contest = Contest(cast.task_id, 4, qmodel.digest(update_of(cast.address(x), 4)), 600, bytes(32),
                              bytes(32))
            assert "is banned until round 6" in rollup.rejected(x, contest)
        notices = cast.close(producer_key, round_)
        standings = {n.trainer: n for n in of(notices, TrainerStanding)}
        paid = {n.trainer: n.amount for n in of(notices, RewardPaid)}
        assert cast.address(x) not in paid
        assert paid[cast.address(honest)] == MILLI * standings[cast.address(honest)].score // 10_000
    assert (standings[cast.address(x)].bans, standings[cast.address(x)].banned_until) == (1, 6)
    assert standings[cast.address(honest)].score == 9000  # 5,000 + 4 x 1,000
    rollup.assert_serving_and_audited()


def test_a_report_sent_in_parts_in_reverse_order_counts_once_its_last_part_is_in(rollup):
    """Issue 16 on the real parts: validator 0's report of its 3 trainers comes as 2 `ReportPart`s, the second
    first; that part emits nothing, a duplicate of it is refused, and the part completing the report classifies all
    three in part order; the close pays every trainer as for a report in one input."""
    cast = staffed(rollup, rounds=1, trainers=(3, 1))
    entries = [Entry(k, 8800, update_of(cast.address(k), 1)) for k in cast.trainers[0]]
    whole = signed_report(rollup.domain, cast.task_id, 1, 0, 9000, validator_model(0, 1), entries)
    first, second = split_report(whole, per_input=2)
    assert rollup.accepted(cast.validators[0], second) == []
    assert rollup.rejected(cast.validators[0], second).endswith("was already received")
    assert rollup.inspect(f"task/{cast.task_id}")["report_parts"] == [{"group": 0, "parts": 2, "received": [1]}]
    classified = of(rollup.accepted(cast.validators[0], first), ContributionClassified)
    assert [(n.trainer, n.positive) for n in classified] == [(cast.address(k), True) for k in cast.trainers[0]]
    cast.report(1, 1, validator_model(1, 1), {cast.trainers[1][0]: 8800})
    for g in range(2):
        cast.reveal(g, 1, validator_model(g, 1))
    paid = of(cast.close(cast.publisher, 1), RewardPaid)
    assert sorted(n.trainer for n in paid) == sorted(cast.address(k) for k in cast.trainers[0] + cast.trainers[1])
