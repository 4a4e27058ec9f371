"""The benchmark scripts still run end to end and print their tables (at toy sizes: this checks that they
work after a change elsewhere, it measures nothing; the figures come from running them at full size)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def bench(name: str, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run.stdout


def test_dapp_throughput_measures_the_backend_alone_and_behind_the_rollup_http_api():
    out = bench("dapp_throughput", "--rounds", "2", "--http-rounds", "2", "--repeats", "1", "--test-images", "20")
    assert "state machine alone (baseline)" in out and "python -m dapp via the node's rollup HTTP API" in out
    assert "ValidatorReport for 10 trainers: 1668 bytes" in out  # 4 + 8 x 32 + 4 x 32 + 10 x 128


def test_node_latency_measures_latency_burst_and_gas_on_anvil():
    out = bench("node_latency", "--samples", "2", "--burst", "4", "--block-time", "0.5")
    assert "addInput mined -> notice listed over /rpc" in out and "ValidatorReport (10 trainers)" in out


def test_round_time_splits_a_round_into_training_validation_and_aggregation(tmp_path):
    out = bench("round_time", "--rounds", "2", "--trainers", "4", "--strategies", "mad", "--model", "logreg",
                "--out", str(tmp_path))
    assert "Seconds per round" in out and "Peak resident memory" in out and "mad" in out


def test_e2e_compares_rounds_with_and_without_the_rollup():
    out = bench("e2e", "--rounds", "2", "--trainers", "4", "--block-times", "0.5")
    assert "no chain (baseline)" in out and "authority, 0.5 s blocks, K=auto 1" in out and "tail s" in out


def test_dapp_scale_states_a_bound_per_input_type_and_checks_the_output_limits():
    out = bench("dapp_scale", "--scales", "40", "100", "--repeats", "1", "--http-scale", "40", "--test-images", "20")
    for name in ("Register (the last trainer)", "ValidatorReport (a full group, signed)",
                 "ModelChunk (a CNN revealed, scored)", "RoundClose (mean of 20, every stake)",
                 "Withdraw (a paid trainer)", "CancelTask (refund voucher)", "Ether deposit funding the task"):
        assert name in out
    assert "Bound at 100 trainers: every input <" in out and "every input and output within the limits" in out
    assert "through `python -m dapp` behind the node's rollup HTTP server, 40 trainers" in out


def test_model_posts_prices_each_encoding_on_anvil_and_times_the_rollups_scoring():
    out = bench("model_posts", "--quick")
    lines = {tuple(line.split()[:2]): line for line in out.splitlines()
             if line.split()[:1] in (["before"], ["int8"], ["float16"])}
    rows = {key: line.split() for key, line in lines.items()}
    assert set(rows) == {(e, a) for e in ("before", "int8", "float16") for a in ("cnn", "cnn10")}
    # the design's sizes (dapp.qmodel's encoded sizes, 2 bytes per float16 parameter) and chunk counts
    assert rows["int8", "cnn"][2:4] == ["57,540", "1"] and rows["int8", "cnn10"][2:4] == ["589,076", "10"]
    assert rows["float16", "cnn"][2:4] == ["113,428", "2"] and rows["float16", "cnn10"][2:4] == ["1,171,796", "19"]
    gas = {key: int(row[4].replace(",", "")) for key, row in rows.items()}
    assert gas["before", "cnn"] < gas["int8", "cnn"] < gas["float16", "cnn"] < gas["int8", "cnn10"]
    assert "n/a: --quick" in lines["int8", "cnn"] and "not a Cartesi Machine" in out


def test_privacy_prints_accuracy_and_honest_rejections_against_epsilon(tmp_path):
    out = bench("privacy", "--rounds", "1", "--trainers", "4", "--seeds", "1", "--epsilons", "8", "--mechanisms",
                "gaussian", "--model", "logreg", "--out", str(tmp_path), "--plot", str(tmp_path / "privacy.png"))
    assert "honest updates rejected by MAD" in out and "gaussian · fedavg" in out and "laplace" not in out
    assert "8 / 8" in out  # one round's total ε is the round's, for both mechanisms
    assert (tmp_path / "privacy.png").is_file() and (tmp_path / "privacy.json").is_file()


def test_qos_compares_federated_runs_with_the_centralized_bound(tmp_path):
    out = bench("qos", "--seeds", "1", "--rounds", "1", "--trainers", "4", "--out", str(tmp_path))
    for row in ("federated, mad", "federated, fedavg", "centralized bound", "always compliant"):
        assert row in out
    assert "violation recall" in out and (tmp_path / "results.json").is_file()


def test_fairness_prints_accuracy_and_rejections_per_cell(tmp_path):
    out = bench("fairness", "--rounds", "1", "--seeds", "1", "--trainers", "4", "--model", "logreg", "--partitions",
                "iid", "--attacks", "signflip", "--strategies", "trust", "--out", str(tmp_path), "--figure",
                str(tmp_path / "fairness.png"))
    assert "cell 2/2: iid × none × fedavg, seed 42" in out and "clean FedAvg baseline" in out
    assert (tmp_path / "fairness.png").is_file() and len(list(tmp_path.glob("*.json"))) == 2


def test_report_parts_records_one_groups_report_in_parts_on_the_state_machine():
    """The state machine's table only (its anvil part costs ~25 s of stack start-up: run at full size)."""
    out = bench("report_parts", "--scales", "12", "24", "--chain-scales", "0", "--per-part", "5", "--test-images", "20")
    assert "every input and output within them" in out
    assert [line.split()[:2] for line in out.splitlines() if line.strip().startswith(("12 ", "24 "))] == [
        ["12", "3"], ["24", "5"]]  # trainers, parts


def test_shapley_measures_the_estimators_error_and_the_actors_payouts(tmp_path):
    out = bench("shapley", "--quick", "--trainers", "12", "--rounds", "1", "--out", str(tmp_path))
    for row in ("free-rider", "duplicate", "its original", "low-data (10 %)", "honest, group 0"):
        assert row in out
    assert "Monte-Carlo against exact Shapley, groups of 6" in out and "Shapley against leave-one-out" in out
    assert (tmp_path / "shapley.json").is_file()


def test_link_tls_prints_a_rounds_link_traffic_over_http_and_https():
    out = bench("link_tls", "--repeats", "1", "--arch", "cnn")
    rows = [line.split("|") for line in out.splitlines() if line.startswith("| cnn |")]
    assert [r[2].strip() for r in rows] == ["GET global model (.npz)", "POST model + report, POST upload"]
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in rows)  # both schemes carried the traffic
