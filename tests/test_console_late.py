"""The console shows who was late and what went back to the publisher: skipped groups and missed closes per
round, the missed turn among the producers, the refund and its withdrawal; the audit's file check skips a
skipped group's model (it has no digest on chain). On a history recorded by the real recorder against the
rollup's rules (tests/rollup_fakes.py); the same tables on anvil and the node: tests/test_e2e_demo.py."""
from __future__ import annotations

import pytest
from rich.console import Console

from console_fixtures import record_history
from dapp.schema import (CANCEL_GROUPS_SILENT, CANCEL_NAMES, CancelTask, GroupSkipped, ProducerMissed, TaskCancelled,
                         TaskFinished)
from dapp.state import format_wei
from flower_sim.rollup_schedule import SilentValidator
from frontend_console.audit import AuditFailure, AuditReport, check_files
from frontend_console.views import producers_table, refunds_table, rounds_table
from rollup_fakes import CFG, TERMS, FakeRollup, recorder_on


def text(table) -> str:
    console = Console(width=400, record=True)
    console.print(table)
    return console.export_text()


def silent_history(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, SilentValidator(None, from_round=2))  # validator 0 elected
    record_history(recorder, CFG, tmp_path)
    recorder.withdraw_refund()
    return rollup, recorder


def test_the_rounds_and_producers_tables_show_the_skipped_group_and_the_missed_close(monkeypatch, tmp_path):
    rollup, recorder = silent_history(monkeypatch, tmp_path)
    notices = [o for o in rollup.decoded() if o.message is not None]
    skipped, (missed,) = rollup.all(GroupSkipped), rollup.all(ProducerMissed)
    rows = {line.split("│")[2].strip(): line for line in text(rounds_table(notices, 1)).splitlines()
            if line.startswith("│")}
    assert set(rows) == {"1", "2", "3"}
    assert "late after" not in rows["1"] and "→" not in rows["1"]
    for n in skipped:
        assert f"group 0 (late after block {n.report_deadline})" in rows[str(n.round)]
    assert f"(block {missed.close_deadline}) →" in rows["2"] and "→" not in rows["3"]
    producers = text(producers_table(notices, 1))
    assert f"missed its close deadline at block {missed.close_deadline}: the turn went to" in producers
    assert producers.index("greatest stake") < producers.index("missed its close deadline")  # round 2: elected, then missed


def test_the_refunds_table_shows_the_refund_and_its_withdrawal_voucher(monkeypatch, tmp_path):
    rollup, _ = silent_history(monkeypatch, tmp_path)
    outputs = rollup.decoded()
    notices = [o for o in outputs if o.message is not None]
    (finished,) = rollup.all(TaskFinished)
    (voucher,) = [o for o in outputs if o.type == "Voucher"]
    shown = text(refunds_table(notices, 1))
    assert f"{format_wei(finished.refund)} │ credited to its balance" in shown
    assert "withdrawal of its balance" in shown and f"voucher, output {voucher.index} " in shown
    assert "refunds to publishers" in text(refunds_table(notices, 2)) and "withdrawal" not in text(refunds_table(notices, 2))


def test_the_audit_checks_the_reporting_groups_files_and_skips_the_silent_groups(monkeypatch, tmp_path):
    rollup, _ = silent_history(monkeypatch, tmp_path)
    report = AuditReport()
    check_files(rollup.chain.state, tmp_path, report)
    assert (report.files_checked, report.files_missing) == (3 + 2 + 1 + 1, 0)
    (tmp_path / "round-002-validator-0.frq").write_bytes(b"the silent group's model, never on chain")
    check_files(rollup.chain.state, tmp_path, AuditReport())  # not checked: no digest to check it against
    (tmp_path / "round-002-validator-1.frq").write_bytes(b"tampered")
    with pytest.raises(AuditFailure, match="round 2: .*validator 1's model"):
        check_files(rollup.chain.state, tmp_path, AuditReport())


def test_the_refunds_table_shows_a_cancelled_tasks_voucher_and_why(monkeypatch, tmp_path):
    rollup = FakeRollup()
    recorder, _ = recorder_on(rollup, monkeypatch, None)
    recorder.open_task(1)
    rollup.chain.mine(TERMS.report_blocks + 1)  # no validator reports round 1
    index = rollup.send_input(recorder.manager_key, CancelTask(1).encode())
    (cancelled,) = rollup.of_input(index, TaskCancelled)
    shown = text(refunds_table([o for o in rollup.decoded() if o.message is not None], 1))
    assert cancelled.refund > 0
    assert (f"cancelled in round 1: {CANCEL_NAMES[CANCEL_GROUPS_SILENT]}" in shown
            and f"{format_wei(cancelled.refund)} │ voucher" in shown), shown
