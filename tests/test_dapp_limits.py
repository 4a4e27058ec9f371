"""A task at the largest size the rules allow (groups x trainers_per_group = 10,000, 2,000 per group) keeps every
input within the InputBox's limit and every output within a Cartesi Machine's, and no input takes long.
The figures per input type are measured by `benchmarks.dapp_scale` (docs/benchmarks.md)."""
from __future__ import annotations

import time

import pytest
from dapp_fixtures import MILLI, PORTAL, PUBLISHER, Chain, addr, close, report, task_message, validator

from dapp.schema import (MAX_INPUT_PAYLOAD, MAX_OUTPUT_BYTES, MAX_OUTPUTS_PER_INPUT, MAX_TASK_TRAINERS,
                         MAX_TRAINERS_PER_GROUP, ROLE_TRAINER, ROLE_VALIDATOR, Message, Register,
                         TrainerStakes, Withdraw, encode_deposit_data)
from dapp.portal import encode_ether_deposit
from dapp.state import Notice, Voucher
from rollups_node.outputs import encode_notice, encode_voucher
from rollups_node.rollup_http_schema import MAX_OUTPUTS, TX_BUFFER_BYTES

GROUPS = MAX_TASK_TRAINERS // MAX_TRAINERS_PER_GROUP  # 5 full groups
# Measured on the shared 2-core machine: every input < 0.16 s at 10,000 trainers (benchmarks.dapp_scale). The
# test allows 10x that; anything quadratic in the participants would take seconds per input here.
INPUT_BOUND_S = 1.6


def trainer(group: int, i: int) -> str:
    return addr(0x100000 + group * MAX_TRAINERS_PER_GROUP + i)


class Limits:
    """Sends inputs, checking each against the limits and timing it."""

    def __init__(self) -> None:
        self.chain, self.slowest = Chain(), (0.0, "")

    def send(self, sender: str, message: Message | bytes) -> None:
        payload = message.encode() if isinstance(message, Message) else message
        assert len(payload) <= MAX_INPUT_PAYLOAD
        start = time.perf_counter()
        result = self.chain.send(sender, payload)
        encoded = [encode_notice(o.payload) if isinstance(o, Notice) else
                   encode_voucher(o.destination, o.value, o.payload)
                   for o in result.outputs if isinstance(o, (Notice, Voucher))]
        seconds = time.perf_counter() - start
        name = type(message).__name__ if isinstance(message, Message) else "a deposit"
        self.slowest = max(self.slowest, (seconds, name))
        assert len(result.outputs) <= MAX_OUTPUTS_PER_INPUT
        assert max(map(len, encoded), default=0) <= MAX_OUTPUT_BYTES


def test_the_backends_limits_are_the_nodes():
    assert MAX_OUTPUTS_PER_INPUT == MAX_OUTPUTS and MAX_OUTPUT_BYTES == TX_BUFFER_BYTES


@pytest.mark.slow  # 10,000 registrations and 20,000 notices: seconds
def test_a_task_of_10000_trainers_fits_the_machine_and_no_input_is_slow():
    run = Limits()
    rounds, budget, reward = 1, GROUPS * MAX_TRAINERS_PER_GROUP * 2 * MILLI, 1 * MILLI
    run.send(PUBLISHER, task_message(1, rounds=rounds, groups=GROUPS, budget=budget, per_positive=2 * MILLI,
                                     validator_reward=reward, trainers_per_group=MAX_TRAINERS_PER_GROUP,
                                     registration_blocks=MAX_TASK_TRAINERS + 100))
    for g in range(GROUPS):
        run.send(validator(g), Register(1, ROLE_VALIDATOR, g))
        for i in range(MAX_TRAINERS_PER_GROUP):
            run.send(trainer(g, i), Register(1, ROLE_TRAINER, g))
    run.send(PORTAL, encode_ether_deposit(PUBLISHER, rounds * (budget + reward), encode_deposit_data(1)))
    for g in range(GROUPS):  # every trainer Positive and paid: the most outputs a report can have
        scores = {trainer(g, i): 8000 + i % 1500 for i in range(MAX_TRAINERS_PER_GROUP)}
        run.send(validator(g), report(1, 1, 9000, scores))
    run.send(PUBLISHER, close(1, 1, 9100, [9000 + g for g in range(GROUPS)]))
    run.send(trainer(0, 0), Withdraw())
    pages = run.chain.of_type(TrainerStakes)
    assert sum(len(p.trainers) for p in pages) == MAX_TASK_TRAINERS and len(pages) == 10
    assert run.slowest[0] < INPUT_BOUND_S, f"{run.slowest[1]} took {run.slowest[0]:.2f} s"
