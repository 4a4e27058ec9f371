"""Helpers for the dapp tests: named addresses, a tiny 'chain' that feeds the state machine, task setup."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from dapp.portal import CANONICAL_ETHER_PORTAL, encode_ether_deposit
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, Message, Register, RoundClose,
                         ValidatorReport, encode_deposit_data, normalize_address, pack_contribution)
from dapp.state import Accepted, Advance, Notice, Rejected, State, apply

PORTAL = normalize_address(CANONICAL_ETHER_PORTAL)
ETH = 10**18
MILLI = 10**15


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


PUBLISHER = addr(0xA11CE)
STRANGER = addr(0xBAD)


def validator(group: int) -> str:
    return addr(0x7A110 + group)


def trainer(group: int, i: int) -> str:
    return addr(0x100 * (group + 1) + i)


@dataclass
class Chain:
    """Feeds inputs to `apply` in order, like the rollup does, and keeps every accepted output."""

    state: State = field(default_factory=State)
    index: int = 0
    notices: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    timestamp: int = 1_700_000_000
    prev_randao: bytes = bytes(32)

    def advance(self, sender: str, payload: bytes | Message) -> Advance:
        if isinstance(payload, Message):
            payload = payload.encode()
        adv = Advance(msg_sender=sender, payload=payload, input_index=self.index,
                      block_number=10 + self.index, block_timestamp=self.timestamp + 12 * self.index,
                      prev_randao=self.prev_randao)
        self.index += 1
        return adv

    def send(self, sender: str, payload: bytes | Message) -> Accepted:
        result = apply(self.state, self.advance(sender, payload), PORTAL)
        self.state = result.state
        self.outputs.extend(result.outputs)
        self.notices.extend(o.message for o in result.outputs if isinstance(o, Notice))
        return result

    def reject(self, sender: str, payload: bytes | Message) -> str:
        """Send an input that must be rejected; assert the state is untouched and return the reason."""
        before = copy.deepcopy(self.state)
        try:
            apply(self.state, self.advance(sender, payload), PORTAL)
        except Rejected as err:
            assert self.state == before, "a rejected input changed the state"
            return err.reason
        raise AssertionError("input was accepted but should have been rejected")

    def deposit(self, sender: str, value: int, data: bytes = b"") -> Accepted:
        return self.send(PORTAL, encode_ether_deposit(sender, value, data))

    def of_type(self, cls: type) -> list:
        return [n for n in self.notices if isinstance(n, cls)]


def create_task(chain: Chain, task_id: int = 1, groups: int = 2, rounds: int = 3, mad_bps: int = 2500,
                budget: int = 10 * MILLI, per_positive: int = 2 * MILLI, validator_reward: int = 1 * MILLI,
                trainers_per_group: int = 3, fund: bool = True) -> None:
    """Publish, fund (exactly the required escrow) and register one validator and N trainers per group."""
    chain.send(PUBLISHER, CreateTask(task_id, mad_bps, rounds, groups, budget, per_positive, validator_reward))
    if fund:
        chain.deposit(PUBLISHER, rounds * (budget + validator_reward), encode_deposit_data(task_id))
    for g in range(groups):
        chain.send(validator(g), Register(task_id, ROLE_VALIDATOR, g))
        for i in range(trainers_per_group):
            chain.send(trainer(g, i), Register(task_id, ROLE_TRAINER, g))


def report(task_id: int, round_: int, validator_bps: int, scores: dict[str, int],
           samples: int = 600) -> ValidatorReport:
    words = tuple(pack_contribution(t, bps, samples) for t, bps in scores.items())
    return ValidatorReport(task_id, round_, validator_bps, bytes([round_]) * 32, words)


def close(task_id: int, round_: int, global_bps: int, group_bps: list[int]) -> RoundClose:
    return RoundClose(task_id, round_, bytes([0xC0 + round_]) * 32, global_bps, tuple(group_bps))


def play_round(chain: Chain, task_id: int, round_: int, producer: str, groups: int = 2,
               trainers_per_group: int = 3, validator_bps: int = 9000, trainer_bps: int = 8800,
               global_bps: int = 9100, group_bps: list[int] | None = None) -> None:
    """Every validator reports all its trainers at the same accuracy; the producer closes the round."""
    for g in range(groups):
        scores = {trainer(g, i): trainer_bps for i in range(trainers_per_group)}
        chain.send(validator(g), report(task_id, round_, validator_bps, scores))
    chain.send(producer, close(task_id, round_, global_bps, group_bps or [9000 + g for g in range(groups)]))
