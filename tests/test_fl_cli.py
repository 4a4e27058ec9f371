"""`fedrollup simulate`: every documented option is there, and bad options fail in one line with exit 2."""
from __future__ import annotations

import subprocess
import sys

import pytest

from fedrollup.cli import main

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
