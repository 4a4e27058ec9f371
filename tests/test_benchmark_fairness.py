"""benchmarks.fairness without training (a scripted run in place of `simulate`): one JSON per run, reused when it
exists, and trust's cells marked where they miss the issue's targets."""
from __future__ import annotations

import json

import pytest

from benchmarks import fairness


@pytest.fixture
def scripted(monkeypatch):
    """Replaces a run by a result read off its config: trust rejects 10 % of honest updates on pathological data."""
    calls = []

    def run_one(cfg):
        calls.append((cfg.partition, cfg.attack, cfg.strategy, cfg.seed))
        trust_unfair = cfg.strategy == "trust" and cfg.partition == "pathological"
        attacked = cfg.attack != "none"
        return dict(curve=[0.9], final=0.9, honest_rejected=0.10 if trust_unfair else 0.0,
                    malicious_rejected=1.0 if attacked else None,
                    malicious_rejected_round1=1.0 if attacked else None, seconds=1.0)

    monkeypatch.setattr(fairness, "run_one", run_one)
    return calls


def test_each_run_is_saved_once_and_a_second_invocation_repeats_none(scripted, tmp_path, capsys):
    args = ["--partitions", "iid,pathological", "--attacks", "none,signflip", "--strategies", "trust",
            "--seeds", "2", "--rounds", "3", "--out", str(tmp_path), "--figure", str(tmp_path / "f.png")]
    assert fairness.main(args) == 0
    # trust's 2 x 2 cells and the clean FedAvg baseline per partition, 2 seeds each
    assert len(scripted) == (2 * 2 + 2) * 2 and len(list(tmp_path.glob("*.json"))) == 12
    saved = json.loads((tmp_path / "iid-signflip-trust-seed43-mlp-r3.json").read_text())
    assert saved["config"]["attack"] == "signflip" and saved["config"]["malicious"] == 0.3
    first = capsys.readouterr().out
    assert "cell 12/12" in first and (tmp_path / "f.png").stat().st_size > 0
    assert fairness.main(args) == 0
    assert len(scripted) == 12 and "reused" in capsys.readouterr().out


def test_trust_cells_that_reject_more_than_5_percent_of_honest_updates_are_marked(scripted, tmp_path, capsys):
    assert fairness.main(["--partitions", "iid,pathological", "--attacks", "none", "--strategies", "trust",
                          "--seeds", "1", "--out", str(tmp_path), "--figure", str(tmp_path / "f.png")]) == 0
    out = capsys.readouterr().out
    assert "pathological × none: honest rejected 10.0 % > 5.0 %" in out
    assert "iid × none" not in out.split("trust misses")[1]


def test_an_unknown_attack_is_a_one_line_error(tmp_path, capsys):
    assert fairness.main(["--attacks", "none,typo", "--out", str(tmp_path)]) == 2
    assert "--attacks takes a comma-separated list" in capsys.readouterr().out


def test_shards_split_the_runs_and_cached_reports_what_is_there_without_training(scripted, tmp_path, capsys):
    args = ["--partitions", "iid", "--attacks", "none,signflip", "--strategies", "trust", "--seeds", "2",
            "--rounds", "3", "--out", str(tmp_path), "--figure", str(tmp_path / "f.png")]
    assert fairness.main(args + ["--shard", "0/2"]) == 0  # runs 1 and 3 of the 6, seed by seed
    assert scripted == [("iid", "none", "trust", 42), ("iid", "none", "fedavg", 42),
                        ("iid", "signflip", "trust", 43)]
    assert "run without --shard" in capsys.readouterr().out
    assert fairness.main(args + ["--cached"]) == 0  # the other shard never ran: nothing more is trained
    out = capsys.readouterr().out
    assert len(scripted) == 3 and "mean ± sd over 1 seed(s)" in out
    assert fairness.main(args + ["--shard", "2/2"]) == 2 and "--shard is K/N with 0 <= K < N" in capsys.readouterr().out
