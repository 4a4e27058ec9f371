"""Issue 13, attacked: each party (validator, producer, publisher, trainer, stranger) against the rules that move
money or reputation. Each test plays one attack and asserts what stops it; where the review found a hole, the
docstring keeps the attack, who would have gained what, and the fix ("FIX:", now in the rules)."""
from __future__ import annotations

from dataclasses import replace

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, STRANGER, Chain, band_model, close, close_when_due, contest,
                           create_task, played_round_one, post_blob, receipt, report, signed, task_message, trainer,
                           validator, validator_model)

from dapp import qmodel
from dapp.schema import (BLOB_CONTESTED_UPDATE, PENALTY_CONTEST, PENALTY_UNREVEALED, CancelTask, Challenge,
                         ContestResolved, GlobalModel, ModelChunk, ModelScored, RewardPaid, TaskCancelled,
                         TaskFinished, ValidatorPenalized, ValidatorRewarded, Withdraw)

GOOD = band_model(salt=-7)                       # 10,000 bps on the public set
WEAK = band_model(dead=range(1, 10), salt=-9)    # 1,000 bps: a valid model that predicts class 0 only
JUNK = band_model(dead=range(1, 10), salt=-11)   # 1,000 bps, another digest
FRIEND, HONEST, OTHER = trainer(0, 0), trainer(0, 1), trainer(0, 2)


@pytest.fixture
def chain() -> Chain:
    return played_round_one()


def group1_reports_and_reveals(chain: Chain, round_: int = 2) -> None:
    chain.send(validator(1), report(1, round_, 9000, {trainer(1, 0): 8800}, model=validator_model(1, round_)))


def paid(chain: Chain, round_: int) -> dict[str, int]:
    return {n.trainer: n.amount for n in chain.of_type(RewardPaid) if n.round == round_}


# ================================================================== holes (failing until fixed)


def test_a_validator_cannot_copy_another_groups_commitment():
    """ATTACK (validator of group 0): wait for group 1's report on L1 and commit to the SAME model digest, with no
    model of its own; group 1's honest reveal would then have counted as group 0's too (no unrevealed penalty, a
    tie at distance 0 from the global, the reward on the lower-group tie-break, the producer seat).
    STOPPED: a digest another group committed this round is refused (`_validator_report`). Residual: a copier that
    front-runs the honest report gets the honest one refused; the honest validator re-commits a re-encoded model
    (another digest) before the report deadline, and the copier, holding no bytes, is penalised as unrevealed."""
    c = Chain()
    create_task(c, rounds=3, contest_blocks=20)
    honest = validator_model(1, 1)
    c.send(validator(1), report(1, 1, 9000, {trainer(1, 0): 8800}, model=honest))
    why = c.reject(validator(0), report(1, 1, 9000, {trainer(0, 0): 8800}, model=honest))
    assert "is already committed by group 1 in round 1: each validator commits its own model" in why


def test_every_validator_may_keep_the_rounds_starting_model():
    """LIVENESS (found with MAD under strong DP noise): when both groups reject every update, both validators keep the
    model the round started from and commit the same digest; refusing the second stalled the task. The starting model
    is exempt from the copy rule (round 1: `initialModelDigest` of CreateTask; later: the last GlobalModel); anyone
    holds its bytes, so a copier gains nothing by it. One reveal serves both groups; the global stays that model."""
    start = validator_model(0, 0)
    c = Chain()
    create_task(c, rounds=3, contest_blocks=20, initial_model_digest=qmodel.digest(start))
    for g in (0, 1):
        c.send(validator(g), report(1, 1, 9000, {trainer(g, 0): 8800}, model=start))
    post_blob(c, STRANGER, 1, 1, start)
    assert [(n.group, n.digest) for n in c.of_type(ModelScored)] == [(0, qmodel.digest(start)),
                                                                      (1, qmodel.digest(start))]
    close_when_due(c, 1, 1, PUBLISHER)
    (glob,) = c.of_type(GlobalModel)
    assert glob.groups == (0, 1) and not c.of_type(ValidatorPenalized)
    for g in (0, 1):  # round 2 starts from that global model: both may keep it again
        c.send(validator(g), report(1, 2, 9000, {trainer(g, 0): 8800}, model=glob.model))
    assert [r.model_digest for r in c.task().reports] == [glob.digest, glob.digest]


def test_without_a_committed_initial_model_round_one_copies_stay_refused():
    c = Chain()
    create_task(c, rounds=3, contest_blocks=20)
    start = validator_model(0, 0)
    c.send(validator(1), report(1, 1, 9000, {trainer(1, 0): 8800}, model=start))
    assert "each validator commits its own model" in c.reject(validator(0), report(1, 1, 9000, {trainer(0, 0): 8800},
                                                                                  model=start))


def test_a_weak_model_does_not_lower_the_bar_of_a_challenge(chain):
    """STOPPED by judging disputes against max(v, this round's global, the previous global). ATTACK (validator + sybil
    friend): report the friend Positive at 99% with a junk update (1,000 bps), and
    commit/reveal a deliberately weak model (1,000 bps). The publisher challenges the friend; the friend posts its
    junk; the rollup judges it with `is_positive(u, v)` where `v` is the ACCUSED validator's own model, so
    1,000 >= 0.75 x 1,000 and the challenge fails. GAIN: the friend is paid first (2 mETH of the group's 5), the
    honest Positives share what is left; the validator gives up only the validator reward (no penalty at all).
    The README's "validator + sybil trainers | the publisher challenges" is thereby void.
    FIX (applied): `_verdict` (dapp/state.py) should judge disputes against a reference the accused validator does not
    pick
    alone, e.g. max(v, the round's global accuracy `glob.accuracy_bps`, the previous global's), and penalise a
    revealed model far below the global (pass `glob` into `_verdict`)."""
    chain.send(validator(0), report(1, 2, 9000, {FRIEND: 9900, HONEST: 8800, OTHER: 8800},
                                    model=WEAK, updates={FRIEND: JUNK, HONEST: GOOD}))
    group1_reports_and_reveals(chain)
    post_blob(chain, validator(0), 1, 2, WEAK)
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))
    chain.send(PUBLISHER, Challenge(1, 2, FRIEND))
    post_blob(chain, FRIEND, 1, 2, JUNK)
    close_when_due(chain, 1, 2, validator(0))
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.update_bps, verdict.validator_bps) == (1000, 1000)
    assert verdict.upheld, "a 1,000-bps update of a 99% 'Positive' survived the challenge"
    assert FRIEND not in paid(chain, 2)


def test_an_honest_challenged_positive_keeps_its_pay_when_its_validator_does_not_reveal(chain):
    """STOPPED (the reference is then the global model). ATTACK (publisher, alone or with a validator that goes silent
    after its report): challenge the group's
    Positives when its validator has not revealed (or agree with it not to). `_verdict` upholds a challenge
    whenever `v` is missing, even though the challenged update WAS posted and scores 10,000 bps. GAIN: the
    publisher recovers the honest trainers' pay (it stays in escrow and returns at TaskFinished); the honest
    trainer loses it although PROTOCOL.md, RoundClose step 3, promises "a validator's fault does not cost its
    trainers their pay".
    FIX (applied): dapp/state.py `_verdict`, challenged branch: when `model is None`, judge `update` against the round's
    global accuracy (or the previous global's); void only an update not posted or failing that reference."""
    chain.send(validator(0), report(1, 2, 9000, {HONEST: 8800}, updates={HONEST: GOOD}))  # never revealed
    group1_reports_and_reveals(chain)
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))
    chain.send(PUBLISHER, Challenge(1, 2, HONEST))
    post_blob(chain, HONEST, 1, 2, GOOD)
    assert chain.of_type(ModelScored)[-1].accuracy_bps == 10_000
    close_when_due(chain, 1, 2, validator(0))
    assert paid(chain, 2).get(HONEST) == 2 * MILLI


def test_a_junk_update_contested_against_an_unrevealed_validator_is_dismissed(chain):
    """STOPPED (the reference is then the global model). ATTACK (trainer with a junk update, or a validator paying a
    friend): the validator reports the trainer
    Negative (rightly: its update scores 1,000 bps) and does not reveal its model; the trainer contests as
    misjudged and posts the junk. `_verdict` upholds any posted, decodable update when `v` is missing, and upheld
    contesters are paid FIRST. GAIN: 2 mETH to a junk update ahead of every honest Positive of the group (with a
    tight budget, an honest Positive is crowded out); a colluding validator with no stake loses nothing (its
    penalties cut min(validatorReward, 0) = 0).
    FIX (applied): dapp/state.py `_verdict`, contest branch: when `model is None`, require `is_positive(update,
    reference,
    madBps)` with the reference the round's global accuracy (else the previous global's), not `True`."""
    chain.send(validator(0), report(1, 2, 9000, {FRIEND: 500, HONEST: 8800}, updates={FRIEND: JUNK, HONEST: GOOD}))
    group1_reports_and_reveals(chain)
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))
    chain.send(FRIEND, contest(1, 2, FRIEND, JUNK))
    post_blob(chain, FRIEND, 1, 2, JUNK)
    close_when_due(chain, 1, 2, validator(0))
    verdict = chain.of_type(ContestResolved)[-1]
    assert (verdict.update_bps, verdict.posted) == (1000, True)
    assert not verdict.upheld, "a 1,000-bps update was upheld against a 10,000-bps global model"
    assert FRIEND not in paid(chain, 2)


def test_in_a_one_group_task_a_junk_model_neither_wins_the_reward_nor_shields_its_friends():
    """STOPPED: a model below the task's rule against the previous global earns no validator reward, and disputes
    are judged against the previous global too. ATTACK (the one validator of a groups=1 task): reveal any valid model,
    however bad. The global model is the
    mean of one model, i.e. that model, so its distance to the global is always 0 and the validator is always
    rewarded; combined with the challenge rule judging updates against that same model, a junk model also makes
    every challenge of its friends fail, at no cost at all. GAIN: the validator reward every round for no work
    (here a 1,000-bps model after a 10,000-bps global), plus unchallengeable friends.
    FIX (applied): dapp/state.py `_round_close`, `eligible`: also require the model to pass the task's rule against a
    reference it does not set, e.g. `is_positive(model_bps[g], previous global accuracy, madBps)` (from round 2),
    or reward accuracy rather than only the distance to the global when one group is revealed."""
    c = Chain()
    create_task(c, groups=1, rounds=2, contest_blocks=20)
    c.send(validator(0), report(1, 1, 9000, {FRIEND: 8800}, model=validator_model(0, 1)))
    post_blob(c, validator(0), 1, 1, validator_model(0, 1))
    close_when_due(c, 1, 1, PUBLISHER)
    assert c.of_type(GlobalModel)[-1].accuracy_bps == 10_000
    c.send(validator(0), report(1, 2, 9000, {FRIEND: 9900, HONEST: 8800}, model=WEAK,
                                updates={FRIEND: JUNK, HONEST: GOOD}))
    post_blob(c, validator(0), 1, 2, WEAK)
    c.send(PUBLISHER, Challenge(1, 2, FRIEND))
    post_blob(c, FRIEND, 1, 2, JUNK)
    close_when_due(c, 1, 2, c.task().producer)
    assert c.of_type(GlobalModel)[-1].accuracy_bps == 1_000
    assert c.of_type(ContestResolved)[-1].upheld, "the junk friend must not survive the challenge"
    assert [r.round for r in c.of_type(ValidatorRewarded)] == [1], "a 1,000-bps model won the round-2 reward"


# ================================================================== attacks the rules stop (passing)


def test_a_trainer_signature_from_another_round_or_group_does_not_verify(chain):
    """A validator replays a trainer's round-1 Update signature in round 2, or uses one the trainer made for
    another group or task: the signed struct names task, round and group, so none recovers to the trainer."""
    old = report(1, 1, 9000, {HONEST: 8800}, updates={HONEST: GOOD})
    why = chain.reject(validator(0), replace(old, round=2))
    assert f"trainer {HONEST}'s Update signature was made by" in why
    fresh = report(1, 2, 9000, {HONEST: 8800}, updates={HONEST: GOOD})
    for task_id, group in ((1, 1), (2, 0)):  # signed for group 1, or for task 2
        sig = signed(HONEST, task_id, 2, qmodel.digest(GOOD), 600, group=group)
        forged = replace(fresh, sig_r=(sig[:32],), sig_vs=(sig[32:],))
        assert "Update signature was made by" in chain.reject(validator(0), forged)
    chain.send(validator(0), fresh)


def test_an_empty_report_is_accepted_and_its_dropped_trainers_still_contest(chain):
    """A validator reports 0 entries (drops everybody): accepted, but each trainer holding a receipt contests and is
    paid first; the validator's stake is cut once per upheld contest, never below 0."""
    chain.send(validator(0), report(1, 2, 9000, {}, group=0))
    group1_reports_and_reveals(chain)
    post_blob(chain, validator(0), 1, 2, validator_model(0, 2))
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))
    for t in (HONEST, OTHER):
        chain.send(t, contest(1, 2, t, GOOD, 600, receipt(0, t, 1, 2, qmodel.digest(GOOD), 600)))
    post_blob(chain, STRANGER, 1, 2, GOOD)  # one post answers both disputes (same digest)
    close_when_due(chain, 1, 2, validator(0))
    assert paid(chain, 2) == {HONEST: 2 * MILLI, OTHER: 2 * MILLI, trainer(1, 0): 2 * MILLI}
    cuts = [(p.reason, p.stake_cut, p.stake) for p in chain.of_type(ValidatorPenalized)]
    assert cuts == [(PENALTY_CONTEST, 1 * MILLI, 0), (PENALTY_CONTEST, 0, 0)]


def test_each_deadline_is_inclusive_and_the_next_block_is_refused(chain):
    """Off-by-one against the Deadlines table: Challenge and Contest at exactly the contest deadline are
    accepted and one block later refused; a disputed update at exactly the response deadline is accepted and one
    block later refused; a close with a dispute pending is refused until the response deadline has passed."""
    chain.send(validator(0), report(1, 2, 9000, {FRIEND: 9900, HONEST: 1000}, updates={HONEST: GOOD}))
    group1_reports_and_reveals(chain)
    task = chain.task()
    contest_dl, response_dl = task.contest_deadline(), task.response_deadline()
    chain.mine_to(contest_dl - 1)
    chain.send(PUBLISHER, Challenge(1, 2, FRIEND))                     # contest deadline - 1
    chain.send(HONEST, contest(1, 2, HONEST, GOOD))                    # exactly the contest deadline
    proof = receipt(0, OTHER, 1, 2, qmodel.digest(GOOD), 600)
    assert "closed at block" in chain.reject(OTHER, contest(1, 2, OTHER, GOOD, 600, proof))  # + 1
    assert "waits until block" in chain.reject(validator(0), close(1, 2))
    chain.mine_to(response_dl)
    post_blob(chain, HONEST, 1, 2, GOOD)                               # exactly the response deadline
    friend_update = report(1, 2, 0, {FRIEND: 0}).update_digests[0]
    assert "had to be posted by block" in chain.reject(FRIEND, ModelChunk(1, 2, friend_update, 0, 1, b"x"))
    chain.send(validator(0), close(1, 2))                              # response deadline + 2: turn 0
    assert [v.upheld for v in chain.of_type(ContestResolved)] == [True, True]


def test_wei_is_conserved_across_penalties_contests_challenges_and_the_refund():
    """Every wei deposited is in an escrow, a balance or a voucher after every input, through upheld and dismissed
    contests, a voided challenge, stake cuts, the publisher's final refund and withdrawals."""
    c = played_round_one(audit=True)
    c.send(validator(0), report(1, 2, 9000, {FRIEND: 9900, HONEST: 1000}, updates={HONEST: GOOD, FRIEND: JUNK}))
    group1_reports_and_reveals(c)
    for g in (0, 1):
        post_blob(c, validator(g), 1, 2, validator_model(g, 2))
    c.send(PUBLISHER, Challenge(1, 2, FRIEND))
    c.send(HONEST, contest(1, 2, HONEST, GOOD))
    c.send(OTHER, contest(1, 2, OTHER, GOOD, 600, receipt(0, OTHER, 1, 2, qmodel.digest(GOOD), 600)))
    post_blob(c, HONEST, 1, 2, GOOD)
    post_blob(c, FRIEND, 1, 2, JUNK)
    close_when_due(c, 1, 2, validator(0))
    elected = c.task().producer
    for g in (0, 1):
        c.send(validator(g), report(1, 3, 9000, {trainer(g, 0): 8800}, model=validator_model(g, 3)))
    post_blob(c, validator(1), 1, 3, validator_model(1, 3))  # validator 0 does not reveal: penalised
    close_when_due(c, 1, 3, elected)
    assert c.of_type(TaskFinished)
    for who in (HONEST, PUBLISHER, validator(1)):
        c.send(who, Withdraw())
    assert c.wei_held() == c.deposited and c.vouchered > 0


def one_group_task_with_an_unanswered_dispute() -> Chain:
    """groups=1, every report in early: a trainer contests and never posts its update, and every producer (the
    publisher, then the validator) lets its turn pass."""
    c = Chain(audit=True)
    create_task(c, groups=1, rounds=2, contest_blocks=7, close_blocks=3)
    c.send(validator(0), report(1, 1, 9000, {FRIEND: 1000}, updates={FRIEND: GOOD}))
    c.send(FRIEND, contest(1, 1, FRIEND, GOOD))
    assert "can still go on" in c.reject(PUBLISHER, CancelTask(1))
    return c


def test_a_one_group_task_with_a_dispute_never_answered_ends_within_latest_end_block():
    """groups=1, an update never posted and no producer closing: the task is still cancellable by
    `latest_end_block`, and the whole escrow comes back to the publisher."""
    c = one_group_task_with_an_unanswered_dispute()
    bound = c.task().latest_end_block()
    c.mine_to(max(c.task().report_deadline(), c.task().close_deadline(1)) + 1)
    assert c.block <= bound
    c.send(PUBLISHER, CancelTask(1))
    assert c.of_type(TaskCancelled)[-1].refund == 2 * (10 * MILLI + 1 * MILLI)


def test_when_every_producer_missed_before_the_report_deadline_the_publisher_can_cancel_at_once():
    """STOPPED: `Task.stalled` sees the missed turns as soon as every group reported. ATTACK (producers, by silence):
    when every group reports early, the contest, response and close deadlines
    all fall before the round's report deadline. Once every producer's turn has passed, RoundClose answers
    "every producer ... missed its close deadline ...; its publisher may cancel the task", but CancelTask is
    refused ("can still go on"), because `Task.stalled` returns None while `block <= report_deadline`. Nobody can
    move the task until the report deadline: a dead window of up to `reportBlocks` blocks per round. IMPACT: a
    delay only (still inside `latest_end_block`), and a RoundClose error message that is false.
    FIX (applied): dapp/task.py `stalled`: test CANCEL_NO_PRODUCER before the `block <= deadline` return when every
    group
    has reported (or when `block > response_deadline()`), i.e. whenever `_close_turn` would say every turn passed."""
    c = one_group_task_with_an_unanswered_dispute()
    task = c.task()
    c.mine_to(task.close_deadline(len(task.producer_order()) - 1) + 1)
    assert c.block <= task.report_deadline()
    assert "its publisher may cancel the task" in c.reject(validator(0), close(1, 1))
    c.send(PUBLISHER, CancelTask(1))


def test_the_publisher_cannot_challenge_every_positive():
    """STOPPED: `challengesPerRound` is at most one in ten of a group's trainers (at least 2). ATTACK (publisher):
    `challengesPerRound`, the cap that PROTOCOL.md and the README present as what limits
    the publisher's challenges ("a few per group and round"), is chosen by the publisher itself in CreateTask, up
    to 255. With it the publisher challenges EVERY Positive, for the price of one tiny input each; each honest
    trainer (or its validator) must then post its update (~2.4 M gas for the demo CNN, 10 inputs for cnn10) by the
    response deadline, or its pay is voided and returns to the publisher at TaskFinished and its validator is
    penalised (stake cut, no reward, put last in the election). A lost challenge costs the publisher nothing.
    FIX (applied): dapp/state.py `_create_task`: cap `challengesPerRound` (e.g. <= max(1, trainersPerGroup // 10)), and
    make a challenge cost a bond forfeited to the trainer when not upheld (or keep voided pay out of the
    publisher's refund)."""
    c = Chain()
    assert "challenges" in c.reject(PUBLISHER, task_message(trainers_per_group=3, challenges_per_round=255))


def test_a_reveal_after_the_contest_deadline_of_bytes_that_are_also_a_disputed_update_counts_only_as_the_update(
        chain):
    """A validator's committed model is also a trainer's disputed update (the trainer signed those bytes). Posted
    after the contest deadline, within the response window, it answers the dispute but is no late reveal: the
    validator is still penalised as unrevealed and its group left out of the global model."""
    mine = validator_model(0, 2)
    chain.send(validator(0), report(1, 2, 9000, {HONEST: 1000}, model=mine, updates={HONEST: mine}))
    group1_reports_and_reveals(chain)
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))
    chain.send(HONEST, contest(1, 2, HONEST, mine))
    chain.mine_to(chain.task().contest_deadline() + 1)
    post_blob(chain, validator(0), 1, 2, mine)
    assert [n.kind for n in chain.of_type(ModelScored) if n.round == 2][-1:] == [BLOB_CONTESTED_UPDATE]
    close_when_due(chain, 1, 2, validator(0))
    assert chain.of_type(GlobalModel)[-1].groups == (1,)
    assert PENALTY_UNREVEALED in [p.reason for p in chain.of_type(ValidatorPenalized) if p.round == 2]


def test_bytes_that_are_both_a_committed_model_and_a_disputed_update_posted_in_the_reveal_window_count_as_both(
        chain):
    """Inside the reveal window one post of such bytes answers the dispute and reveals the model: one ModelScored per
    role, the group is averaged, nobody is penalised for it."""
    mine = validator_model(0, 2)
    chain.send(validator(0), report(1, 2, 9000, {HONEST: 1000}, model=mine, updates={HONEST: mine}))
    group1_reports_and_reveals(chain)
    post_blob(chain, validator(1), 1, 2, validator_model(1, 2))
    chain.send(HONEST, contest(1, 2, HONEST, mine))
    post_blob(chain, HONEST, 1, 2, mine)
    assert [(n.group, n.kind) for n in chain.of_type(ModelScored)][-2:] == [(0, 0), (0, BLOB_CONTESTED_UPDATE)]
    close_when_due(chain, 1, 2, validator(0))
    assert chain.of_type(GlobalModel)[-1].groups == (0, 1)
    assert [p.reason for p in chain.of_type(ValidatorPenalized) if p.round == 2] == [PENALTY_CONTEST]
