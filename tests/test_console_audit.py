"""The auditors' console against a real anvil, the official contracts, the node and the backend.

One recorded history (2 validators, 4 trainers, 2 rounds, one attacker) is shared by the module; tests that
tamper with evidence put it back.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console_fixtures import ATTACKER, HISTORY_CFG, History, recorded_history, tampered_output
from dapp.schema import CreateTask, DepositCredited, RewardPaid, TaskCreated, TaskFunded, TrainerStakes, Withdraw
from dapp.state import format_wei
from flower_sim.rollup_roles import RollupRejected
from frontend_console.audit import AuditFailure, AuditReport, audit
from rollups_client.l1 import L1
from rollups_client.outputs import RollupOutput
from rollups_node.outputs import encode_notice

pytestmark = pytest.mark.slow
CFG = HISTORY_CFG
FRONTEND_CONSOLE = str(Path(sys.executable).parent / "frontend-console")  # the installed console script


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    with recorded_history(tmp_path_factory.mktemp("console"), CFG) as recorded:
        yield recorded


@pytest.fixture(scope="module", autouse=True)
def honest_audit(history) -> AuditReport:
    """The audit of the history as recorded, taken before the module's first test (autouse), so before any test
    sends more inputs (a rejected withdrawal, deposits), whatever order the tests run in."""
    return audit(history.node, L1(history.deployment.rpc_url, history.deployment), run_dir=history.run_dir)


def console(history: History, *args: str) -> subprocess.CompletedProcess:
    path = history.run_dir.parent / "deployment.json"
    return subprocess.run([FRONTEND_CONSOLE, *args, "--node", history.node_url,
                           "--deployment", str(path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "300"})  # tables unwrapped


def first_notice(history: History, kind: type) -> tuple[RollupOutput, object]:
    for out in history.node.notices():
        if isinstance(out.message, kind):
            return out, out.message
    raise AssertionError(f"no {kind.__name__} notice")


def test_audit_passes_on_the_honest_history_and_checks_every_model_file(honest_audit):
    report = honest_audit
    assert report.rejected == 0 and report.accepted == report.inputs
    assert report.outputs == report.proven > 0
    assert report.rounds == 2
    assert report.files_checked == 2 * (1 + CFG.validators) and report.files_missing == 0
    # Settle: every epoch with inputs settled once by the deployment's Authority, on the re-derived root
    assert report.consensus == "AUTHORITY" and report.settled_epochs >= 2 and report.notes == []
    assert report.verdict().endswith(f"; {report.settled_epochs} epochs settled by the Authority")


def test_audit_names_a_notice_whose_reward_was_altered(history):
    out, paid = first_notice(history, RewardPaid)
    forged = RewardPaid(paid.task_id, paid.round, paid.trainer, paid.amount * 2, paid.stake).encode()
    index = out.index
    with tampered_output(history.db, index, encode_notice(forged)):
        with pytest.raises(AuditFailure, match=rf"output {index} \(RewardPaid of input \d+\): amount is "
                                               rf"{paid.amount * 2} on the rollup, {paid.amount} by the rules"):
            audit(history.node, L1(history.deployment.rpc_url, history.deployment))


def test_audit_names_a_round_record_whose_stake_was_altered(history):
    out, page = first_notice(history, TrainerStakes)  # the round's trainer stakes follow its RoundRecorded
    stakes = list(page.stakes)
    stakes[ATTACKER - page.first] += 1  # the attacker quietly given a reputation it never earned
    forged = TrainerStakes(**{**page.__dict__, "stakes": tuple(stakes)}).encode()
    with tampered_output(history.db, out.index, encode_notice(forged)):
        with pytest.raises(AuditFailure, match=r"TrainerStakes of input \d+\): stakes is"):
            audit(history.node, L1(history.deployment.rpc_url, history.deployment))


def test_audit_names_a_model_file_that_no_longer_matches_its_digest(history):
    path = history.run_dir / "round-002-validator-1.frq"
    original = path.read_bytes()
    path.write_bytes(original + b"retrained in secret")
    try:
        with pytest.raises(AuditFailure, match=r"round 2: .*round-002-validator-1\.frq \(validator 1's model\)"):
            audit(history.node, L1(history.deployment.rpc_url, history.deployment), run_dir=history.run_dir)
    finally:
        path.write_bytes(original)


def test_a_proof_that_leads_to_no_claim_fails_on_l1(history):
    l1 = L1(history.deployment.rpc_url, history.deployment)
    out, _ = first_notice(history, RewardPaid)
    raw, siblings = out.raw, out.siblings
    assert l1.validate_output(raw, out.index, siblings) is None
    assert "InvalidOutputsMerkleRoot" in l1.validate_output(raw + b"\0", out.index, siblings)


def test_a_rejected_input_stops_the_roles_with_the_rollups_reason(history):
    recorder, key = history.recorder, history.recorder.validator_keys[0]
    recorder._confirm("the first withdrawal", recorder._send(key, Withdraw()))  # it earned rewards: accepted
    with pytest.raises(RollupRejected, match=r"the rollup rejected a second withdrawal \(input \d+, REJECTED\): "
                                             r".*has nothing to withdraw"):
        recorder._confirm("a second withdrawal", recorder._send(key, Withdraw()))


def test_console_lists_decoded_notices_rounds_stakes_and_producers(history):
    notices = json.loads(console(history, "notice", "list", "--json").stdout)
    names = {n["name"] for n in notices}
    assert {"TaskCreated", "TaskFunded", "ParticipantRegistered", "ContributionClassified", "RewardPaid",
            "RoundRecorded", "ValidatorRewarded", "ProducerElected", "TaskFinished"} <= names
    rejected = [n for n in notices if n["name"] == "ContributionClassified" and not n["fields"]["positive"]]
    assert len(rejected) == CFG.rounds and all(n["fields"]["accuracy_bps"] == 1000 for n in rejected)
    rounds = console(history, "rounds")
    recomputed = [n["fields"] for n in notices if n["name"] == "GlobalModel"]  # the rollup's own accuracy
    assert len(recomputed) == CFG.rounds and rounds.returncode == 0
    assert all(f"{g['accuracy_bps'] / 100:.2f}%" in rounds.stdout for g in recomputed), rounds.stdout
    assert " · g1 " in rounds.stdout  # each group model's public accuracy
    stakes = console(history, "stakes").stdout
    assert stakes.count("trainer") == CFG.trainers and stakes.count("validator") == CFG.validators
    producers = console(history, "producers", "--json")
    assert [n["fields"]["round"] for n in json.loads(producers.stdout)
            if n["name"] == "ProducerElected"] == [2]
    (finished,) = [n for n in notices if n["name"] == "TaskFinished"]
    refunds = console(history, "refunds")
    assert refunds.returncode == 0 and "refunds to publishers" in refunds.stdout
    assert re.search(r"│ +1 │ finished .*│ " + re.escape(format_wei(int(finished["fields"]["refund"]))), refunds.stdout)


def test_console_inspect_and_reports(history):
    answer = console(history, "inspect", "--payload", "stakes/1")
    assert answer.returncode == 0 and '"role": "validator"' in answer.stdout
    unknown = console(history, "inspect", "--payload", "nonsense/1")
    assert unknown.returncode == 1 and "unknown inspect path" in unknown.stdout


def test_console_says_in_one_line_when_the_node_or_the_chain_is_unreachable(history, tmp_path):
    no_node = subprocess.run([FRONTEND_CONSOLE, "notice", "list", "--node",
                              "http://127.0.0.1:9", "--app", history.deployment.application],
                             capture_output=True, text=True, timeout=60)
    assert no_node.returncode == 2
    assert no_node.stderr.strip().splitlines() == [
        "frontend-console: error: no rollups node answers at http://127.0.0.1:9/rpc (is `fedrollup chain up` "
        "running?)"]
    broken = history.deployment.__dict__ | {"rpc_url": "http://127.0.0.1:9"}
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(broken))
    no_chain = subprocess.run([FRONTEND_CONSOLE, "audit", "--node", history.node_url,
                               "--deployment", str(path)], capture_output=True, text=True, timeout=60)
    assert no_chain.returncode == 2
    assert no_chain.stderr.strip().splitlines() == [
        "frontend-console: error: no Ethereum JSON-RPC node answers at http://127.0.0.1:9"]


def test_console_ether_deposit_funds_a_task_and_credits_a_depositor_and_the_audit_still_passes(history):
    """`ether deposit --task N` from the publisher funds N's escrow (TaskFunded, started once covered); without
    a task it is credited to the depositor (DepositCredited); both are inputs the audit re-derives."""
    recorder = history.recorder
    create = CreateTask(mad_bps=2500, rounds=1, groups=1, round_trainer_budget=3 * 10**15,
                        reward_per_positive=10**15, validator_reward=2 * 10**15,  # escrow 0.005 ETH
                        validators=("0x" + "77" * 20,), test_set_digest=bytes(32), test_set_size=1, model_arch=1)
    created = recorder._confirm("a new task", recorder._send(recorder.manager_key, create))
    task_id = next(n.task_id for n in recorder._notices(created) if isinstance(n, TaskCreated))
    funded = console(history, "ether", "deposit", "--amount", "0.005", "--task", str(task_id),
                     "--account-index", "1", "--json")
    assert funded.returncode == 0, funded.stderr
    index = json.loads(funded.stdout)["input_index"]
    stranger = console(history, "ether", "deposit", "--amount", "1500000gwei", "--account-index", "9")
    assert stranger.returncode == 0, stranger.stderr
    assert stranger.stdout.strip().startswith("deposit of 0.0015 ETH for your withdrawable balance added as input")
    credited_index = int(stranger.stdout.split()[-1])
    l1 = L1(history.deployment.rpc_url, history.deployment)
    deadline = time.monotonic() + 60
    while history.node.processed_input_count() <= credited_index and time.monotonic() < deadline:
        time.sleep(0.2)
    task_funded = [o.message for o in history.node.outputs(input_index=index)]
    assert task_funded == [TaskFunded(task_id, L1.address(recorder.manager_key), 5 * 10**15, 5 * 10**15,
                                      5 * 10**15, True)]
    credit = [o.message for o in history.node.outputs(input_index=credited_index)]
    assert len(credit) == 1 and isinstance(credit[0], DepositCredited) and credit[0].amount == 15 * 10**14
    report = audit(history.node, l1, run_dir=history.run_dir)  # raises AuditFailure on any difference
    assert report.inputs == credited_index + 1 and report.proven == report.outputs


def test_console_ether_deposit_refuses_more_than_the_account_holds(history):
    poor = "0x" + "00" * 31 + "07"  # a valid key of an empty account
    answer = console(history, "ether", "deposit", "--amount", "1", "--key", poor)
    assert answer.returncode == 2 and len(answer.stderr.strip().splitlines()) == 1
    assert "holds 0 ETH, less than the 1 ETH to deposit" in answer.stderr
