"""Issue 15 on the state machine: a `shapley` task pays each Positive its validator's share of the group's round
budget, after checking the shares against its own verdicts (only Positives, at most 10,000 in all, whole or in
parts); a per-positive task refuses shares. With trust standings the share is scaled by the score."""
from __future__ import annotations

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, Chain, band_model, close_when_due, create_task, post_blob, report,
                           task_message, trainer, validator, validator_model)
from rich.console import Console
from rollups_client.outputs import RollupOutput
from test_dapp_report_parts import split

from dapp.schema import (PAYOUT_PER_POSITIVE, PAYOUT_SHAPLEY, VALIDATION_TRUST, Challenge, ContestResolved,
                         ContributionClassified, RewardPaid, RoundRecorded, TaskCreated, TaskFinished)
from frontend_console.views import payouts_table, tasks_table

A, B, C = trainer(0, 0), trainer(0, 1), trainer(0, 2)
GROUP_BUDGET = 5 * MILLI  # 10 mETH per round over 2 groups
OTHERS = {trainer(1, i): 8800 for i in range(3)}


def shapley_chain(rounds: int = 1, **terms) -> Chain:
    """Task 1 paying by Shapley shares: 2 groups of 3 trainers, 5 mETH per group and round, 2 mETH per Positive (what
    an upheld contester earns)."""
    chain = Chain()
    create_task(chain, rounds=rounds, payout=PAYOUT_SHAPLEY, contest_blocks=20, **terms)
    return chain


def group_zero(shares: dict[str, int], scores: dict[str, int] | None = None, round_: int = 1, **kwargs):
    return report(1, round_, 9000, scores or {A: 8800, B: 8800, C: 8800}, group=0, shares=shares, **kwargs)


def play_until_reveal(chain: Chain, shares: dict[str, int], scores: dict[str, int] | None = None, round_: int = 1,
                      other_shares: dict[str, int] | None = None, **kwargs) -> None:
    """Group 0 reports `shares`, group 1 its three trainers at equal shares (unless `other_shares`); both reveal."""
    chain.send(validator(0), group_zero(shares, scores, round_, **kwargs))
    chain.send(validator(1), report(1, round_, 9000, OTHERS, group=1,
                                    shares={t: 3333 for t in OTHERS} if other_shares is None else other_shares))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, round_, validator_model(g, round_))


def play(chain: Chain, shares: dict[str, int], scores: dict[str, int] | None = None, round_: int = 1,
         other_shares: dict[str, int] | None = None, **kwargs) -> None:
    """`play_until_reveal`, then the publisher closes the round."""
    play_until_reveal(chain, shares, scores, round_, other_shares, **kwargs)
    close_when_due(chain, 1, round_, PUBLISHER)


def paid(chain: Chain) -> dict[str, int]:
    return {n.trainer: n.amount for n in chain.of_type(RewardPaid)}


def test_create_task_records_the_payout_rule_and_refuses_an_unknown_one():
    chain = shapley_chain()
    assert chain.of_type(TaskCreated)[0].payout == PAYOUT_SHAPLEY and chain.task().payout == PAYOUT_SHAPLEY
    assert "payout rule 2 is unknown (known: 0 per-positive, 1 shapley)" in chain.reject(PUBLISHER,
                                                                                        task_message(payout=2))


def test_each_positive_is_paid_its_share_of_the_group_budget_and_the_dust_stays_in_escrow():
    chain = shapley_chain()
    play(chain, {A: 6000, B: 3999, C: 0})  # 1 bps of dust; C (a free-rider: value 0) is Positive but unpaid
    assert [(n.trainer, n.share_bps) for n in chain.of_type(ContributionClassified) if n.group == 0] == [
        (A, 6000), (B, 3999), (C, 0)]
    amounts = paid(chain)
    assert (amounts[A], amounts[B]) == (GROUP_BUDGET * 6000 // 10_000, GROUP_BUDGET * 3999 // 10_000)
    assert C not in amounts  # nothing to pay: no RewardPaid
    group_one = sum(amounts[t] for t in OTHERS)
    assert group_one == 3 * (GROUP_BUDGET * 3333 // 10_000)
    recorded = chain.of_type(RoundRecorded)[0]
    assert recorded.trainer_paid == amounts[A] + amounts[B] + group_one
    # what no share claimed (group 0's 1 bps, group 1's 1 bps) went back to the publisher with the rest
    assert chain.of_type(TaskFinished)[0].refund == recorded.escrow_left
    assert recorded.escrow_left == 2 * GROUP_BUDGET - recorded.trainer_paid  # the validator reward went to a validator


@pytest.mark.parametrize("shares, accepted", [
    ({A: 5000, B: 3000, C: 2000}, True),   # exactly the whole budget
    ({A: 5000, B: 3000, C: 2001}, False),  # 10,001
    ({A: 10_001}, False),  # one share above the budget
])
def test_the_shares_sum_to_at_most_the_whole_budget(shares, accepted):
    chain = shapley_chain()
    if accepted:
        chain.send(validator(0), group_zero(shares))
        assert chain.task().reports[0].entries[C].share_bps == 2000
    else:
        reason = chain.reject(validator(0), group_zero(shares))
        assert "above the whole budget (10000)" in reason or "share of trainer" in reason
        assert chain.task().reports[0] is None


def test_a_share_on_an_update_the_rollup_judges_negative_refuses_the_report():
    chain = shapley_chain()
    reason = chain.reject(validator(0), group_zero({A: 6000, B: 4000}, scores={A: 8800, B: 5000, C: 8800}))
    assert f"trainer {B} is Negative by task 1's rule, yet the report gives it a share of 4000 bps" in reason
    chain.send(validator(0), group_zero({A: 6000}, scores={A: 8800, B: 5000, C: 8800}))  # B without a share: fine


def test_a_per_positive_task_refuses_a_share_and_pays_as_before():
    chain = Chain()
    create_task(chain, rounds=1, payout=PAYOUT_PER_POSITIVE, per_positive=1 * MILLI, contest_blocks=20)
    assert "pays per-positive: a contribution's share must be 0" in chain.reject(validator(0), group_zero({A: 1}))
    play(chain, {}, other_shares={})
    assert set(paid(chain).values()) == {1 * MILLI}  # rewardPerPositive each (3 x 1 mETH within a 5 mETH group budget)


def test_best_share_first_when_an_upheld_contester_leaves_too_little():
    # 1 mETH per Positive, a group budget of 1.5 mETH: shares 8000 / 2000 want 1.2 and 0.3 mETH, in full
    chain = Chain()
    create_task(chain, rounds=1, payout=PAYOUT_SHAPLEY, budget=3 * MILLI, per_positive=1 * MILLI, contest_blocks=20)
    play(chain, {A: 2000, B: 8000}, scores={A: 8800, B: 8800})
    assert (paid(chain)[B], paid(chain)[A]) == (1_200_000_000_000_000, 300_000_000_000_000)


def test_a_friend_given_most_of_the_budget_loses_it_to_the_publishers_challenge():
    # the validator gives a sybil friend 90 %; its real update is poor on the public set (3,000 bps)
    chain = shapley_chain()
    play_until_reveal(chain, {A: 9000, B: 1000}, updates={A: band_model(dead=range(1, 8), salt=-8)})
    chain.send(PUBLISHER, Challenge(1, 1, A))
    post_blob(chain, validator(0), 1, 1, band_model(dead=range(1, 8), salt=-8))
    close_when_due(chain, 1, 1, PUBLISHER)
    assert chain.of_type(ContestResolved)[-1].upheld
    assert A not in paid(chain) and paid(chain)[B] == GROUP_BUDGET // 10  # the friend's 90 % stays in escrow


def test_a_trust_task_scales_each_share_by_the_trainers_score():
    chain = shapley_chain(validation=VALIDATION_TRUST)
    good = {t: (6000, 100) for t in (A, B, C)}
    chain.send(validator(0), group_zero({A: 5000, B: 5000}, measures=good))
    chain.send(validator(1), report(1, 1, 9000, OTHERS, group=1, measures={t: (6000, 100) for t in OTHERS},
                                    shares={t: 3333 for t in OTHERS}))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, 1, validator_model(g, 1))
    close_when_due(chain, 1, 1, PUBLISHER)
    # a newcomer's first accepted update: score 6,000, so 60 % of its share's amount
    assert paid(chain)[A] == GROUP_BUDGET * 5000 // 10_000 * 6000 // 10_000


def test_shares_over_a_report_in_parts_are_checked_once_the_whole_report_is_in():
    chain = shapley_chain()
    first, last = split(group_zero({A: 5000, B: 5000, C: 1}), [2, 1])
    assert chain.send(validator(0), first).outputs == ()  # 10,000 so far: nothing judged yet
    assert "shares sum to 10001 bps" in chain.reject(validator(0), last)
    fine_first, fine_last = split(group_zero({A: 5000, B: 4000, C: 1000}), [2, 1])
    chain = shapley_chain()
    chain.send(validator(0), fine_first)
    chain.send(validator(0), fine_last)
    assert [n.share_bps for n in chain.of_type(ContributionClassified)] == [5000, 4000, 1000]


def test_the_console_shows_each_share_beside_what_was_paid():
    chain = shapley_chain()
    play(chain, {A: 6000, B: 3999, C: 0})
    outputs = [RollupOutput(i, i, 0, "Notice", b"", n.encode(), message=n) for i, n in enumerate(chain.notices)]
    console = Console(width=300, record=True)
    console.print(payouts_table(outputs, 1), tasks_table(outputs, 1))
    shown = console.export_text()
    rows = {cells[3].lower(): cells[4:] for cells in ([c.strip() for c in line.split("│")[1:-1]]
                                                     for line in shown.splitlines() if line.count("│") == 8)}
    assert rows[A] == ["Positive", "60.00%", "0.003 ETH"]
    assert rows[C] == ["Positive", "0.00%", "—"]
    assert "│ shapley │" in shown
