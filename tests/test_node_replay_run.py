"""`fedrollup chain replay` (rollups_node.replay_run): a recorded node database replayed through a backend
command, every input's status, outputs and reports compared byte for byte. `make riscv-replay` runs it with
the riscv64 backend under QEMU; here the host backend stands in, and each kind of divergence must be named."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dapp_fixtures import PORTAL, STRANGER
from riscv64_rootfs import REPO, ROOTFS, needs_riscv64, run_with_dapp
from schedule_fixtures import one_round_inputs

from dapp.eip712 import Domain
from dapp.portal import ETHER_PORTAL_ENV
from fedrollup.cli.entry import dispatch
from fedrollup.cli import build_parser
from rollups_node.advancer import Advancer
from rollups_node.machine import HostMachine
from rollups_node.merkle import OutputsTree
from rollups_node.model import Application, Input
from rollups_node.outputs import VOUCHER
from rollups_node.replay_run import ReplayError, replay_run
from rollups_node.sqlite_repository import SqliteRepository

HOST_BACKEND = [sys.executable, "-m", "dapp"]
APP = "0x" + "a9" * 20
# A task created with its test set, funded, joined, a stranger rejected, one round reported, revealed and closed,
# a reward withdrawn (a voucher): every kind of result.
INPUTS = one_round_inputs(Domain(31337, APP))
STRANGER_INPUT = next(i for i, (sender, _, _) in enumerate(INPUTS) if sender == STRANGER)  # rejected, a report
WITHDRAW_INPUT = len(INPUTS) - 1  # its Withdrawal notice and voucher
SUMMARY = f"{len(INPUTS)} inputs ({len(INPUTS) - 1} accepted, 1 rejected)"


def record(db: Path) -> None:
    """A node database as a run leaves it: the inputs and what the host backend answered to each."""
    repo = SqliteRepository(db)
    repo.save_application(Application(name="t", address=APP, consensus="0x" + "c0" * 20, input_box="0x" + "b0" * 20,
                                      input_box_block=1, template_hash="0x" + "00" * 32, epoch_length=10,
                                      data_availability="0x", chain_id=31337))
    repo.add_inputs([Input(index=i, epoch_index=i // 4, block_number=block, block_timestamp=1_700_000_000 + 12 * i,
                           chain_id=31337, app_contract=APP, sender=sender, prev_randao=i, payload=payload,
                           raw_data=b"raw" + payload, transaction_reference=f"0x{i:064x}")
                     for i, (sender, payload, block) in enumerate(INPUTS)], 100)
    machine = HostMachine(HOST_BACKEND, finish_timeout=5.0)
    machine.start()
    try:
        Advancer(repo, machine, OutputsTree([]), threading.Lock()).step()
    finally:
        machine.stop()
        repo.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("run") / "node.sqlite"
    record(db)
    return db


def tampered(recorded: Path, tmp_path: Path, sql: str) -> Path:
    db = tmp_path / "node.sqlite"
    with sqlite3.connect(recorded) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
        dst.execute(sql)
    return db


def test_the_same_backend_replays_a_run_identically(recorded, tmp_path):
    result = replay_run(recorded, HOST_BACKEND, work_dir=tmp_path)
    assert result.identical, result.differences
    assert result.inputs == len(INPUTS) and result.statuses == {"ACCEPTED": len(INPUTS) - 1, "REJECTED": 1}
    repo = SqliteRepository(recorded)
    assert repo.list_outputs(output_type=VOUCHER)[1] == 1  # the withdraw's voucher is among the compared outputs
    repo.close()
    assert result.verdict().startswith(f"REPLAY IDENTICAL: {SUMMARY}")


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE output SET raw_data = CAST(raw_data || x'00' AS BLOB) WHERE \"index\" = 3", "output 0 differs from byte"),
    (f"UPDATE report SET raw_data = x'00' WHERE input_index = {STRANGER_INPUT}",
     f"input {STRANGER_INPUT}: report 0 differs from byte 0"),
    (f"UPDATE input SET status = 'ACCEPTED' WHERE \"index\" = {STRANGER_INPUT}",
     f"input {STRANGER_INPUT}: status REJECTED, recorded ACCEPTED"),
    (f"DELETE FROM output WHERE input_index = {WITHDRAW_INPUT}", f"input {WITHDRAW_INPUT}: 2 outputs, recorded 0"),
    ("UPDATE input SET outputs_hash = '0x00' WHERE \"index\" = 2", "input 2: outputs Merkle root"),
])
def test_every_kind_of_divergence_is_named(recorded, tmp_path, sql, expected):
    result = replay_run(tampered(recorded, tmp_path, sql), HOST_BACKEND, work_dir=tmp_path / "work")
    assert not result.identical
    assert any(expected in difference for difference in result.differences), result.differences
    assert result.verdict().startswith("REPLAY DIFFERS")


def test_a_backend_with_other_rules_differs(recorded, tmp_path, monkeypatch):
    """A machine built with another EtherPortal address rejects the deposit: the replay names that input."""
    monkeypatch.setenv(ETHER_PORTAL_ENV, "0x" + "11" * 20)
    result = replay_run(recorded, HOST_BACKEND, work_dir=tmp_path)
    deposit = next(i for i, (sender, _, _) in enumerate(INPUTS) if sender == PORTAL)
    assert result.differences[0] == f"input {deposit}: status REJECTED, recorded ACCEPTED"


def test_the_recorded_database_is_only_read(recorded, tmp_path):
    before = recorded.read_bytes()
    replay_run(recorded, HOST_BACKEND, work_dir=tmp_path)
    assert recorded.read_bytes() == before


def test_the_command_line_says_the_verdict_and_fails_on_a_difference(recorded, tmp_path, capsys):
    parser = build_parser()
    assert dispatch(parser.parse_args(["chain", "replay", "--db", str(recorded)]), "fedrollup") == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("REPLAY IDENTICAL")
    bad = tampered(recorded, tmp_path, f"UPDATE report SET raw_data = x'00' WHERE input_index = {STRANGER_INPUT}")
    assert dispatch(parser.parse_args(["chain", "replay", "--db", str(bad)]), "fedrollup") == 1
    out = capsys.readouterr().out
    assert f"DIFFERS input {STRANGER_INPUT}: report 0" in out
    assert out.splitlines()[-1].startswith("REPLAY DIFFERS at 1 inputs")


def test_a_missing_or_empty_database_is_one_line_error(tmp_path, capsys):
    with pytest.raises(ReplayError, match="no node database"):
        replay_run(tmp_path / "nope.sqlite", HOST_BACKEND)
    empty = tmp_path / "empty.sqlite"
    SqliteRepository(empty).close()
    with pytest.raises(ReplayError, match="no application"):
        replay_run(empty, HOST_BACKEND)
    assert dispatch(build_parser().parse_args(["chain", "replay", "--db", str(tmp_path / "nope.sqlite")]),
                    "fedrollup") == 2
    assert "no node database" in capsys.readouterr().err


REPLAY_SH = REPO / "riscv64" / "replay.sh"


@needs_riscv64
@pytest.mark.slow
def test_the_riscv64_backend_under_qemu_gives_every_result_byte_for_byte(recorded, tmp_path):
    """`riscv64/replay.sh` (what `make riscv-replay` runs) on a run with every kind of result: notices, a
    voucher, a rejection and its report; then on a tampered copy, which it must call different."""
    same = subprocess.run([str(REPLAY_SH), str(ROOTFS), str(recorded)], capture_output=True, text=True, timeout=600)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "riscv64 Linux (QEMU user emulation), Python 3." in same.stdout
    assert same.stdout.splitlines()[-1].startswith(
        f"== riscv-replay: verdict: REPLAY IDENTICAL: {SUMMARY}")
    bad = tampered(recorded, tmp_path, f"UPDATE report SET raw_data = x'00' WHERE input_index = {STRANGER_INPUT}")
    differs = subprocess.run([str(REPLAY_SH), str(ROOTFS), str(bad)], capture_output=True, text=True, timeout=600)
    assert differs.returncode == 1, differs.stdout + differs.stderr
    assert differs.stdout.splitlines()[-1].startswith("== riscv-replay: verdict: REPLAY DIFFERS at 1 inputs")
    riscv64_part = differs.stdout.split("2/2 the riscv64 backend")[1]
    assert f"DIFFERS input {STRANGER_INPUT}: report 0 differs from byte 0" in riscv64_part


# The backend program whose printed digest must be the same on the host and on riscv64: the rollup's integer
# forward pass (dapp/qnn.py) over a seeded model and images, its logits' keccak256 (pinned in tests/test_qnn.py).
SELFTEST = ["-m", "dapp.qnn", "--selftest"]
GOLDEN_SELFTEST = "0x93f59ca6dbd13f0243b18a3556ff3a1ea917815337997e09b922c4fa6873777b"  # = test_qnn.GOLDEN


@needs_riscv64
def test_numpy_integer_results_are_bit_identical_on_riscv64(tmp_path):
    """The one check that x86-64 = riscv64 for numpy: the self-test's digest from the host's Python and pip numpy,
    then from the root file system's Python and Debian's numpy under QEMU, with dapp/ laid out as the Dockerfile
    lays it out (a folder of its own inside the root file system, removed afterwards). About 5 s."""
    host = subprocess.run([sys.executable, *SELFTEST], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert host.returncode == 0, host.stderr
    riscv64 = run_with_dapp(tmp_path.name, SELFTEST)
    assert riscv64.returncode == 0, riscv64.stderr
    assert host.stdout.strip() == GOLDEN_SELFTEST and riscv64.stdout == host.stdout
