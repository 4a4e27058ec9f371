"""Property tests (Hypothesis): random and mutated inputs never crash the state machine, rejects leave the
state unchanged, no wei is created or lost, and replaying the accepted inputs reproduces identical outputs."""
from __future__ import annotations

import copy

from dapp_fixtures import PORTAL, PUBLISHER, STRANGER, Chain, create_task, trainer, validator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dapp.portal import encode_ether_deposit
from dapp.schema import (CancelTask, CreateTask, Register, RoundClose, ValidatorReport, Withdraw, Withdrawal,
                         encode_deposit_data, pack_contribution)
from dapp.state import Advance, Notice, Rejected, State, Voucher, apply

PEOPLE = [PUBLISHER, STRANGER, validator(0), validator(1)] + [trainer(g, i) for g in range(2) for i in range(2)]
senders = st.sampled_from(PEOPLE)
task_ids = st.integers(1, 2)
rounds = st.integers(0, 3)
bps = st.one_of(st.integers(0, 10_000), st.integers(0, 0xFFFF))
wei = st.integers(0, 5 * 10**15)
words = st.builds(pack_contribution, st.sampled_from(PEOPLE), bps, st.integers(0, 10**6))

messages = st.one_of(
    st.builds(CreateTask, st.integers(0, 10_000), st.integers(0, 3), st.integers(0, 3), wei, wei, wei,
              st.lists(st.sampled_from(PEOPLE), max_size=3).map(tuple), st.integers(0, 3), st.integers(0, 20),
              st.integers(0, 20), st.integers(0, 20)),
    st.builds(CancelTask, task_ids),
    st.builds(Register, task_ids, st.integers(0, 2), st.integers(0, 2)),
    st.builds(ValidatorReport, task_ids, rounds, bps, st.binary(min_size=32, max_size=32),
              st.lists(words, max_size=4).map(tuple)),
    st.builds(RoundClose, task_ids, rounds, st.binary(min_size=32, max_size=32), bps,
              st.lists(bps, max_size=3).map(tuple)),
    st.just(Withdraw()),
)


@st.composite
def plausible_round_inputs(draw) -> tuple[str, bytes]:
    """Reports and closes for task 1 of the setup, often valid, so the reward paths are exercised."""
    round_ = draw(st.integers(1, 2))
    if draw(st.booleans()):
        g = draw(st.integers(0, 1))
        team = draw(st.lists(st.sampled_from([trainer(g, 0), trainer(g, 1)]), max_size=2, unique=True))
        contributions = tuple(pack_contribution(t, draw(bps), draw(st.integers(1, 1000))) for t in team)
        return validator(g), ValidatorReport(1, round_, draw(bps), bytes(32), contributions).encode()
    sender = draw(st.sampled_from([PUBLISHER, validator(0), validator(1)]))
    accs = draw(st.lists(st.integers(0, 10_000), min_size=2, max_size=2))
    return sender, RoundClose(1, round_, bytes(32), draw(st.integers(0, 10_000)), tuple(accs)).encode()


@st.composite
def whole_rounds(draw) -> list[tuple[str, bytes]]:
    """Both groups' reports then a close for one round of task 1: a round often played in full."""
    round_ = draw(st.integers(1, 2))
    block = []
    for g in (0, 1):
        contributions = tuple(pack_contribution(trainer(g, i), draw(bps), 100) for i in (0, 1))
        block.append((validator(g), ValidatorReport(1, round_, draw(bps), bytes(32), contributions).encode()))
    sender = draw(st.sampled_from([PUBLISHER, validator(0), validator(1)]))
    accs = tuple(draw(st.integers(0, 10_000)) for _ in (0, 1))
    block.append((sender, RoundClose(1, round_, bytes(32), draw(st.integers(0, 10_000)), accs).encode()))
    return block


def mutations(payload: bytes) -> st.SearchStrategy[bytes]:
    """Truncate, flip one byte, or append bytes to a well-formed payload."""
    n = len(payload)
    return st.one_of(
        st.integers(0, n - 1).map(lambda k: payload[:k]),
        st.tuples(st.integers(0, n - 1), st.integers(1, 255)).map(
            lambda t: payload[:t[0]] + bytes([payload[t[0]] ^ t[1]]) + payload[t[0] + 1:]),
        st.binary(min_size=1, max_size=33).map(lambda extra: payload + extra),
    )


deposit_data = st.one_of(st.just(b""), task_ids.map(encode_deposit_data), st.binary(max_size=40))
inputs = st.one_of(
    plausible_round_inputs(),
    plausible_round_inputs(),
    st.tuples(senders, messages.map(lambda m: m.encode())),
    st.tuples(senders, messages.map(lambda m: m.encode()).flatmap(mutations)),
    st.tuples(st.just(PORTAL), st.builds(encode_ether_deposit, senders, wei, deposit_data)),
    st.tuples(st.sampled_from(PEOPLE + [PORTAL]), st.binary(max_size=80)),
)


def wei_held(state: State) -> int:
    return sum(state.balances.values()) + sum(t.escrow for t in state.tasks.values())


def encoded(outputs) -> list[tuple]:
    return [(type(o).__name__, o.payload, getattr(o, "destination", None), getattr(o, "value", None))
            for o in outputs]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.booleans(),
       sequence=st.lists(st.one_of(inputs.map(lambda x: [x]), whole_rounds()), max_size=20).map(
           lambda blocks: [x for block in blocks for x in block]),
       randao=st.binary(min_size=32, max_size=32))
def test_random_inputs_never_crash_and_rejects_change_nothing(setup, sequence, randao):
    chain = Chain(prev_randao=randao)
    if setup:  # a funded, staffed task, so that reports and closes can be accepted too
        create_task(chain, rounds=2, trainers_per_group=2)
    start = copy.deepcopy(chain.state)
    deposited = withdrawn = 0
    accepted: list[tuple[Advance, list]] = []
    for sender, payload in sequence:
        adv = chain.advance(sender, payload)
        before = copy.deepcopy(chain.state)
        try:
            result = apply(chain.state, adv, PORTAL)
        except Rejected:
            assert chain.state == before
            continue
        chain.state = result.state
        event(f"accepted: {result.summary.split(' ')[0]}")
        accepted.append((adv, encoded(result.outputs)))
        if sender == PORTAL:
            deposited += int.from_bytes(payload[20:52], "big")
        withdrawn += sum(o.value for o in result.outputs if isinstance(o, Voucher))
        assert all(o.message.amount == o_v.value for o, o_v in zip(
            [o for o in result.outputs if isinstance(o, Notice) and isinstance(o.message, Withdrawal)],
            [o for o in result.outputs if isinstance(o, Voucher)]))
        assert wei_held(chain.state) == wei_held(start) + deposited - withdrawn, "wei created or lost"

    replay = start
    for adv, outputs in accepted:
        result = apply(replay, adv, PORTAL)
        assert encoded(result.outputs) == outputs, "replay produced different outputs"
        replay = result.state
    assert replay == chain.state
