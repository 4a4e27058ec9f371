"""Property tests (Hypothesis): random and mutated inputs never crash the state machine, rejects leave the
state unchanged, no wei is created or lost, and replaying the accepted inputs reproduces identical outputs."""
from __future__ import annotations

import copy

from dapp_fixtures import (PORTAL, PUBLISHER, STRANGER, Chain, band_model, chunks, contest, create_task, receipt,
                           report, trainer, update_of, validator, validator_model)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dapp import qmodel
from dapp.portal import encode_ether_deposit
from dapp.schema import (CancelTask, Challenge, Contest, CreateTask, ModelChunk, Register, RoundClose, TestSetChunk,
                         ValidatorReport, Withdraw, Withdrawal, encode_deposit_data, pack_contribution)
from dapp.state import Advance, Notice, Rejected, State, Voucher, apply

PEOPLE = [PUBLISHER, STRANGER, validator(0), validator(1)] + [trainer(g, i) for g in range(2) for i in range(2)]
senders = st.sampled_from(PEOPLE)
task_ids = st.integers(1, 2)
rounds = st.integers(0, 3)
bps = st.one_of(st.integers(0, 10_000), st.integers(0, 0xFFFF))
wei = st.integers(0, 5 * 10**15)
words = st.builds(pack_contribution, st.sampled_from(PEOPLE), bps, st.integers(0, 10**6))

digests = st.binary(min_size=32, max_size=32)
messages = st.one_of(
    st.builds(CreateTask, st.integers(0, 10_000), st.integers(0, 3), st.integers(0, 3), wei, wei, wei,
              st.lists(st.sampled_from(PEOPLE), max_size=3).map(tuple), digests, st.integers(0, 40),
              st.integers(0, 5), st.integers(0, 3), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)),
    st.builds(CancelTask, task_ids),
    st.builds(Register, task_ids, st.integers(0, 2), st.integers(0, 2)),
    st.builds(TestSetChunk, task_ids, st.integers(0, 2), st.integers(0, 2), st.binary(max_size=64)),
    st.builds(ValidatorReport, task_ids, rounds, bps, digests, st.lists(words, max_size=4).map(tuple),
              st.lists(digests, max_size=4).map(tuple), st.lists(digests, max_size=4).map(tuple),
              st.lists(digests, max_size=4).map(tuple)),
    st.builds(ModelChunk, task_ids, rounds, digests, st.integers(0, 2), st.integers(0, 2), st.binary(max_size=64)),
    st.builds(Contest, task_ids, rounds, digests, st.integers(0, 10**6), digests, digests),
    st.builds(Challenge, task_ids, rounds, st.sampled_from(PEOPLE)),
    st.builds(RoundClose, task_ids, rounds),
    st.just(Withdraw()),
)
MINE = ""  # a "sender" that lets blocks pass instead of sending an input (payload: how many)
models = st.sampled_from([band_model(), band_model(dead=(1,)), band_model(dead=(2, 3), salt=5), b"FRQ1 junk"])


def reveal(sender: str, round_: int, blob: bytes) -> tuple[str, bytes]:
    (part,) = chunks(blob)
    return sender, ModelChunk(1, round_, qmodel.digest(blob), 0, 1, part).encode()


@st.composite
def plausible_round_inputs(draw) -> tuple[str, bytes]:
    """Signed reports, reveals, contests, challenges and closes for task 1 of the setup, often valid, so that the
    reward, penalty and dispute paths are exercised."""
    round_ = draw(st.integers(1, 2))
    g = draw(st.integers(0, 1))
    kind = draw(st.sampled_from(["report", "reveal", "contest", "challenge", "update", "close"]))
    if kind == "report":
        team = draw(st.lists(st.sampled_from([trainer(g, 0), trainer(g, 1)]), max_size=2, unique=True))
        scores = {t: draw(bps) for t in team}
        return validator(g), report(1, round_, draw(bps), scores, model=draw(models)).encode()
    if kind == "reveal":
        return reveal(draw(st.sampled_from(PEOPLE)), round_, draw(models))
    t = trainer(g, draw(st.integers(0, 1)))
    if kind == "contest":
        update = update_of(t, round_)
        signature = receipt(g, t, 1, round_, qmodel.digest(update), 600) if draw(st.booleans()) else bytes(64)
        return t, contest(1, round_, t, update, 600, signature).encode()
    if kind == "challenge":
        return PUBLISHER, Challenge(1, round_, t).encode()
    if kind == "update":
        return reveal(draw(st.sampled_from(PEOPLE)), round_, update_of(t, round_))
    return draw(st.sampled_from([PUBLISHER, validator(0), validator(1)])), RoundClose(1, round_).encode()


@st.composite
def whole_rounds(draw) -> list[tuple[str, bytes]]:
    """Both groups' reports, their reveals, blocks passing, then a close for one round of task 1: a round often
    played in full."""
    round_ = draw(st.integers(1, 2))
    block = []
    for g in (0, 1):
        scores = {trainer(g, i): draw(bps) for i in (0, 1)}
        block.append((validator(g), report(1, round_, draw(bps), scores, samples=100,
                                           model=validator_model(g, round_)).encode()))
    block += [reveal(validator(g), round_, validator_model(g, round_)) for g in (0, 1) if draw(st.booleans())]
    block.append((MINE, bytes([draw(st.integers(0, 12))])))
    sender = draw(st.sampled_from([PUBLISHER, validator(0), validator(1)]))
    block.append((sender, RoundClose(1, round_).encode()))
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
        if sender == MINE:
            chain.mine(payload[0])
            continue
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
