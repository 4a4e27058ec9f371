"""`fedrollup console ether deposit` (and `frontend-console ether deposit`): amounts, keys and data are
checked before anything is sent, each mistake a one-line error (the deposit itself: test_console_audit)."""
from __future__ import annotations

import pytest

from common.errors import ConfigError
from fedrollup.cli import build_parser
from fedrollup.cli.console import main as frontend_console, parse_wei
from fedrollup.cli.entry import dispatch


@pytest.mark.parametrize("text, wei", [("0.5", 5 * 10**17), ("1", 10**18), ("0.5ether", 5 * 10**17),
                                       ("2 ETH", 2 * 10**18), ("20gwei", 20 * 10**9), ("1000wei", 1000),
                                       (".001", 10**15), ("0.000000000000000001", 1)])
def test_amounts_in_ether_or_with_a_unit(text, wei):
    assert parse_wei(text) == wei


@pytest.mark.parametrize("text, why", [("abc", "is not an amount"), ("-1", "is not an amount"),
                                       ("1e18", "is not an amount"), ("5 dollars", "is not an amount"),
                                       ("", "is not an amount"), ("0", "must be more than 0"),
                                       ("0.0wei", "must be more than 0"), ("0.5wei", "not a whole number of wei"),
                                       ("0.0000000000000000001", "not a whole number of wei")])
def test_bad_amounts_are_refused(text, why):
    with pytest.raises(ConfigError, match=why):
        parse_wei(text)


@pytest.mark.parametrize("args, message", [
    (["--amount", "lots"], "--amount 'lots' is not an amount"),
    (["--amount", "1", "--key", "0x1234"], "--key is not a private key (64 hex digits, optionally after 0x)"),
    (["--amount", "1", "--key", "0x" + "00" * 32], "--key is not a valid secp256k1 private key"),
    (["--amount", "1", "--key", "0x" + "ff" * 32], "--key is not a valid secp256k1 private key"),
    (["--amount", "1", "--mnemonic", "not a mnemonic at all"], "cannot derive account 0 from the mnemonic"),
    (["--amount", "1", "--data", "0xzz"], "--data '0xzz' is not 0x-hex"),
    (["--amount", "1", "--task", "-3"], "--task -3: task ids are not negative"),
])
def test_mistakes_are_one_line_errors_before_anything_is_sent(args, message, capsys):
    assert dispatch(build_parser().parse_args(["console", "ether", "deposit", *args]), "fedrollup") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fedrollup: error: ") and message in err[0], err


def test_the_standalone_console_has_it_too(capsys):
    assert frontend_console(["ether", "deposit", "--amount", "0"]) == 2
    assert "a deposit must be more than 0" in capsys.readouterr().err


def test_a_task_and_raw_data_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["console", "ether", "deposit", "--amount", "1", "--task", "1", "--data", "0x"])
    assert "not allowed with argument" in capsys.readouterr().err
