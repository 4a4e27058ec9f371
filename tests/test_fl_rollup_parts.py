"""The recorder sends a report past one input's trainers as `ReportPart`s (issue 16 item 4), and the rounds it records
are the ones it records with whole reports; a silent validator still withholds everything. On the rollup's own rules
(tests/rollup_fakes.py)."""
from __future__ import annotations

import functools
from dataclasses import replace

import pytest
from console_fixtures import record_history
from rollup_fakes import CFG, FakeRollup, recorder_on

from common import accounts
from dapp.schema import (MAX_INPUT_PAYLOAD, MAX_REPORT_PARTS, PAYOUT_SHAPLEY, ContributionClassified, GroupSkipped,
                         ReportPart, RewardPaid, TaskCreated, ValidatorReport, unpack_contribution)
from flower_sim import rollup_roles
from flower_sim.records import Contribution
from flower_sim.records import ValidatorReport as RoundReport
from flower_sim.rollup_inputs import report_inputs
from flower_sim.rollup_schedule import SilentValidator

ADDRESSES = ["0x" + f"{t + 1:040x}" for t in range(1_200)]


def round_report(trainers: int) -> RoundReport:
    contributions = tuple(Contribution(trainer_id=t, validator_id=0, accuracy=0.9, accuracy_bps=9000,
                                       num_examples=600, accepted=True, malicious=False, attacked=False,
                                       update_digest=bytes([t % 256]) * 32, signature=bytes(64))
                          for t in range(trainers))
    return RoundReport(round=1, validator_id=0, strategy="mad", own_accuracy=0.91, own_accuracy_bps=9100,
                       contributions=contributions, model_file="m.frq", model_digest=b"\x07" * 32, training_s=0.0,
                       validation_s=0.0, aggregation_s=0.0)


def test_a_report_of_up_to_500_trainers_is_one_validator_report_and_a_larger_one_parts_of_500():
    [whole] = report_inputs(1, round_report(500), ADDRESSES)
    assert isinstance(whole, ValidatorReport) and len(whole.encode()) == 64_388
    parts = report_inputs(1, round_report(1_200), ADDRESSES)
    assert [(type(p), p.part, p.parts, len(p.contributions)) for p in parts] == [
        (ReportPart, 0, 3, 500), (ReportPart, 1, 3, 500), (ReportPart, 2, 3, 200)]
    assert max(len(p.encode()) for p in parts) == 64_452 <= MAX_INPUT_PAYLOAD
    assert sum((p.contributions for p in parts), ()) == \
        report_inputs(1, round_report(1_200), ADDRESSES, per_input=1_200)[0].contributions
    with pytest.raises(ValueError, match=f"needs 65 parts, more than the {MAX_REPORT_PARTS}"):
        report_inputs(1, round_report(65), ADDRESSES, per_input=1)


def test_the_recorder_records_the_same_rounds_with_every_report_in_parts(monkeypatch, tmp_path):
    """Every report sent one trainer per part (2 parts a group); validator 1 silent from round 2: its group skipped,
    and everything the rollup classified and paid is what it classifies and pays with whole reports."""
    runs = {}
    for per_input in (1, 500):
        rollup = FakeRollup()
        monkeypatch.setattr(rollup_roles, "report_inputs", functools.partial(report_inputs, per_input=per_input))
        recorder, said = recorder_on(rollup, monkeypatch, SilentValidator(1, from_round=2))
        (tmp_path / str(per_input)).mkdir()
        record_history(recorder, CFG, tmp_path / str(per_input))
        assert "REJECTED" not in rollup.statuses.values() and rollup.chain.state.tasks[1].finished
        runs[per_input] = rollup, said
    parts, whole = runs[1][0], runs[500][0]
    kinds = [kind for kind, _ in parts.kinds.values()]
    assert kinds.count("ReportPart") == 2 * 4 and "ValidatorReport" not in kinds  # rounds 1-3, group 1 silent in 2-3
    assert "ReportPart" not in [kind for kind, _ in whole.kinds.values()]
    assert [(n.round, n.group) for n in parts.all(GroupSkipped)] == [(2, 1), (3, 1)]
    assert parts.all(ContributionClassified) == whole.all(ContributionClassified)
    assert parts.all(RewardPaid) == whole.all(RewardPaid)
    assert any("validator 0's report of round 1 (2 trainers) goes in 2 parts" in s for s in runs[1][1])


def test_a_shapley_run_reports_each_share_and_the_rollup_pays_the_group_budget_in_proportion(monkeypatch, tmp_path):
    """`--payout shapley`: the recorder creates a shapley task and packs each accepted update's share; the rollup
    pays each Positive that share of its group's budget (4 trainers x 1 mETH over 2 groups: 2 mETH a group)."""
    cfg = replace(CFG, payout="shapley", rounds=1)
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, None, cfg=cfg)
    record_history(recorder, cfg, tmp_path)
    assert "REJECTED" not in rollup.statuses.values() and rollup.all(TaskCreated)[0].payout == PAYOUT_SHAPLEY
    address = [accounts.address(accounts.trainer_index(t, cfg.validators)).lower() for t in range(cfg.trainers)]
    assert {n.trainer: n.share_bps for n in rollup.all(ContributionClassified)} == {
        address[t]: share for t, share in ((0, 1000), (1, 0), (2, 3000), (3, 4000))}
    milli = 10**15
    assert {n.trainer: n.amount for n in rollup.all(RewardPaid)} == {
        address[0]: milli // 5, address[2]: 3 * milli // 5, address[3]: 4 * milli // 5}


def test_the_report_word_carries_the_validators_share():
    shared = replace(round_report(2), contributions=tuple(replace(c, share_bps=1234 * (c.trainer_id + 1))
                                                          for c in round_report(2).contributions))
    [whole] = report_inputs(1, shared, ADDRESSES)
    assert [unpack_contribution(w).share_bps for w in whole.contributions] == [1234, 2468]
