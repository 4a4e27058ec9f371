"""A round's contest window carries a contest from every trainer of the round: at 1,000 trainers (100 a round, the
MLP model) the runs' two 1-s blocks carried ~12 of 100 honest contests and refused the others as late. The window is
sized from L1's gas (`rollups_client.l1_capacity`), whose bound is checked against what anvil charges."""
from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
from node_fixtures import fresh_deployment, running_anvil
from rollup_fakes import CFG, TERMS, FakeRollup, recorder_on

from contracts_config.deploy import ANVIL_KEY_0
from dapp.qmodel import arch_named
from dapp.schema import CHUNK_DATA, MAX_OPEN_ROUNDS, ModelChunk
from rollups_client import l1_capacity
from rollups_client.l1 import L1

GAS_LIMIT = 30_000_000  # anvil's default block gas limit
MLP, CNN = arch_named("mlp"), arch_named("cnn")


@pytest.mark.parametrize("arch", [MLP, CNN, arch_named("qos")])
@pytest.mark.parametrize("trainers", [1, 20, 100, 500])
def test_the_sized_window_carries_every_trainers_contest_and_one_block_less_does_not(arch, trainers):
    blocks = l1_capacity.contest_blocks(arch, trainers, 2, GAS_LIMIT)
    assert l1_capacity.contests_carried(arch, blocks, 2, GAS_LIMIT) >= trainers
    if blocks > 1:
        assert l1_capacity.contests_carried(arch, blocks - 1, 2, GAS_LIMIT) < trainers


def test_the_1000_trainer_runs_window_was_far_too_short_and_the_demos_is_not():
    assert l1_capacity.contests_carried(MLP, 2, 2, GAS_LIMIT) < 20  # the run that refused most contests
    assert l1_capacity.contest_blocks(MLP, 100, 2, GAS_LIMIT) == 15
    assert l1_capacity.contest_blocks(CNN, 20, 2, GAS_LIMIT) <= 2  # the demo's 20 trainers keep their 2 blocks
    assert l1_capacity.contest_blocks(MLP, 100, 2, GAS_LIMIT, fill=0.5) == 29  # a shared public chain's blocks


def sized(monkeypatch, contest_blocks: int | None, **cfg) -> tuple[int, list[str]]:
    recorder, said = recorder_on(FakeRollup(), monkeypatch, None, terms=replace(TERMS, contest_blocks=contest_blocks),
                                 cfg=replace(CFG, **cfg))
    return recorder._contest_blocks(), said


def test_a_run_sizes_its_window_for_the_trainers_it_samples_a_round_and_says_so(monkeypatch):
    blocks, said = sized(monkeypatch, None, trainers=1000, validators=2, fraction_train=0.1, model="mlp")
    assert blocks == 15
    assert said == ["each round's contest window lasts 15 L1 blocks: what carries a contest from each of the round's "
                    "100 trainers at L1's gas limit"]
    assert sized(monkeypatch, None, trainers=4, validators=2, model="logreg") == (2, [])  # the runs' minimum


def test_a_window_set_too_short_is_kept_with_a_warning_saying_how_many_could_contest(monkeypatch):
    blocks, said = sized(monkeypatch, 2, trainers=1000, validators=2, fraction_train=0.1, model="mlp")
    assert blocks == 2
    assert len(said) == 1 and said[0].startswith("warning: a contest window of 2 L1 blocks carries 12 of the 100 ")
    assert sized(monkeypatch, 20, trainers=1000, validators=2, fraction_train=0.1, model="mlp") == (20, [])


@pytest.mark.slow
def test_the_gas_bound_holds_for_what_anvil_charges_and_is_within_1_percent_for_a_full_chunk():
    with running_anvil(block_time=None) as chain:
        l1 = L1(chain, fresh_deployment(chain))
        for size in (0, 40, 1_332, 4_000, CHUNK_DATA):  # the application's first input (cold), …, a full model chunk
            payload = ModelChunk(1, 1, bytes(32), 0, 1, os.urandom(size)).encode()
            used = l1.receipt(l1.send_input(ANVIL_KEY_0, payload))["gasUsed"]
            assert used <= l1_capacity.input_gas(len(payload)), size
        assert used >= 0.99 * l1_capacity.input_gas(len(payload))  # the full chunk: EIP-7623's floor price


# Rounds open at once: at 12-s blocks the runs' 8 left a quarter of each round waiting for L1 (benchmarks.e2e, 24
# rounds); K = 24 none. A run sizes K from L1's block time unless its terms give one.

def test_slow_blocks_open_more_rounds_bounded_by_the_rounds_and_the_rollup():
    assert l1_capacity.open_rounds(1.0, 2, 100, minimum=8) == 8  # 1-s blocks: the runs' least, measured enough
    assert l1_capacity.open_rounds(12.0, 2, 100, minimum=8) == 24  # what kept 24 rounds at 12-s blocks off L1's clock
    assert l1_capacity.open_rounds(12.0, 5, 100, minimum=8) == 39  # a longer contest window: the close lands later
    assert l1_capacity.open_rounds(12.0, 2, 10, minimum=8) == 9  # round 1's close still elects round 10's producer
    assert l1_capacity.open_rounds(60.0, 2, 1000, minimum=8) == MAX_OPEN_ROUNDS
    assert l1_capacity.open_rounds(1.0, 2, 1, minimum=8) == 1  # a one-round task


def opened(monkeypatch, seconds_per_block: float, rounds: int, **terms) -> tuple[int, list[str]]:
    rollup = FakeRollup()
    rollup.seconds_per_block = seconds_per_block
    sized_terms = replace(TERMS, **{"open_rounds": None, "contest_blocks": None, **terms})  # None: the run sizes them
    recorder, said = recorder_on(rollup, monkeypatch, None, terms=sized_terms)
    recorder.open_task(rounds)
    return rollup.chain.state.tasks[recorder.task_id].open_rounds, [s for s in said if "rounds open" in s]


def test_a_run_on_slow_blocks_keeps_more_rounds_open_and_says_why(monkeypatch):
    assert opened(monkeypatch, 12.0, 30) == (24, ["the task keeps 24 rounds open at once: L1's 12-s blocks make a "
                                                  "round's close land ~60 s after its reports"])
    assert opened(monkeypatch, 1.0, 30) == (8, [])  # 1-s blocks: the runs' 8, nothing to say
    assert opened(monkeypatch, 12.0, 3) == (2, [])  # at most rounds - 1: round 1's close elects round 3's producer
    assert opened(monkeypatch, 12.0, 30, open_rounds=1) == (1, [])  # the terms' own K is the task's


@pytest.mark.slow
def test_l1s_block_time_is_read_from_its_blocks_timestamps():
    with running_anvil(block_time=0.25) as chain:
        l1 = L1(chain, fresh_deployment(chain))
        while l1.block_number() < 18:
            time.sleep(0.25)
        assert 0.2 <= l1.block_time() <= 0.32
