"""`fedrollup demo --tasks N` (fedrollup/market.py) without a chain: each publisher's process gets keys no other
uses (a key sending from two processes would collide on nonces) and a seed of its own; the options are checked
before anything starts (the run itself: README, measured in docs/benchmarks.md; on anvil: test_market_on_chain)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from dapp_fixtures import (MILLI, PUBLISHER, Chain, addr, close_when_due, create_task, post_blob, report, trainer,
                           validator, validator_model)

from common import accounts
from common.errors import ConfigError
from dapp.inspect_routes import InspectError, answer
from dapp.schema import AdmitTrainers, decode_input
from fedrollup.cli import build_parser
from fedrollup.cli import console as console_cli
from fedrollup.cli.entry import dispatch
from fedrollup.cli.demo import demo_config
from fedrollup.market import market_tasks
from flower_sim.config import SimulationConfig


def role_indices(offset: int, cfg: SimulationConfig, monkeypatch) -> set[int]:
    """The account indices a publisher's process signs with, under its role offset."""
    monkeypatch.setenv(accounts.ROLE_OFFSET_ENV, str(offset))
    return {accounts.manager_index(), *(accounts.validator_index(g) for g in range(cfg.validators)),
            *(accounts.trainer_index(t, cfg.validators) for t in range(cfg.trainers))}


def test_each_publisher_signs_with_keys_no_other_publisher_uses_and_trains_on_its_own_seed(monkeypatch):
    cfg = SimulationConfig(rounds=2, trainers=5, validators=2, seed=7)
    plan = market_tasks(cfg, 3, Path("out"))
    used = [role_indices(t.role_offset, t.simulation, monkeypatch) for t in plan]
    assert all(len(u) == 1 + 2 + 5 for u in used)
    assert not (used[0] & used[1]) and not (used[1] & used[2]) and not (used[0] & used[2])
    assert accounts.OWNER_INDEX not in set().union(*used)
    assert [t.simulation.seed for t in plan] == [7, 8, 9] and [t.out for t in plan] == [
        Path("out/task-1"), Path("out/task-2"), Path("out/task-3")]
    monkeypatch.delenv(accounts.ROLE_OFFSET_ENV)
    assert used[0] == role_indices(0, cfg, monkeypatch)  # the first publisher is the single demo's layout


def test_the_broker_is_no_role_of_any_publisher():
    roles = {accounts.address(i) for i in range(40)}  # the owner and 3 publishers of 12 roles each
    assert accounts.broker_address() not in roles


@pytest.mark.parametrize("args, words", [
    (["--tasks", "0"], "--tasks must be in 1..4"),
    (["--tasks", "5"], "--tasks must be in 1..4"),
    (["--tasks", "2", "--broker-fee-bps", "10001"], "--broker-fee-bps must be in 0..10000"),
    (["--tasks", "2", "--silent-validator", "0"], "run them with --tasks 1"),
])
def test_a_bad_market_option_is_a_one_line_error(args, words, tmp_path):
    with pytest.raises(ConfigError, match=words):
        demo_config(build_parser().parse_args(["demo", "--out", str(tmp_path / "run"), *args]))


def test_two_tasks_and_the_fee_reach_the_demo_config(tmp_path):
    config = demo_config(build_parser().parse_args(["demo", "--out", str(tmp_path / "run"), "--tasks", "2",
                                                    "--broker-fee-bps", "150"]))
    assert (config.tasks, config.broker_fee_bps) == (2, 150)


@dataclass
class _Answer:
    status: str
    reports: list[bytes]


class _Node:
    """The node as the console sees it, answering inspects from a state machine's state."""

    def __init__(self, state) -> None:
        self.state = state

    def inspect(self, path: bytes) -> _Answer:
        try:
            return _Answer("Accepted", [json.dumps(answer(self.state, path.decode())).encode()])
        except InspectError as err:
            return _Answer("Rejected", [json.dumps({"error": str(err)}).encode()])


class _L1:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def add_input(self, key: str, payload: bytes) -> int:
        self.sent.append((key, payload))
        return 7


def test_console_admit_seats_the_top_kappa_applicants_by_reputation(monkeypatch, capsys):
    chain = Chain()
    create_task(chain, rounds=2, contest_blocks=20, per_positive=MILLI)
    chain.send(validator(0), report(1, 1, 9000, {trainer(0, 0): 8800, trainer(0, 1): 1000, trainer(0, 2): 8800},
                                    model=validator_model(0, 1)))
    chain.send(validator(1), report(1, 1, 9000, {trainer(1, i): 8800 for i in range(3)}, model=validator_model(1, 1)))
    for g in (0, 1):
        post_blob(chain, validator(g), 1, 1, validator_model(g, 1))
    close_when_due(chain, 1, 1, PUBLISHER)
    l1 = _L1()
    monkeypatch.setattr(console_cli, "_l1", lambda args: (l1, _Node(chain.state)))
    key = accounts.private_key(3)
    applicants = [trainer(0, 1), addr(0xFACE), trainer(1, 2), trainer(0, 0)]
    args = build_parser().parse_args(["console", "admit", "--task", "2", "--group", "1", "--top", "2", "--key", key,
                                      *applicants])
    assert dispatch(args, "fedrollup") == 0
    ((sender, payload),) = l1.sent
    assert sender == key
    assert decode_input(payload) == AdmitTrainers(2, 1, tuple(sorted([trainer(0, 0), trainer(1, 2)])))
    out = capsys.readouterr().out
    assert "applicants by on-chain reputation" in out and "input 7 added" in out
    bad = build_parser().parse_args(["console", "admit", "--task", "2", "--top", "1", "--key", key, "nobody"])
    assert dispatch(bad, "fedrollup") == 2 and "an applicant is not an address" in capsys.readouterr().err
