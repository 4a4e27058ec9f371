"""Issue 14 on the state machine: a `trust` task's verdicts re-derived from the reported measures, the trainers'
standing (score, strikes, bans, coming back), pay by standing, and the attacks on them. A MAD task is unchanged."""
from __future__ import annotations

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, Chain, close_when_due, contest, create_task, post_blob, report,
                           task_message, trainer, update_of, validator, validator_model)

from frontend_console.views import standings_table, tasks_table
from rich.console import Console
from rollups_client.outputs import RollupOutput

from dapp import trust_rule
from dapp.schema import (VALIDATION_MAD, VALIDATION_TRUST, ContributionClassified, RewardPaid, TaskCreated,
                         TrainerStanding, pack_contribution, unpack_contribution)
from dapp.trust_rule import Standing, after_round, verdicts

GOOD = (6000, 100)  # an honest update: pointing the validator's way, the group's usual size
A, B, C = trainer(0, 0), trainer(0, 1), trainer(0, 2)
OTHERS = {trainer(1, i): 8800 for i in range(3)}


def trust_chain(rounds: int = 3) -> Chain:
    """Task 1, trust validation: 2 groups of 3 trainers, 1 mETH per Positive (the group budget of 5 mETH pays all)."""
    chain = Chain()
    create_task(chain, rounds=rounds, per_positive=1 * MILLI, validation=VALIDATION_TRUST)
    return chain


def play(chain: Chain, round_: int, measures: dict[str, tuple[int, int]], producer: str = PUBLISHER) -> None:
    """Group 0 reports `measures` for its trainers, group 1 three honest ones; both reveal; the producer closes."""
    chain.send(validator(0), report(1, round_, 9000, {t: 8800 for t in measures}, measures=measures,
                                    model=validator_model(0, round_), group=0))
    chain.send(validator(1), report(1, round_, 9000, OTHERS, measures={t: GOOD for t in OTHERS},
                                    model=validator_model(1, round_)))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, round_, validator_model(g, round_))
    close_when_due(chain, 1, round_, producer)


def next_producer(chain: Chain) -> str:
    return chain.task().producer


def verdict(chain: Chain, round_: int, who: str) -> bool:
    return next(n.positive for n in chain.of_type(ContributionClassified) if n.round == round_ and n.trainer == who)


def standing(chain: Chain, round_: int, who: str) -> TrainerStanding:
    return next(n for n in chain.of_type(TrainerStanding) if n.round == round_ and n.trainer == who)


def paid(chain: Chain, round_: int) -> dict[str, int]:
    return {n.trainer: n.amount for n in chain.of_type(RewardPaid) if n.round == round_}


# ----------------------------------------------------------------------------- the rule, pure


NEW, TRUSTED = Standing(), Standing(score=6000)


def judged(measures: list[tuple[int, int]], standing: Standing = NEW, round_: int = 1) -> list[bool]:
    return verdicts(measures, [standing] * len(measures), round_)


def test_the_rule_at_its_boundaries():
    # lower median of (100, 100, 300) is 100: exactly 3x passes, one hundredth more does not; for a newcomer a cosine
    # of 0 does not pass
    assert judged([(1, 100), (5000, 100), (5000, 300)]) == [True, True, True]
    assert judged([(0, 100), (5000, 100), (5000, 301)]) == [False, True, False]
    assert judged([(-1, 100)]) == [False]
    assert judged([]) == []


def test_a_trusted_trainer_gets_the_benefit_of_the_doubt_and_loses_it_with_a_rejection():
    assert NEW.trusted is False and TRUSTED.trusted is True
    assert judged([(0, 100), (-1999, 100), (-2000, 100)], TRUSTED) == [True, True, False]
    assert judged([(-1999, 100)], Standing(score=5999)) == [False]
    assert not after_round(TRUSTED, 2, False).trusted  # a strike: the doubt is gone until it is accepted again
    assert after_round(after_round(Standing(score=9000), 2, False), 3, True).trusted
    assert judged([(5000, 100), (5000, 100), (-100, 400)], TRUSTED) == [True, True, False]  # size is never doubted
    assert "points away from the validator's (cos -0.20, trusted: the floor is -0.20)" in trust_rule.rejection(
        -2000, 100, 100, TRUSTED, 1)


def test_an_empty_or_shrunken_update_does_no_work_and_is_rejected_even_from_a_trusted_trainer():
    # lower median of (99, 300, 300) is 300: exactly a third (100) passes, 99 hundredths do not
    assert judged([(5000, 99), (5000, 300), (5000, 300)], TRUSTED) == [False, True, True]
    assert judged([(5000, 100), (5000, 300), (5000, 300)], TRUSTED) == [True, True, True]
    assert judged([(0, 0), GOOD, GOOD], TRUSTED) == [False, True, True]  # a free-rider: the global model sent back
    assert "(little or no training)" in trust_rule.rejection(0, 0, 100, TRUSTED, 1)


def test_a_minority_cannot_move_the_median_but_a_majority_can():
    honest, boosted = (5000, 100), (5000, 1000)
    assert judged([honest, honest, boosted]) == [True, True, False]
    assert judged([honest, honest, boosted, boosted]) == [True, True, False, False]  # lower median: still honest
    # most of the group boosted: the boosted pass, and the honest one is now too small beside them
    assert judged([honest, boosted, boosted]) == [False, True, True]


def test_measures_from_floats_are_clamped_integers():
    assert trust_rule.cosine_bps(-1.2) == -10_000 and trust_rule.cosine_bps(0.61234) == 6123
    assert trust_rule.norm_centi(1e9) == trust_rule.MAX_NORM and trust_rule.norm_centi(float("nan")) == 0xFFFF
    assert trust_rule.norm_centi(2.344) == 234 and trust_rule.norm_centi(-1.0) == 0


def test_a_contribution_word_round_trips_a_negative_cosine():
    word = pack_contribution(A, 8800, 175, -6170, 1234)
    c = unpack_contribution(word)
    assert (c.trainer, c.accuracy_bps, c.samples, c.cosine_bps, c.norm_centi) == (A, 8800, 175, -6170, 1234)
    assert unpack_contribution(pack_contribution(A, 8800, 175)).cosine_bps == 0  # a MAD word leaves them 0
    with pytest.raises(ValueError, match="32 bits"):
        pack_contribution(A, 8800, 1 << 32)


def test_standing_life_cycle_ban_doubles_and_comes_back():
    s = Standing()
    s = after_round(s, 1, True)
    assert (s.score, s.strikes) == (6000, 0)
    for r in (2, 3):
        s = after_round(s, r, False)
    assert (s.score, s.strikes, s.bans) == (1000, 2, 0)
    s = after_round(s, 4, False)  # third strike in a row: banned for rounds 5..7
    assert (s.score, s.strikes, s.bans, s.banned_until) == (0, 0, 1, 7)
    assert after_round(s, 6, True) == s  # a banned trainer's standing waits
    s = after_round(s, 8, True)  # back: earns trust again
    assert (s.score, s.banned(8), s.banned(9)) == (1000, False, False)
    for r in (9, 10, 11):
        s = after_round(s, r, False)
    assert (s.bans, s.banned_until) == (2, 11 + 6)  # the second ban is twice as long


# ----------------------------------------------------------------------------- on the state machine


def test_a_trust_task_records_its_rule_and_unknown_rules_are_refused():
    chain = trust_chain()
    assert chain.of_type(TaskCreated)[0].validation == VALIDATION_TRUST
    assert "validation rule 7 is unknown (known: 0 mad, 1 trust)" in chain.reject(PUBLISHER, task_message(validation=7))


def test_the_rollup_re_derives_the_verdicts_from_the_reported_measures():
    chain = trust_chain()
    play(chain, 1, {A: (1, 100), B: (0, 100), C: (5000, 301)})
    assert [verdict(chain, 1, t) for t in (A, B, C)] == [True, False, False]
    notice = next(n for n in chain.of_type(ContributionClassified) if n.trainer == C)
    assert (notice.cosine_bps, notice.norm_centi) == (5000, 301)
    # pay by standing: A's first accepted update moves it to 6,000 of 10,000: 60 % of the 1 mETH reward
    assert paid(chain, 1)[A] == 6 * MILLI // 10 and B not in paid(chain, 1) and C not in paid(chain, 1)
    assert (standing(chain, 1, B).score, standing(chain, 1, B).strikes) == (2500, 1)


def test_a_report_with_an_impossible_cosine_is_refused():
    chain = trust_chain()
    bad = report(1, 1, 9000, {A: 8800}, measures={A: (10_001, 100)}, model=validator_model(0, 1))
    assert "is not in -10000..10000" in chain.reject(validator(0), bad)


def test_a_mad_task_refuses_measures_and_keeps_no_standing():
    chain = Chain()
    create_task(chain, rounds=2, per_positive=1 * MILLI)
    bad = report(1, 1, 9000, {A: 8800}, measures={A: GOOD}, model=validator_model(0, 1))
    assert "validates with mad: a contribution's cosine and size must be 0" in chain.reject(validator(0), bad)
    assert chain.task().validation == VALIDATION_MAD
    chain.send(validator(0), report(1, 1, 9000, {A: 8800, B: 8800}, model=validator_model(0, 1)))
    chain.send(validator(1), report(1, 1, 9000, OTHERS, model=validator_model(1, 1)))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, 1, validator_model(g, 1))
    close_when_due(chain, 1, 1, PUBLISHER)
    assert paid(chain, 1)[A] == 1 * MILLI and not chain.of_type(TrainerStanding)


def test_a_trainer_that_keeps_attacking_is_banned_unpaid_unheard_then_comes_back():
    chain = trust_chain(rounds=8)
    reversed_ = (-6000, 100)
    for r in (1, 2, 3):  # three reversed updates in a row: banned for rounds 4..6
        play(chain, r, {A: reversed_, B: GOOD, C: GOOD}, producer=PUBLISHER if r == 1 else next_producer(chain))
    s = standing(chain, 3, A)
    assert (s.accepted, s.score, s.bans, s.banned_until) == (False, 0, 1, 6)
    assert chain.task().standing(B).score == 8000 and paid(chain, 3)[B] == 8 * MILLI // 10

    # round 4: banned, a sound update is still Negative, unpaid, and it cannot contest; its standing waits
    chain.send(validator(0), report(1, 4, 9000, {A: 8800, B: 8800, C: 8800}, measures={A: GOOD, B: GOOD, C: GOOD},
                                    model=validator_model(0, 4)))
    chain.send(validator(1), report(1, 4, 9000, OTHERS, measures={t: GOOD for t in OTHERS},
                                    model=validator_model(1, 4)))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, 4, validator_model(g, 4))
    assert not verdict(chain, 4, A)
    assert "is banned until round 6" in chain.reject(A, contest(1, 4, A, update_of(A, 4)))
    close_when_due(chain, 1, 4, next_producer(chain))
    assert A not in paid(chain, 4) and chain.task().standing(A) == s_without_round(s)
    for r in (5, 6):
        play(chain, r, {A: GOOD, B: GOOD, C: GOOD}, producer=next_producer(chain))
        assert not verdict(chain, r, A)
    play(chain, 7, {A: GOOD, B: GOOD, C: GOOD}, producer=next_producer(chain))  # back: accepted, paid 10 %
    assert verdict(chain, 7, A) and paid(chain, 7)[A] == MILLI // 10 and standing(chain, 7, A).score == 1000


def s_without_round(s: TrainerStanding) -> Standing:
    return Standing(s.score, s.strikes, s.bans, s.banned_until)


def test_on_chain_the_doubt_goes_to_those_the_rollup_trusts():
    chain = trust_chain()
    play(chain, 1, {A: GOOD, B: (-1500, 100), C: GOOD})  # round 1: nobody is trusted, B's slight reversal fails
    play(chain, 2, {A: (-1500, 100), B: (-1500, 100), C: (-2000, 100)}, producer=next_producer(chain))
    # A (6,000, no strike) is trusted: passes above -0.2; B (a strike) is not; C is trusted but at exactly -0.2
    assert [verdict(chain, 2, t) for t in (A, B, C)] == [True, False, False]


def test_boosted_and_noised_minorities_are_rejected_in_their_own_report():
    chain = trust_chain()
    play(chain, 1, {A: GOOD, B: (6000, 1000), C: GOOD})  # scaled x10
    play(chain, 2, {A: GOOD, B: GOOD, C: (100, 65_535)}, producer=next_producer(chain))  # Gaussian noise, ~400x
    assert [verdict(chain, 1, t) for t in (A, B, C)] == [True, False, True]
    assert [verdict(chain, 2, t) for t in (A, B, C)] == [True, True, False]


def test_the_console_shows_each_trainers_latest_standing_and_the_tasks_rule():
    chain = trust_chain(rounds=4)
    for r in (1, 2, 3):
        play(chain, r, {A: (-6000, 100), B: GOOD, C: GOOD}, producer=PUBLISHER if r == 1 else next_producer(chain))
    outputs = [RollupOutput(i, i, 0, "Notice", b"", n.encode(), message=n) for i, n in enumerate(chain.notices)]
    console = Console(width=300, record=True)
    console.print(standings_table(outputs, 1), tasks_table(outputs, 1))
    shown = console.export_text()
    rows = {cells[1]: cells[2:] for cells in ([c.strip() for c in line.split("│")[1:-1]]
                                              for line in shown.splitlines() if line.count("│") == 9)}
    by_address = {k.lower(): v for k, v in rows.items()}
    assert by_address[A] == ["round 3", "rejected", "0 %", "0", "1", "round 6"]
    assert by_address[B] == ["round 3", "accepted", "80 %", "0", "0", "—"]
    assert "│ trust      │ 25.00%" in shown  # the tasks table names the rule
