"""Whole runs: metrics.json is complete, the MAD validator rejects a noisy attacker, runs are reproducible."""
from __future__ import annotations

import json

import pytest

from fedrollup.cli import main
from flower_sim.config import SimulationConfig
from flower_sim.simulation import simulate

pytestmark = pytest.mark.slow


def test_two_rounds_four_trainers_one_gaussian_attacker(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["simulate", "--rounds", "2", "--trainers", "4", "--validators", "2", "--attack", "gaussian",
                 "--malicious", "0.25", "--attack-prob", "1", "--seed", "1", "--out", str(out)])
    assert code == 0
    assert "Outputs in" in capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["config"]["trainers"] == 4 and doc["config"]["strategy"] == "mad"
    (attacker,) = doc["malicious_trainers"]
    assert [r["round"] for r in doc["rounds"]] == [1, 2]
    for r in doc["rounds"]:
        assert set(r["timings"]) == {"training_s", "validation_s", "aggregation_s"}
        assert r["global_accuracy_bps"] == int(r["global_accuracy"] * 10_000 + 1e-9)
        assert len(r["validators"]) == 2 and r["best_validator"] in (0, 1)
        assert all(v["own_accuracy_bps"] is not None and len(v["model_digest"]) == 64 for v in r["validators"])
        assert sorted(c["trainer_id"] for c in r["contributions"]) == [0, 1, 2, 3]
        for c in r["contributions"]:
            assert c["validator_id"] == c["trainer_id"] // 2
            assert c["malicious"] == (c["trainer_id"] == attacker)
            assert c["accepted"] == (not c["malicious"]), c
        assert (out / r["global_model_file"]).is_file()
    assert doc["rounds"][-1]["global_accuracy"] >= 0.80
    assert (out / "accuracy.png").stat().st_size > 0


def test_same_seed_gives_the_same_models_and_metrics(tmp_path):
    cfg = SimulationConfig(rounds=1, trainers=4, validators=2, attack="signflip", malicious=0.25, model="mlp",
                           local_epochs=1, seed=3).validate()
    first = simulate(cfg, tmp_path / "a").records[0].as_dict()
    second = simulate(cfg, tmp_path / "b").records[0].as_dict()
    first.pop("timings"), second.pop("timings")
    assert first == second


class StopAfterFirstRound:
    """Records the hook calls; raising in on_round_closed must stop the run before round 2."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_validator_report(self, report) -> None:
        self.calls.append(("report", report.round, report.validator_id, report.own_accuracy_bps,
                           len(report.contributions), report.model_digest))

    def on_round_closed(self, record) -> None:
        self.calls.append(("closed", record.round, record.global_accuracy_bps, record.global_digest))
        raise KeyboardInterrupt("the rollup refused the round")


def test_the_round_hook_sees_each_validator_report_then_the_close_and_can_stop_the_run(tmp_path):
    cfg = SimulationConfig(rounds=3, trainers=4, validators=2, attack="none", model="logreg",
                           local_epochs=1).validate()
    observer = StopAfterFirstRound()
    with pytest.raises(KeyboardInterrupt):
        simulate(cfg, tmp_path, observer=observer)
    assert [c[:3] for c in observer.calls] == [("report", 1, 0), ("report", 1, 1), ("closed", 1, observer.calls[2][2])]
    assert all(c[4] == 2 and len(c[5]) == 32 and 0 <= c[3] <= 10_000 for c in observer.calls[:2])  # keccak256 bytes
    assert (tmp_path / "round-001.frq").is_file() and not (tmp_path / "round-002.frq").exists()


def test_the_flower_server_app_runs_the_same_loop_on_a_grid(tmp_path):
    from flwr.app import Context, RecordDict

    from flower_sim import trainer
    from flower_sim.grid import InProcessGrid
    from flower_sim.server_app import app

    cfg = SimulationConfig(rounds=1, trainers=4, validators=2, attack="none", model="logreg", local_epochs=1)
    run_config = {**cfg.to_run_config(), "out": str(tmp_path)}
    grid = InProcessGrid(trainer.app, cfg.trainers, run_config)
    app(grid=grid, context=Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config=run_config))
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert len(doc["rounds"]) == 1 and doc["rounds"][0]["global_accuracy"] > 0.5


@pytest.mark.parametrize("strategy", ["fedavg", "krum", "median", "trimmed"])
def test_every_baseline_strategy_runs_a_round_and_records_every_contribution(strategy, tmp_path):
    cfg = SimulationConfig(rounds=1, trainers=6, validators=2, strategy=strategy, attack="signflip",
                           malicious=1 / 6, model="logreg", local_epochs=1).validate()
    record = simulate(cfg, tmp_path).records[0]
    assert sorted(c.trainer_id for c in record.contributions) == list(range(6))
    assert all(v.own_accuracy is None for v in record.validators)  # baselines train no reference model
    accepted = [v.accepted for v in record.validators]
    assert accepted == ([1, 1] if strategy == "krum" else [3, 3])
    assert record.global_accuracy > 0.5


def test_each_validator_samples_a_share_of_its_trainers_per_round_the_same_for_a_seed(tmp_path):
    cfg = SimulationConfig(rounds=3, trainers=8, validators=2, fraction_train=0.5, attack="none", model="logreg",
                           local_epochs=1, seed=5).validate()
    runs = [simulate(cfg, tmp_path / name).records for name in ("a", "b")]
    sampled = [[sorted(c.trainer_id for c in r.contributions) for r in records] for records in runs]
    assert sampled[0] == sampled[1]  # the same seed samples the same trainers
    for trainers in sampled[0]:
        assert [sum(1 for t in trainers if cfg.group_of(t) == g) for g in (0, 1)] == [2, 2]  # 4 per group, half
    assert len({tuple(t) for t in sampled[0]}) > 1  # another sample in another round
    doc = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert doc["config"]["fraction_train"] == 0.5 and [len(r["contributions"]) for r in doc["rounds"]] == [4, 4, 4]


def test_the_trust_strategy_rejects_a_sign_flipper_in_round_one_and_says_why(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["simulate", "--strategy", "trust", "--rounds", "1", "--trainers", "4", "--validators", "1",
                 "--attack", "signflip", "--malicious", "0.25", "--model", "logreg", "--local-epochs", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    (attacker,) = doc["malicious_trainers"]
    (record,) = doc["rounds"]
    assert record["validators"][0]["own_accuracy_bps"] is not None  # the reference's, as for MAD
    for c in record["contributions"]:
        assert c["accepted"] == (c["trainer_id"] != attacker), c
        assert (c["cosine_bps"] < 0) == (c["trainer_id"] == attacker) and c["norm_centi"] > 0
    assert f"trainer {attacker} (validator 0) rejected: its update points away from the validator's" in printed
