"""Issue 16 item 3 on the state machine: several rounds open on chain at once (`CreateTask.openRounds` K). Round r
takes reports once round r - K closed, while round r - 1 is still in its contest window; closes stay in order; a trust
task's verdicts read the standings after round r - K; a validator that kept the round's starting model commits
digest 0; a task still ends, and can be cancelled when a later open round is silent. Round r's close elects the
producer of round r + K (rounds 1..K: a fixed order), so the closes of several open rounds may land in one block.
K = 1 keeps the old rules."""
from __future__ import annotations

import pytest

from dapp_fixtures import (PUBLISHER, Chain, close, close_when_due, create_task, post_blob, report, task_message,
                           trainer, validator, validator_model)

from dapp import qmodel
from frontend_console.audit import AuditFailure, AuditReport, check_files
from dapp.inspect_routes import InspectError, answer
from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_NO_PRODUCER, VALIDATION_TRUST, CancelTask, ContributionClassified,
                         GlobalModel, ProducerElected, ProducerMissed, TaskCancelled, TaskCreated, ValidatorPenalized,
                         ValidatorRewarded)
from dapp.task import KEEP_DIGEST
from dapp.trust_rule import Standing, after_round

GOOD = (6000, 100)  # a trust task's honest update: the validator's way, the group's usual size


def scores(group: int, bps: int = 8800) -> dict[str, int]:
    return {trainer(group, i): bps for i in range(3)}


def report_round(chain: Chain, round_: int, groups=(0, 1), **kw) -> None:
    for g in groups:
        chain.send(validator(g), report(1, round_, 9000, scores(g), model=validator_model(g, round_), group=g, **kw))


def reveal(chain: Chain, round_: int, groups=(0, 1)) -> None:
    for g in groups:
        post_blob(chain, validator(g), 1, round_, validator_model(g, round_))


def pipelined(open_rounds: int = 2, rounds: int = 4, **terms) -> Chain:
    chain = Chain()
    create_task(chain, rounds=rounds, contest_blocks=5, open_rounds=open_rounds, **terms)
    return chain


def test_open_rounds_is_a_term_of_the_task_and_out_of_range_is_refused():
    chain = pipelined(open_rounds=3)
    assert chain.of_type(TaskCreated)[0].open_rounds == 3 and chain.task().open_rounds == 3
    assert "open rounds 0 is not in 1..64" in chain.reject(PUBLISHER, task_message(open_rounds=0))


def test_round_two_reports_while_round_one_is_in_its_contest_window():
    chain = pipelined(open_rounds=2)
    report_round(chain, 1)
    reveal(chain, 1)
    assert chain.block <= chain.task().contest_deadline()  # round 1 is still open for reveals and contests
    report_round(chain, 2)  # accepted: round 2 - 2 = 0 "closed"
    assert {n.round for n in chain.of_type(ContributionClassified)} == {1, 2}
    assert "has rounds 1..2 open, not round 3" in chain.reject(
        validator(0), report(1, 3, 9000, scores(0), model=validator_model(0, 3), group=0))
    reveal(chain, 2)  # round 2's reveals are open too: every group of round 2 reported
    close_when_due(chain, 1, 1, PUBLISHER)
    task = chain.task()
    assert task.current_round == 2 and all(r is not None for r in task.reports) and len(task.models) == 2
    producer = task.producer
    close_when_due(chain, 1, 2, producer)  # round 2 closes with what it received while round 1 was open
    assert [g.round for g in chain.of_type(GlobalModel)] == [1, 2]
    report_round(chain, 3)  # round 3 opened when round 1 closed; round 4 once round 2 did
    report_round(chain, 4)


def test_a_round_cannot_close_before_the_one_before_it():
    chain = pipelined(open_rounds=2)
    report_round(chain, 1)
    reveal(chain, 1)
    report_round(chain, 2)
    reveal(chain, 2)
    chain.mine(30)
    assert "round 2 of task 1 closes after round 1, not closed yet" in chain.reject(PUBLISHER, close(1, 2))


def test_one_open_round_keeps_the_old_rule():
    chain = pipelined(open_rounds=1)
    report_round(chain, 1)
    reveal(chain, 1)
    assert "is in round 1, not round 2" in chain.reject(
        validator(0), report(1, 2, 9000, scores(0), model=validator_model(0, 2), group=0))
    close_when_due(chain, 1, 1, PUBLISHER)
    assert chain.task().round_start == chain.task().history[-1].block  # round 2 starts at round 1's close


def test_a_rounds_report_deadline_counts_from_the_end_of_the_previous_rounds_reporting():
    chain = pipelined(open_rounds=3, report_blocks=12)
    chain.send(validator(0), report(1, 1, 9000, scores(0), model=validator_model(0, 1), group=0))
    chain.send(validator(0), report(1, 2, 9000, scores(0), model=validator_model(0, 2), group=0))  # before round 1 ends
    task = chain.task()
    assert task.start_of(2, chain.block) is None  # group 1 has not reported round 1: round 2's window is not fixed
    last = chain.block
    chain.send(validator(1), report(1, 1, 9000, scores(1), model=validator_model(1, 1), group=1))
    view = chain.task().at(2, chain.block)
    assert view.report_deadline() == last + 12  # round 1's reporting ended with group 1's report, in block `last`


def test_the_close_turns_of_a_round_count_from_the_previous_close_when_it_came_later():
    chain = pipelined(open_rounds=2, close_blocks=20)
    report_round(chain, 1)
    reveal(chain, 1)
    report_round(chain, 2)
    reveal(chain, 2)
    chain.mine(15)  # round 2's contest and response windows pass while round 1 waits for its close (turn 0)
    close_when_due(chain, 1, 1, PUBLISHER)
    task = chain.task()
    assert task.response_deadline() < task.history[-1].block
    assert task.close_deadline(0) == task.history[-1].block + 20  # the elected producer still gets its whole turn
    chain.send(task.producer, close(1, 2))


def trust_play(chain: Chain, round_: int, a: tuple[int, int]) -> None:
    """Group 0: trainer (0, 0) with measures ``a``, two honest; group 1 honest; both reveal, the producer closes."""
    measures = {trainer(0, 0): a, trainer(0, 1): GOOD, trainer(0, 2): GOOD}
    chain.send(validator(0), report(1, round_, 9000, scores(0), measures=measures, model=validator_model(0, round_),
                                    group=0))
    chain.send(validator(1), report(1, round_, 9000, scores(1), measures={t: GOOD for t in scores(1)},
                                    model=validator_model(1, round_), group=1))
    reveal(chain, round_)
    producer = PUBLISHER if round_ == 1 else chain.task().producer
    close_when_due(chain, 1, round_, producer)


def doubted_verdict(open_rounds: int) -> bool:
    """Trainer (0, 0): accepted in round 1 (trusted), reversed in round 2 (not trusted any more); in round 3 its update
    is slightly against the validator's (cosine -0.1), which only a trusted trainer's passes."""
    chain = pipelined(open_rounds=open_rounds, rounds=3, validation=VALIDATION_TRUST)
    trust_play(chain, 1, GOOD)
    trust_play(chain, 2, (-6000, 100))
    trust_play(chain, 3, (-1000, 100))
    return next(n.positive for n in chain.of_type(ContributionClassified)
                if n.round == 3 and n.trainer == trainer(0, 0))


def test_a_trust_tasks_verdicts_read_the_standings_after_round_r_minus_k():
    assert doubted_verdict(open_rounds=2)  # round 3 reads the standing after round 1: trusted
    assert not doubted_verdict(open_rounds=1)  # round 3 reads the standing after round 2: a strike, not trusted


def round_two_with_group_one_kept(chain: Chain) -> bytes:
    """Rounds 1 and 2 closed, group 1 having kept round 2's starting model (digest 0); returns that model."""
    report_round(chain, 1)
    reveal(chain, 1)
    close_when_due(chain, 1, 1, PUBLISHER)
    previous = chain.task().global_model
    chain.send(validator(0), report(1, 2, 9000, scores(0), model=validator_model(0, 2), group=0))
    keep = report(1, 2, 9000, scores(1, bps=1000), group=1)  # every update far below the validator: all Negative
    chain.send(validator(1), type(keep)(**{**keep.__dict__, "model_digest": KEEP_DIGEST}))
    reveal(chain, 2, groups=(0,))  # group 1 has nothing to reveal
    close_when_due(chain, 1, 2, chain.task().producer)
    return previous


def test_a_validator_that_kept_the_starting_model_commits_digest_zero_and_is_averaged_as_the_previous_global():
    chain = pipelined(open_rounds=2)
    previous = round_two_with_group_one_kept(chain)
    glob = chain.of_type(GlobalModel)[-1]
    expected = qmodel.encode(qmodel.average([qmodel.decode(validator_model(0, 2)), qmodel.decode(previous)]))
    assert glob.groups == (0, 1) and glob.model == expected
    assert not [p for p in chain.of_type(ValidatorPenalized) if p.round == 2]  # keeping is not failing to reveal
    assert all(r.group != 1 for r in chain.of_type(ValidatorRewarded) if r.round == 2)


def test_the_audit_checks_a_kept_model_file_against_the_rounds_starting_model(tmp_path):
    """A validator that kept the starting model commits digest 0; its run folder still holds that model's file,
    which the audit checks against the previous round's global (a 1,000-trainer demo's audit failed on it)."""
    chain = pipelined(open_rounds=2)
    previous = round_two_with_group_one_kept(chain)
    files = {"round-001.frq": previous, "round-002.frq": chain.of_type(GlobalModel)[-1].model,
             "round-002-validator-0.frq": validator_model(0, 2), "round-002-validator-1.frq": previous}
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    checked = AuditReport()
    check_files(chain.state, tmp_path, checked)
    assert checked.files_checked == 4
    (tmp_path / "round-002-validator-1.frq").write_bytes(validator_model(1, 2))  # not what it kept
    with pytest.raises(AuditFailure, match="validator 1's model"):
        check_files(chain.state, tmp_path, AuditReport())


def test_digest_zero_with_a_positive_update_is_refused_and_two_groups_may_both_keep():
    chain = pipelined(open_rounds=2)
    report_round(chain, 1)
    lie = report(1, 2, 9000, scores(0), group=0)  # Positives, yet "kept the starting model": no reveal to make
    lie = type(lie)(**{**lie.__dict__, "model_digest": KEEP_DIGEST})
    assert "commits digest 0" in chain.reject(validator(0), lie) and "3 of its updates are Positive" in \
        chain.reject(validator(0), lie)
    for g in (0, 1):
        keep = report(1, 2, 9000, scores(g, bps=1000), group=g)
        chain.send(validator(g), type(keep)(**{**keep.__dict__, "model_digest": KEEP_DIGEST}))
    assert all(r is not None for r in chain.task().slot(2).reports)


def test_a_task_with_several_open_rounds_still_ends_and_its_bound_allows_the_extra_block_per_round():
    one, eight = pipelined(open_rounds=1).task(), pipelined(open_rounds=8).task()
    assert eight.latest_end_block() == one.latest_end_block() + one.rounds
    chain = pipelined(open_rounds=4, rounds=3)
    chain.mine_to(chain.task().latest_end_block())
    assert chain.send(PUBLISHER, CancelTask(1)).outputs[-1].message.reason == CANCEL_GROUPS_SILENT


def test_cancel_once_a_later_open_round_is_silent_past_its_own_deadline():
    chain = pipelined(open_rounds=2, report_blocks=12)
    report_round(chain, 1)
    reveal(chain, 1)
    deadline_2 = chain.task().at(2, chain.block).report_deadline()
    chain.mine_to(chain.task().contest_deadline() + 1)
    assert "can still go on" in chain.reject(PUBLISHER, CancelTask(1))  # round 1 may close; round 2 may report
    chain.mine_to(deadline_2 + 1)  # round 1 still closeable (its producer's turn), but round 2 never can
    assert chain.task().stalled(chain.block) == CANCEL_GROUPS_SILENT
    cancelled = chain.send(PUBLISHER, CancelTask(1)).outputs[-1].message
    assert isinstance(cancelled, TaskCancelled) and cancelled.reason == CANCEL_GROUPS_SILENT


def test_a_ban_decided_with_k_rounds_open_lasts_its_rounds_of_verdicts_from_round_c_plus_k():
    third_strike = Standing(score=5000, strikes=2)
    assert after_round(third_strike, 4, False).banned_until == 4 + 3  # one round open: rounds 5..7
    banned = after_round(third_strike, 4, False, lag=8)
    assert banned.banned_until == 4 + 7 + 3  # the verdicts of rounds 12..14 see it
    assert after_round(banned, 5, True, lag=8, judged_banned=False).score == banned.score + 1000  # judged before it
    assert after_round(banned, 12, True, lag=8, judged_banned=True) == banned  # a banned verdict: it waits


# ------------------------------------------------------------------ election lookahead: round r's close elects r + K
def play(chain: Chain, round_: int) -> None:
    """Both groups report and reveal round ``round_``; its producer closes it once due."""
    report_round(chain, round_)
    reveal(chain, round_)
    close_when_due(chain, 1, round_, chain.task().producer)


def in_the_same_block(chain: Chain) -> None:
    """The next input lands in the block of the last one (several inputs mined together)."""
    chain.block -= 1


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_rounds_close_elects_the_producer_of_round_r_plus_k_and_the_first_k_rounds_have_a_fixed_order(k):
    chain = pipelined(open_rounds=k, rounds=5)
    for r in range(1, 6):
        play(chain, r)
    elected = {e.round: e.producer for e in chain.of_type(ProducerElected)}
    assert sorted(elected) == list(range(k + 1, 6))  # round r's close elected round r + K (none past the last)
    history = chain.task().history
    assert [h.producer for h in history[:k]] == [PUBLISHER] * k  # no close elected rounds 1..K: the publisher's
    assert [h.producer for h in history[k:]] == [elected[r] for r in range(k + 1, 6)]
    assert [h.next_producer for h in history] == [elected.get(r + k, "") for r in range(1, 6)]


def test_rounds_two_to_k_follow_the_fixed_order_and_inspect_names_the_producer_of_every_open_round():
    chain = pipelined(open_rounds=3, rounds=5)
    play(chain, 1)
    task = chain.task()
    assert task.producer_order() == (PUBLISHER, validator(0), validator(1)) == task.order_of(3)
    report_round(chain, 2)
    reveal(chain, 2)
    chain.mine_to(chain.task().contest_deadline() + 1)
    assert f"only {PUBLISHER} may close round 2" in chain.reject(validator(0), close(1, 2))
    (elected,) = chain.of_type(ProducerElected)
    shown = answer(chain.state, "producer/1")["open"]
    assert [(o["round"], o["producer"].lower()) for o in shown] == [(2, PUBLISHER), (3, PUBLISHER),
                                                                    (4, elected.producer)]
    later = answer(chain.state, f"producer/1?round=4&block={chain.block}")
    assert later["round"] == 4 and later["turns"][0]["producer"].lower() == elected.producer
    with pytest.raises(InspectError, match="needs block="):
        answer(chain.state, "producer/1?round=4")


def test_the_closes_of_several_open_rounds_land_in_one_block_in_order_and_out_of_order_is_refused():
    chain = pipelined(open_rounds=2, rounds=4)
    for r in (1, 2):
        report_round(chain, r)
        reveal(chain, r)
    chain.mine_to(chain.task().at(2, chain.block).contest_deadline() + 1)
    chain.send(PUBLISHER, close(1, 1))
    in_the_same_block(chain)
    chain.send(PUBLISHER, close(1, 2))  # round 2's producer (the fixed order's) was known before round 1 closed
    for r in (3, 4):
        report_round(chain, r)
        reveal(chain, r)
    chain.mine_to(chain.task().at(4, chain.block).contest_deadline() + 1)
    task = chain.task()
    p3, p4 = task.order_of(3)[0], task.order_of(4)[0]  # elected by the closes of rounds 1 and 2
    assert "round 4 of task 1 closes after round 3, not closed yet" in chain.reject(p4, close(1, 4))
    chain.send(p3, close(1, 3))
    in_the_same_block(chain)
    chain.send(p4, close(1, 4))
    history = chain.task().history
    assert chain.task().finished and history[0].block == history[1].block and history[2].block == history[3].block


def test_an_elected_producer_known_k_rounds_ahead_that_withholds_its_close_loses_its_turn_and_the_task_ends():
    chain = pipelined(open_rounds=2, rounds=3, close_blocks=4)
    play(chain, 1)
    play(chain, 2)
    report_round(chain, 3)
    reveal(chain, 3)
    task = chain.task()
    first, second = task.order_of(3)[:2]
    chain.mine_to(task.close_deadline(0) + 1)  # the producer elected at round 1's close let its turn pass
    chain.send(second, close(1, 3))
    (missed,) = chain.of_type(ProducerMissed)
    assert (missed.round, missed.producer, missed.next_producer) == (3, first, second) and chain.task().finished


def test_a_round_of_the_fixed_order_that_nobody_closes_makes_the_task_cancellable():
    chain = pipelined(open_rounds=2, rounds=3, close_blocks=4)
    play(chain, 1)
    report_round(chain, 2)
    reveal(chain, 2)
    task = chain.task()
    chain.mine_to(task.close_deadline(len(task.producer_order()) - 1) + 1)
    cancelled = chain.send(PUBLISHER, CancelTask(1)).outputs[-1].message
    assert isinstance(cancelled, TaskCancelled) and cancelled.reason == CANCEL_NO_PRODUCER
