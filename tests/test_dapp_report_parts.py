"""Issue 16 item 4 on the state machine: a group's report in several `ReportPart` inputs counts only once its last
part is in (any order), each part checked on arrival and a rejected part changing nothing; a report still incomplete
at the close is skipped like a silent group; a trust task judges the whole report, not a part."""
from __future__ import annotations

from dataclasses import replace

from dapp_fixtures import (MILLI, PUBLISHER, Chain, addr, close_when_due, contest, create_task, post_blob,
                           post_test_set, report, settle, task_message, trainer, update_of, validator,
                           validator_model)

from dapp.inspect_routes import answer
from dapp.schema import (MAX_INPUT_PAYLOAD, MAX_OUTPUT_BYTES, MAX_OUTPUTS_PER_INPUT, MAX_REPORT_PARTS,
                         MAX_TASK_TRAINERS, REPORT_INPUT_TRAINERS, ROLE_TRAINER, ROLE_VALIDATOR, VALIDATION_TRUST,
                         ContributionClassified, GroupSkipped, ModelChunk, Register, ReportPart, RewardPaid,
                         ValidatorReport, encode_deposit_data, pack_contribution)
from dapp.state import UINT256_MAX
from dapp.task import Entry, PartialReport

TEAM = [trainer(0, i) for i in range(5)]
OTHERS = {trainer(1, i): 8800 for i in range(5)}


def chain_of(**terms) -> Chain:
    """Task 1: 2 groups of 5 trainers, 1 mETH per Positive (the 5 mETH group budget pays them all), 20-block windows."""
    chain = Chain()
    create_task(chain, rounds=2, trainers_per_group=5, per_positive=1 * MILLI, contest_blocks=20, **terms)
    return chain


def split(whole: ValidatorReport, sizes: list[int]) -> list[ReportPart]:
    """``whole`` cut into parts of ``sizes`` trainers, in report order."""
    parts, first = [], 0
    for i, n in enumerate(sizes):
        cut = slice(first, first + n)
        parts.append(ReportPart(whole.task_id, whole.round, i, len(sizes), whole.validator_accuracy_bps,
                                whole.model_digest, whole.contributions[cut], whole.update_digests[cut],
                                whole.sig_r[cut], whole.sig_vs[cut]))
        first += n
    assert first == len(whole.contributions)
    return parts


def group_zero(bps: dict[str, int] | None = None, **kwargs) -> ValidatorReport:
    return report(1, 1, 9000, bps or {t: 8800 - 100 * i for i, t in enumerate(TEAM)}, group=0, **kwargs)


def task_info(chain: Chain) -> dict:
    return answer(chain.state, "task/1")


def test_a_report_in_parts_counts_as_the_whole_report_once_its_last_part_is_in_whatever_the_order():
    whole_chain, parts_chain = chain_of(), chain_of()
    whole_chain.send(validator(0), group_zero())
    first, middle, last = split(group_zero(), [2, 2, 1])
    for part in (last, first):
        assert parts_chain.send(validator(0), part).outputs == ()
        assert parts_chain.task().reports[0] is None  # not a report yet: nothing classified, nothing to reveal
    assert task_info(parts_chain)["report_parts"] == [{"group": 0, "parts": 3, "received": [0, 2]}]
    completed = parts_chain.send(validator(0), middle)
    classified = [o.message for o in completed.outputs]
    assert classified == whole_chain.of_type(ContributionClassified)  # report order is part order, not arrival
    assert [c.trainer for c in classified] == TEAM
    assert parts_chain.task().reports[0] == replace(whole_chain.task().reports[0], block=parts_chain.block - 1)
    assert task_info(parts_chain)["report_parts"] == [] and task_info(parts_chain)["reports_in"] == [0]
    for chain in (whole_chain, parts_chain):
        chain.send(validator(1), report(1, 1, 9000, OTHERS))
        settle(chain, 1, 1, PUBLISHER)
    assert parts_chain.of_type(RewardPaid) == whole_chain.of_type(RewardPaid)
    assert len(parts_chain.of_type(RewardPaid)) == 10


def test_each_part_is_checked_on_arrival_and_a_refused_part_changes_nothing():
    chain = chain_of()
    parts = split(group_zero(), [2, 3])
    chain.send(validator(0), parts[0])
    assert chain.reject(validator(0), parts[0]) == (
        f"part 0 of 2 of validator {validator(0)}'s report of round 1 of task 1 was already received")
    other_model = replace(parts[1], model_digest=bytes(31) + b"\x01")
    assert "its earlier parts said 2 parts, 9000 bps, model 0x" in chain.reject(validator(0), other_model)
    assert "earlier parts said" in chain.reject(validator(0), replace(parts[1], validator_accuracy_bps=9100))
    assert "earlier parts said" in chain.reject(validator(0), replace(parts[1], parts=3))
    again = split(group_zero(), [1, 1, 3])[1]  # TEAM[1], already in part 0, as part 1 of a 2-part report
    assert chain.reject(validator(0), replace(again, parts=2)) == (
        f"trainer {TEAM[1]} is already in another part of the report")
    forged = replace(parts[1], sig_r=(parts[1].sig_r[1],) + parts[1].sig_r[1:])
    assert "Update signature was made by" in chain.reject(validator(0), forged)
    assert chain.reject(validator(0), replace(parts[1], part=2)) == (
        "part 2 is not below the report's 2 parts (parts count from 0)")
    assert chain.reject(validator(0), group_zero()) == (
        f"validator {validator(0)} has sent 1 of the 2 parts of its report of round 1 of task 1: the rest come as "
        f"ReportPart")
    chain.send(validator(0), parts[1])
    assert chain.reject(validator(0), parts[1]) == f"validator {validator(0)} already reported round 1 of task 1"


def test_a_part_count_out_of_range_and_a_part_after_the_report_deadline_are_refused():
    chain = chain_of()
    [single] = split(group_zero(), [5])
    assert chain.reject(validator(0), replace(single, parts=0, part=0)) == (
        f"a report comes in 1..{MAX_REPORT_PARTS} parts, not 0")
    assert chain.reject(validator(0), replace(single, parts=MAX_REPORT_PARTS + 1)) == (
        f"a report comes in 1..{MAX_REPORT_PARTS} parts, not {MAX_REPORT_PARTS + 1}")
    parts = split(group_zero(), [3, 2])
    chain.send(validator(0), parts[0])
    chain.mine_to(chain.task().report_deadline() + 1)
    assert chain.reject(validator(0), parts[1]).startswith("the report deadline of round 1 of task 1 was block")


def test_a_report_still_in_parts_at_the_close_is_skipped_like_a_silent_group_and_its_parts_dropped():
    chain = chain_of()
    parts = split(group_zero(), [3, 2])
    chain.send(validator(0), parts[0])  # part 2 never comes
    chain.send(validator(1), report(1, 1, 9000, OTHERS))
    digest = parts[0].model_digest
    refused = chain.reject(validator(0), ModelChunk(1, 1, digest, 0, 1, validator_model(0, 1)))
    assert refused.startswith("no model or update 0x")  # an incomplete report commits nothing
    assert chain.reject(TEAM[0], contest(1, 1, TEAM[0], update_of(TEAM[0], 1))).startswith(
        "group 0 has not reported round 1 of task 1")
    chain.mine_to(chain.task().report_deadline() + 1)
    post_blob(chain, validator(1), 1, 1, validator_model(1, 1))
    closed = close_when_due(chain, 1, 1, PUBLISHER)
    skipped = [o.message for o in closed.outputs if isinstance(o.message, GroupSkipped)]
    assert [(s.group, s.validator) for s in skipped] == [(0, validator(0))]
    assert {p.trainer for p in chain.of_type(RewardPaid)} == set(OTHERS)  # nothing paid for group 0
    assert chain.task().partials == {} and task_info(chain)["report_parts"] == []
    chain.send(validator(0), report(1, 2, 9000, {t: 8800 for t in TEAM}))  # round 2 starts afresh
    assert chain.task().reports[0] is not None


def test_an_incomplete_report_commits_no_model_for_the_copy_rule():
    chain = chain_of()
    parts = split(group_zero(), [3, 2])
    chain.send(validator(0), parts[0])
    copier = report(1, 1, 9000, OTHERS, model=validator_model(0, 1))  # group 1 commits group 0's model first
    chain.send(validator(1), copier)
    assert "each validator commits its own model" in chain.reject(validator(0), parts[1])


def test_a_trust_task_judges_a_boosted_update_in_part_two_against_the_whole_reports_median():
    """Part 2 alone holds two boosted updates (its own median would pass them); against the whole report's median
    (the three honest updates of part 1) they are 10x the group's size and rejected."""
    chain = chain_of(validation=VALIDATION_TRUST)
    honest, boosted = (6000, 100), (6000, 1000)
    measures = {TEAM[0]: honest, TEAM[1]: honest, TEAM[2]: honest, TEAM[3]: boosted, TEAM[4]: boosted}
    whole = group_zero({t: 8800 for t in TEAM}, measures=measures)
    first, second = split(whole, [3, 2])
    chain.send(validator(0), second)
    chain.send(validator(0), first)
    verdicts = {c.trainer: c.positive for c in chain.of_type(ContributionClassified)}
    assert verdicts == {TEAM[0]: True, TEAM[1]: True, TEAM[2]: True, TEAM[3]: False, TEAM[4]: False}
    bad = replace(first, part=0, contributions=(pack_contribution(TEAM[0], 8800, 600, 10_001, 100),) +
                  first.contributions[1:])
    fresh = chain_of(validation=VALIDATION_TRUST)
    assert fresh.reject(validator(0), bad) == (
        f"the cosine of trainer {TEAM[0]}'s update, 10001 bps, is not in -10000..10000")


def test_the_largest_group_reported_in_parts_stays_within_the_machine_limits():
    """One group of 10,000 trainers (the most a task holds): its report comes in 21 parts, each within the input
    limit; the last part classifies all 10,000 and the close pays them, within the outputs per input and the output
    size. The first 20 parts (500 trainers each, the last 495) are entered into the state as the part handler keeps
    them (their 500 signatures each, ~5 ms apiece, are what the benchmark times); the last part, five signed
    trainers, runs through the rules."""
    chain, n = Chain(), MAX_TASK_TRAINERS
    chain.send(PUBLISHER, task_message(rounds=1, groups=1, budget=n, per_positive=1, validator_reward=1,
                                       trainers_per_group=n, registration_blocks=n + 100, report_blocks=10,
                                       close_blocks=5, contest_blocks=5))
    post_test_set(chain, 1)
    chain.deposit(PUBLISHER, n + 1, encode_deposit_data(1))
    signers = [trainer(0, i) for i in range(5)]
    sybils = [addr(0x5B1_0000 + i) for i in range(n - len(signers))]
    for a in sybils + signers:
        chain.send(a, Register(1, ROLE_TRAINER, 0))
    chain.send(validator(0), Register(1, ROLE_VALIDATOR, 0))
    model = validator_model(0, 1)
    last = report(1, 1, 9000, {t: 8800 for t in signers}, model=model)
    parts = n // REPORT_INPUT_TRAINERS + 1
    full = ReportPart(1, 1, 0, parts, 9000, last.model_digest, (UINT256_MAX,) * REPORT_INPUT_TRAINERS,
                      *((bytes(32),) * REPORT_INPUT_TRAINERS,) * 3)
    assert len(full.encode()) <= MAX_INPUT_PAYLOAD
    kept = {p: tuple(Entry(t, 8800, 600, bytes(32), False) for t in sybils[p * 500:(p + 1) * 500])
            for p in range(parts - 1)}
    assert sum(map(len, kept.values())) == len(sybils)
    task = replace(chain.task(), partials={0: PartialReport(validator(0), 9000, last.model_digest, parts, kept)})
    chain.state = replace(chain.state, tasks={1: task})
    completed = chain.send(validator(0), ReportPart(1, 1, parts - 1, parts, 9000, last.model_digest,
                                                    last.contributions, last.update_digests, last.sig_r, last.sig_vs))
    assert len(completed.outputs) == n <= MAX_OUTPUTS_PER_INPUT
    assert chain.task().reports[0].positives == n
    post_blob(chain, validator(0), 1, 1, model)
    closed = close_when_due(chain, 1, 1, PUBLISHER)
    assert len(chain.of_type(RewardPaid)) == n and len(closed.outputs) <= MAX_OUTPUTS_PER_INPUT
    assert max(len(o.payload) for o in completed.outputs + closed.outputs) <= MAX_OUTPUT_BYTES
