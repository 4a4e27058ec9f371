"""Issue 13: a trainer left out or misjudged by its validator contests, and the publisher challenges a Positive;
the rollup settles each by scoring the disputed update on the public test set with the task's MAD rule against
the validator's revealed model, then pays upheld contesters first and penalises the validator."""
from __future__ import annotations

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, STRANGER, Chain, band_model, close, close_when_due, contest,
                           create_task, played_round_one, post_blob, receipt, report, trainer, validator,
                           validator_model)

from dapp import qmodel
from dapp.schema import (DISPUTE_CHALLENGED, DISPUTE_DROPPED, DISPUTE_MISJUDGED, PENALTY_CHALLENGE, PENALTY_CONTEST,
                         Challenge, ContestResolved, Contested, ModelScored, RewardPaid, ValidatorPenalized,
                         ValidatorRewarded)

GOOD, BAD = band_model(salt=-7), band_model(dead=range(1, 8), salt=-8)  # 10,000 and 3,000 bps on the public set
FRIEND, HONEST, OTHER = trainer(0, 0), trainer(0, 1), trainer(0, 2)


@pytest.fixture
def chain() -> Chain:
    return played_round_one()


def round2(chain: Chain, scores: dict[str, int], updates: dict[str, bytes] | None = None) -> None:
    """Both validators report round 2 (group 0 with ``scores``) and reveal perfect models."""
    chain.send(validator(0), report(1, 2, 9000, scores, model=validator_model(0, 2), updates=updates))
    chain.send(validator(1), report(1, 2, 9000, {trainer(1, 0): 8800}, model=validator_model(1, 2)))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, 2, validator_model(g, 2))


def paid(chain: Chain, round_: int) -> list[tuple[str, int]]:
    return [(n.trainer, n.amount) for n in chain.of_type(RewardPaid) if n.round == round_]


def test_a_dropped_trainer_with_a_receipt_is_upheld_paid_first_and_its_validator_penalised(chain):
    # The validator reports its friend and another at 99% and leaves the honest trainer out, although it
    # signed a receipt for the honest trainer's update.
    round2(chain, {FRIEND: 9900, OTHER: 9900})
    proof = receipt(0, HONEST, 1, 2, qmodel.digest(GOOD), 600)
    chain.send(HONEST, contest(1, 2, HONEST, GOOD, 600, proof))
    filed = chain.of_type(Contested)[-1]
    assert (filed.trainer, filed.kind, filed.response_deadline) == (HONEST, DISPUTE_DROPPED,
                                                                    chain.task().response_deadline())
    post_blob(chain, HONEST, 1, 2, GOOD)
    assert chain.of_type(ModelScored)[-1].accuracy_bps == 10_000
    close_when_due(chain, 1, 2, validator(0))  # nothing pending: the close need not wait for the response deadline
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.upheld, verdict.posted, verdict.update_bps, verdict.validator_bps) == (True, True, 10_000, 10_000)
    # 5 mETH: the upheld contester first (2 mETH), then the two Positives share the 3 mETH left
    assert paid(chain, 2)[:3] == [(HONEST, 2 * MILLI), (FRIEND, 3 * MILLI // 2), (OTHER, 3 * MILLI // 2)]
    (penalty,) = chain.of_type(ValidatorPenalized)
    assert (penalty.validator, penalty.reason, penalty.stake_cut, penalty.stake) == (validator(0), PENALTY_CONTEST,
                                                                                    1 * MILLI, 0)
    assert chain.of_type(ValidatorRewarded)[-1].validator == validator(1), "a penalised validator is not rewarded"


def test_a_misjudged_trainer_is_upheld(chain):
    round2(chain, {HONEST: 1000, FRIEND: 8800}, updates={HONEST: GOOD})
    chain.send(HONEST, contest(1, 2, HONEST, GOOD))
    assert chain.of_type(Contested)[-1].kind == DISPUTE_MISJUDGED
    post_blob(chain, STRANGER, 1, 2, GOOD)  # anyone may post the update: it is addressed by its digest
    close_when_due(chain, 1, 2, validator(0))
    assert chain.of_type(ContestResolved)[-1].upheld
    assert paid(chain, 2)[0] == (HONEST, 2 * MILLI)
    assert chain.of_type(ValidatorPenalized)[-1].reason == PENALTY_CONTEST


def test_a_contest_with_a_bad_update_is_dismissed(chain):
    round2(chain, {HONEST: 1000, FRIEND: 8800}, updates={HONEST: BAD})
    chain.send(HONEST, contest(1, 2, HONEST, BAD))
    post_blob(chain, HONEST, 1, 2, BAD)
    close_when_due(chain, 1, 2, validator(0))
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.upheld, verdict.update_bps) == (False, 3000)
    assert HONEST not in dict(paid(chain, 2)) and not chain.of_type(ValidatorPenalized)


def test_an_update_never_posted_holds_the_close_until_the_response_deadline_then_is_dismissed(chain):
    round2(chain, {HONEST: 1000}, updates={HONEST: GOOD})
    chain.send(HONEST, contest(1, 2, HONEST, GOOD))
    response = chain.task().response_deadline()
    chain.mine_to(chain.task().contest_deadline() + 1)
    assert f"waits until block {response} for the disputed update(s) of {HONEST}" in chain.reject(
        validator(0), close(1, 2))
    chain.mine_to(response + 1)
    chain.send(validator(0), close(1, 2))
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.upheld, verdict.posted) == (False, False)


@pytest.mark.parametrize("who_signs, why", [
    (None, "the receipt of group 0's validator is malformed"),
    (1, f"the receipt of group 0's validator was made by {validator(1)}, not by {validator(0)}"),
])
def test_a_dropped_trainer_needs_its_validators_receipt(chain, who_signs, why):
    round2(chain, {FRIEND: 9900})
    proof = bytes(64) if who_signs is None else receipt(who_signs, HONEST, 1, 2, qmodel.digest(GOOD), 600)
    assert why in chain.reject(HONEST, contest(1, 2, HONEST, GOOD, 600, proof))


def test_contest_rules(chain):
    round2(chain, {FRIEND: 9900, HONEST: 1000}, updates={HONEST: GOOD})
    assert "reported Positive in round 2: nothing to contest" in chain.reject(FRIEND, contest(1, 2, FRIEND, GOOD))
    assert "is not the one reported" in chain.reject(HONEST, contest(1, 2, HONEST, BAD))
    assert "is not a trainer of task 1" in chain.reject(validator(1), contest(1, 2, HONEST, GOOD))
    chain.send(HONEST, contest(1, 2, HONEST, GOOD))
    assert "already disputed" in chain.reject(HONEST, contest(1, 2, HONEST, GOOD))
    chain.mine_to(chain.task().contest_deadline() + 1)
    proof = receipt(0, OTHER, 1, 2, qmodel.digest(GOOD), 600)
    assert "closed at block" in chain.reject(OTHER, contest(1, 2, OTHER, GOOD, 600, proof))


def test_no_contest_before_the_groups_report(chain):
    assert "group 0 has not reported round 2" in chain.reject(HONEST, contest(1, 2, HONEST, GOOD))


# ------------------------------------------------------------------ the publisher's challenges


def test_a_challenged_friend_whose_update_fails_is_voided_and_its_validator_penalised(chain):
    # The validator reports a sybil friend Positive at 99%; the friend's real update is poor on the public set.
    round2(chain, {FRIEND: 9900, HONEST: 8800}, updates={FRIEND: BAD})
    chain.send(PUBLISHER, Challenge(1, 2, FRIEND))
    assert chain.of_type(Contested)[-1].kind == DISPUTE_CHALLENGED
    post_blob(chain, validator(0), 1, 2, BAD)
    close_when_due(chain, 1, 2, validator(0))
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.kind, verdict.upheld, verdict.update_bps) == (DISPUTE_CHALLENGED, True, 3000)
    assert FRIEND not in dict(paid(chain, 2)) and dict(paid(chain, 2))[HONEST] == 2 * MILLI
    assert chain.of_type(ValidatorPenalized)[-1].reason == PENALTY_CHALLENGE


def test_an_unanswered_challenge_is_upheld_at_the_response_deadline(chain):
    round2(chain, {FRIEND: 9900})
    chain.send(PUBLISHER, Challenge(1, 2, FRIEND))
    chain.mine_to(chain.task().response_deadline() + 1)
    chain.send(validator(0), close(1, 2))
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.upheld, verdict.posted) == (True, False) and FRIEND not in dict(paid(chain, 2))


def test_an_honest_positive_survives_a_challenge(chain):
    round2(chain, {HONEST: 8800}, updates={HONEST: GOOD})
    chain.send(PUBLISHER, Challenge(1, 2, HONEST))
    post_blob(chain, HONEST, 1, 2, GOOD)
    close_when_due(chain, 1, 2, validator(0))
    assert not chain.of_type(ContestResolved)[-1].upheld
    assert dict(paid(chain, 2))[HONEST] == 2 * MILLI and not chain.of_type(ValidatorPenalized)


def test_challenge_rules(chain):
    round2(chain, {FRIEND: 9900, OTHER: 9900, HONEST: 1000})
    assert "only the publisher" in chain.reject(STRANGER, Challenge(1, 2, FRIEND))
    assert "is not a trainer reported Positive" in chain.reject(PUBLISHER, Challenge(1, 2, HONEST))
    chain.send(PUBLISHER, Challenge(1, 2, FRIEND))
    assert "already disputed" in chain.reject(PUBLISHER, Challenge(1, 2, FRIEND))
    chain.send(PUBLISHER, Challenge(1, 2, OTHER))  # the default allows 2 per group per round
    c2 = Chain()
    create_task(c2, challenges_per_round=1)
    c2.send(validator(0), report(1, 1, 9000, {FRIEND: 9900, OTHER: 9900}))
    assert "open once every group reported" in c2.reject(PUBLISHER, Challenge(1, 1, FRIEND))
    c2.send(validator(1), report(1, 1, 9000, {}, group=1))
    c2.send(PUBLISHER, Challenge(1, 1, FRIEND))
    assert "its limit is 1" in c2.reject(PUBLISHER, Challenge(1, 1, OTHER))


# ------------------------------------------------------------------ a validator that withholds its model


def round2_unrevealed(chain: Chain, scores: dict[str, int], updates: dict[str, bytes]) -> None:
    """Round 2 with validator 0 committing a model it never reveals (group 1 reveals a perfect one)."""
    chain.send(validator(0), report(1, 2, 9000, scores, model=validator_model(0, 2), updates=updates))
    chain.send(validator(1), report(1, 2, 9000, {trainer(1, 0): 8800}, model=validator_model(1, 2)))
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))


@pytest.mark.parametrize("update, upheld", [(GOOD, True), (BAD, False)])
def test_without_the_validators_model_a_contest_is_judged_against_the_global_model(chain, update, upheld):
    """A validator that withholds its model must not make every posted update win (a junk update would be paid
    first) nor every contest lose: the reference is then the round's global model (here group 1's, 10,000 bps)."""
    round2_unrevealed(chain, {HONEST: 1000}, {HONEST: update})
    chain.send(HONEST, contest(1, 2, HONEST, update))
    post_blob(chain, HONEST, 1, 2, update)
    close_when_due(chain, 1, 2, chain.task().producer)
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.upheld, verdict.validator_bps) == (upheld, 0)
    assert (HONEST in dict(paid(chain, 2))) == upheld


@pytest.mark.parametrize("update, upheld", [(GOOD, False), (BAD, True)])
def test_without_the_validators_model_a_challenge_is_judged_against_the_global_model(chain, update, upheld):
    round2_unrevealed(chain, {FRIEND: 9900}, {FRIEND: update})
    chain.send(PUBLISHER, Challenge(1, 2, FRIEND))
    post_blob(chain, FRIEND, 1, 2, update)
    close_when_due(chain, 1, 2, chain.task().producer)
    assert chain.of_type(ContestResolved)[-1].upheld == upheld
    assert (FRIEND in dict(paid(chain, 2))) != upheld
