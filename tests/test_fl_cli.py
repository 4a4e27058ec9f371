"""`fedrollup simulate`: every documented option is there, and bad options fail in one line with exit 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from common.errors import ConfigError
from fedrollup.cli import build_parser, main
from fedrollup.cli.demo import demo_config
from fedrollup.demo import CHEAT_CONTEST_BLOCKS
from flower_sim.cheating import CheatingValidator
from flower_sim.rollup_schedule import SilentValidator

BAD_OPTIONS = [
    (["--mad", "1.5"], "--mad"),
    (["--mad", "0"], "--mad"),
    (["--malicious", "1.5"], "more than the 20 trainers"),
    (["--data", "/no/such/mnist.npz"], "not found"),
    (["--trainers", "7"], "cannot be split evenly"),
    (["--trainers", "2", "--validators", "2"], "at least 2 trainers"),
    (["--attack-prob", "2"], "--attack-prob"),
    (["--rounds", "0"], "--rounds"),
    (["--trainers", "4000", "--validators", "1"], "too few"),
    (["--fraction-train", "0"], "--fraction-train"),
    (["--fraction-train", "1.5"], "--fraction-train"),
    (["--payout", "equal"], "--payout must be one of per-positive, shapley"),
    (["--payout", "shapley", "--strategy", "krum"], "--payout shapley needs a validating strategy"),
]


@pytest.mark.parametrize("argv,words", BAD_OPTIONS)
def test_bad_options_give_one_line_and_exit_code_2(argv, words, capsys):
    assert main(["simulate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fedrollup simulate: error:")
    assert words in err


def test_help_documents_every_option_of_the_issue_without_loading_tensorflow():
    out = subprocess.run([sys.executable, "-m", "fedrollup", "simulate", "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    for option in ["--rounds", "--trainers", "--validators", "--mad", "--strategy", "--attack", "--malicious",
                   "--attack-prob", "--partition", "--seed", "--data", "--out", "--model", "--local-epochs",
                   "--batch-size", "--lr", "--sigma", "--flip-fraction", "--boost"]:
        assert option in out
    probe = "import sys, fedrollup.cli as c; c.build_parser(); print('tensorflow' in sys.modules, 'flwr' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False False"


SILENT_BAD = [
    (["--silent-validator", "2"], "validator id in 0..1 or 'elected', got 2"),
    (["--silent-validator", "first"], "validator id in 0..1 or 'elected', got 'first'"),
    (["--silent-validator", "0", "--validators", "1", "--trainers", "4"], "at least 2 validators"),
    (["--silent-validator", "0", "--silent-from-round", "6"], "--silent-from-round must be a round in 1..5"),
    (["--silent-validator", "elected", "--silent-from-round", "1"], "the publisher closes round 1"),
    (["--silent-from-round", "2"], "--silent-from-round needs --silent-validator"),
    (["--silent-validator", "0", "--report-blocks", "0"], "--report-blocks must be a number of L1 blocks"),
    (["--close-blocks", str(2**32)], "--close-blocks must be a number of L1 blocks"),
    (["--contest-blocks", "0"], "--contest-blocks must be a number of L1 blocks"),
    (["--cheating-validator", "0"], "--cheating-validator must be G:drop|misjudge|friend"),
    (["--cheating-validator", "0:steal"], "--cheating-validator must be G:drop|misjudge|friend"),
    (["--cheating-validator", "2:drop"], "names validator 2, the run has validators 0..1"),
    (["--cheating-validator", "0:drop", "--cheat-from-round", "6"], "--cheat-from-round must be a round in 1..5"),
    (["--cheat-from-round", "2"], "--cheat-from-round needs --cheating-validator"),
    (["--cheating-validator", "0:drop", "--silent-validator", "1"], "use one per run"),
]


@pytest.mark.parametrize("argv,words", SILENT_BAD)
def test_a_silent_validator_the_demo_cannot_stage_is_a_one_line_error_before_anything_starts(argv, words, capsys,
                                                                                          tmp_path):
    assert main(["demo", "--out", str(tmp_path / "run"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fedrollup demo: error:") and words in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv,silent,windows", [
    ([], None, (None, None)),  # the protocol's windows
    (["--silent-validator", "elected"], SilentValidator(None, 2), (20, 8)),
    (["--silent-validator", "1", "--silent-from-round", "3", "--report-blocks", "30"], SilentValidator(1, 3), (30, 8)),
    (["--close-blocks", "12"], None, (None, 12)),
])
def test_the_demo_options_become_its_typed_config(argv, silent, windows, tmp_path):
    config = demo_config(build_parser().parse_args(["demo", "--out", str(tmp_path), *argv]))
    assert (config.silent, (config.report_blocks, config.close_blocks)) == (silent, windows)
    assert config.contest_blocks is None  # the runs' default (rollup_roles.RUN_CONTEST_BLOCKS)


@pytest.mark.parametrize("argv,cheating,contest_blocks", [
    (["--cheating-validator", "1:Misjudge"], CheatingValidator(1, "misjudge", 2), CHEAT_CONTEST_BLOCKS),
    (["--cheating-validator", "0:friend", "--cheat-from-round", "1", "--contest-blocks", "20"],
     CheatingValidator(0, "friend", 1), 20),
])
def test_a_cheating_validator_becomes_the_demos_typed_config_with_a_wider_contest_window(argv, cheating,
                                                                                         contest_blocks, tmp_path):
    config = demo_config(build_parser().parse_args(["demo", "--out", str(tmp_path), *argv]))
    assert (config.cheating, config.contest_blocks, config.silent) == (cheating, contest_blocks, None)


def test_the_contest_window_is_an_option_of_the_demo(tmp_path):
    config = demo_config(build_parser().parse_args(["demo", "--out", str(tmp_path), "--contest-blocks", "5"]))
    assert config.contest_blocks == 5


def test_the_rounds_open_at_once_are_an_option_of_the_demo_checked_against_the_rollups_bound(tmp_path):
    parse = build_parser().parse_args
    assert demo_config(parse(["demo", "--out", str(tmp_path)])).open_rounds is None  # sized from L1's block time
    assert demo_config(parse(["demo", "--out", str(tmp_path), "--open-rounds", "24"])).open_rounds == 24
    with pytest.raises(ConfigError, match=r"--open-rounds must be in 1\.\.64, got 65"):
        demo_config(parse(["demo", "--out", str(tmp_path), "--open-rounds", "65"]))

