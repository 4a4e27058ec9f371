"""`fedrollup demo` end to end: real anvil, the official contracts, the node, the backend, Flower + Keras,
every round recorded from the roles' own keys, and a green audit as the last line."""
from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SMALL = ["--rounds", "2", "--trainers", "4", "--malicious", "0.25", "--attack", "gaussian", "--attack-prob", "1",
         "--block-time", "0.5", "--epoch-length", "4"]


def demo(*args: str, **kwargs) -> subprocess.Popen:
    # Ctrl-C in a terminal reaches a process whose SIGINT is at its default; a test run started in the
    # background by a non-interactive shell inherits SIGINT ignored, so restore the terminal's disposition.
    return subprocess.Popen([sys.executable, "-m", "fedrollup", "demo", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path):
    out = tmp_path / "run"
    process = demo(*SMALL, "--out", str(out), "--rounds", "5")
    deadline = time.monotonic() + 300
    state = out / "chain" / "chain.json"
    while not state.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the demo never brought its chain up"
        time.sleep(0.2)
    pids = json.loads(state.read_text())
    time.sleep(3)  # inside the run: task being opened or rounds running
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode != 0
    for name in ("anvil_pid", "node_pid"):
        deadline = time.monotonic() + 30
        while alive(pids[name]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(pids[name]), f"{name} {pids[name]} still running after Ctrl-C"


# One run shows the whole demo and both late outcomes (a single demo, not two: each costs ~50 s of chain start-up,
# training and audit): 2 rounds, a gaussian attacker that MAD rejects in both rounds, and the validator elected to
# close round 2 silent from it. Half-second blocks: a round's reports get 12 s (a round here trains in ~3-5 s), a
# producer's turn 2 s. The QoS task (issue 17) here: liveness does not depend on the task, and its compliance per
# cell is read from notices.
SILENT = ["--rounds", "2", "--trainers", "4", "--malicious", "0.25", "--attack", "gaussian", "--attack-prob", "1",
          "--block-time", "0.5", "--epoch-length", "4",
          "--silent-validator", "elected", "--silent-from-round", "2", "--report-blocks", "24", "--close-blocks", "4",
          "--task", "qos", "--lr", "0.3", "--batch-size", "8"]


def test_demo_records_every_round_on_the_rollup_a_silent_validator_is_skipped_the_refund_is_paid_and_the_audit_passes(
        tmp_path):
    out = tmp_path / "run"
    process = demo(*SILENT, "--out", str(out), env={**os.environ, "COLUMNS": "300"})
    stdout, _ = process.communicate(timeout=600)
    assert process.returncode == 0, stdout[-3000:]
    last = stdout.strip().splitlines()[-1]
    # Round 1: both groups' models; round 2: the global model and the reporting group's only.
    assert last.startswith("AUDIT PASSED: ") and "2 rounds" in last and "5 model files match" in last, last
    # settled by a Quorum of the manager and the two validators, each with its own node and database
    assert re.search(r"; \d+ epochs? settled by the Quorum \(0 dissenting votes", last), last
    assert "the Quorum of 3 members" in stdout and "manager ✓" in stdout
    for member in (2, 3):
        assert "accepted on L1" in (out / "chain" / f"member-{member}" / "node.log").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    attackers = set(metrics["malicious_trainers"])
    assert len(attackers) == 1
    for rnd in metrics["rounds"]:
        for c in rnd["contributions"]:
            assert c["accepted"] == (c["trainer_id"] not in attackers), c
    # The demo stopped the chain it started (its state file goes with it).
    assert not (out / "chain" / "chain.json").exists()

    silent = re.search(r"validator (\d), elected to close round 2, goes silent", stdout)
    assert silent, stdout[-3000:]
    g, other = int(silent[1]), 1 - int(silent[1])
    assert f"[chain] validator {g} is silent from round 2: it withholds its report of round 2" in stdout
    assert re.search(rf"validator {g} is silent: group {g} skipped in round 2 after the report deadline at "
                     rf"block \d+", stdout), stdout[-3000:]
    assert re.search(rf"validator {g} missed its close deadline at block \d+: validator {other} closes round 2",
                     stdout), stdout[-3000:]
    # The console: the skipped group and the missed turn in the rounds and producers tables, then the refund.
    assert re.search(rf"│ group {g} \(late after block \d+\)", stdout) and "missed its close deadline at" in stdout
    refund = re.search(r"the publisher withdraws its refund of ([0-9.]+) ETH", stdout)
    assert refund and float(refund[1]) > 0, stdout[-3000:]
    assert re.search(rf"finished .*│ {re.escape(refund[1])} ETH │ credited to its balance", stdout)
    assert re.search(rf"withdrawal of its balance .*│ {re.escape(refund[1])} ETH │ voucher", stdout)
    assert "the publisher executed its voucher (output" in stdout and f": {refund[1]} ETH paid" in stdout
    # The QoS task's compliance, per round and cell, from the rollup's CellCompliance notices: 2 rounds x 2 cells.
    assert "SLA compliance per cell" in stdout
    cells = re.findall(r"│\s+1 │\s+([12]) │\s+([01]) │\s+(\d+) │\s+([0-9.]+%) │\s+([0-9.]+%) │", stdout)
    assert sorted((r, c) for r, c, *_ in cells) == [("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")], stdout[-4000:]


# A validator that drops an honest trainer from its report of round 2, on the real parts: the trainer contests with
# its receipt from its own key and posts its update; the rollup upholds it. Half-second blocks: the contest window
# (and the response window) 20 blocks, room for the manager's close and the dispute's scoring. One Authority
# settles (the Quorum's three nodes are the test above's; here they cost ~10 s and check nothing more).
CHEATING = ["--rounds", "2", "--trainers", "4", "--attack", "none", "--block-time", "0.5", "--epoch-length", "4",
            "--cheating-validator", "0:drop", "--contest-blocks", "20", "--consensus", "authority"]


def test_a_dropped_trainer_contests_is_paid_first_and_its_validator_is_penalised_on_anvil_and_the_node(tmp_path):
    from contracts_config.deployment import load  # the node's notices, read after the run (web3: slow tests only)
    from dapp.schema import Contested, ContestResolved, RewardPaid, ValidatorPenalized, ValidatorRewarded  # as above
    from rollups_client.node import NodeClient  # as above

    out = tmp_path / "run"
    process = demo(*CHEATING, "--out", str(out), "--keep-chain", env={**os.environ, "COLUMNS": "300"})
    try:
        stdout, _ = process.communicate(timeout=600)
        assert process.returncode == 0, stdout[-3000:]
        assert stdout.strip().splitlines()[-1].startswith("AUDIT PASSED: "), stdout[-3000:]
        lied = re.search(r"validator 0 cheats in round 2: it leaves trainer (\d) out of its report", stdout)
        assert lied, stdout[-3000:]
        victim = int(lied[1])
        assert f"trainer {victim} was left out of validator 0's report of round 2 although it holds a receipt: it " \
               f"contests and posts its update (57,540 bytes" in stdout
        assert re.search(rf"the rollup upheld trainer {victim}'s contest: its update scores [0-9.]+% on the public "
                         rf"test set against the validator's [0-9.]+%; trainer {victim} is paid first, validator 0's "
                         rf"stake is cut by", stdout), stdout[-3000:]
        assert re.search(r"│ dropped trainer\s+│\s+[0-9.]+% │\s+[0-9.]+% │ yes: against the validator", stdout), \
            stdout[-3000:]

        # The node's own notices say the same.
        chain = json.loads((out / "chain" / "chain.json").read_text())
        node = NodeClient.at(chain["node_url"], load(out / "chain" / "deployment.json").application)
        notices = [o.message for o in node.notices() if o.message is not None]
        (contested,) = [n for n in notices if isinstance(n, Contested)]
        (verdict,) = [n for n in notices if isinstance(n, ContestResolved)]
        assert (contested.round, contested.group, verdict.upheld, verdict.posted) == (2, 0, True, True)
        round2 = [n for n in notices if getattr(n, "round", None) == 2]
        # Groups are paid in order, group 0 first: its first payment is the contester's.
        first_paid = next(n for n in round2 if isinstance(n, RewardPaid))
        assert first_paid.trainer.lower() == contested.trainer.lower()
        (penalty,) = [n for n in round2 if isinstance(n, ValidatorPenalized)]
        assert penalty.group == 0
        assert all(n.group != 0 for n in round2 if isinstance(n, ValidatorRewarded))
    finally:
        if process.poll() is None:
            process.kill()
        state = out / "chain" / "chain.json"
        if state.exists():
            for name in ("anvil_pid", "node_pid"):
                pid = json.loads(state.read_text()).get(name)
                if pid and alive(pid):
                    os.kill(pid, signal.SIGTERM)
