"""Benchmark: how fast the rollup backend processes FL rounds, and how big each input is.

Workload: one task, 2 groups x 10 trainers (20 trainers), the demo's CNN scored on a public test set of
--test-images seeded images; every round = 2 ValidatorReports (10 packed contributions each, about one in five
Negative, each signed by its trainer: 10 signatures checked per report), 2 ModelChunks revealing the validators'
models (each scored by the rollup), 1 RoundClose by the elected producer (the rollup averages the two models and
scores the mean). Measured:
  1. the state machine alone (`dapp.state.apply`, in process): the baseline;
  2. the whole backend through the rollup HTTP API: `python -m dapp` as a child process driven by the
     host-mode node's rollup HTTP server (`rollups_node.machine.HostMachine`), as the node runs it;
  3. the byte size of every input type for 10 trainers per validator (a signed report: 128 bytes per trainer).
Run: .venv/bin/python -m benchmarks.dapp_throughput [--rounds 100] [--http-rounds 30] [--repeats 5]
     [--test-images 200]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

from dapp import qmodel
from dapp.advance_request import encode_advance
from dapp.eip712 import Domain
from dapp.portal import CANONICAL_ETHER_PORTAL, encode_ether_deposit
from dapp.schema import (MAX_INPUT_PAYLOAD, ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, Register, RoundClose,
                         ValidatorReport, Withdraw, encode_deposit_data, normalize_address)
from dapp.state import Advance, Notice, State, apply
from rollups_node.machine import HostMachine

from benchmarks.rollup_inputs import model, model_chunks, public_test_set, set_chunks, signed_report, signer

PORTAL = normalize_address(CANONICAL_ETHER_PORTAL)
GROUPS, TRAINERS_PER_GROUP = 2, 10
MILLI = 10**15
CHAIN_ID, APP = 31337, "0x" + "0a99" * 10  # the dev chain's Application: every advance carries them
DOMAIN = Domain(CHAIN_ID, APP)
CNN = qmodel.arch_named("cnn").id
CONTEST_BLOCKS = 2  # the two reveals fit; the close comes the block after


def address(n: int) -> str:
    return "0x" + f"{n:040x}"


PUBLISHER = address(0xA11CE)
VALIDATORS = [signer(f"validator {g}").address for g in range(GROUPS)]
TRAINERS = [[signer(f"trainer {g} {i}") for i in range(TRAINERS_PER_GROUP)] for g in range(GROUPS)]


def validator_model(round_: int, group: int) -> bytes:
    return model(CNN, 1_000 * round_ + group)


def validator_report(round_: int, group: int) -> ValidatorReport:
    scores = [(t, 5000 if (i + round_) % 5 == 0 else 8800 + i) for i, t in enumerate(TRAINERS[group])]
    return signed_report(DOMAIN, 1, round_, group, 9000, validator_model(round_, group), scores)


def create_task(rounds: int, test_set: bytes) -> CreateTask:
    return CreateTask(2500, rounds, GROUPS, 20 * MILLI, 1 * MILLI, 2 * MILLI, tuple(VALIDATORS),
                      qmodel.digest(test_set), len(test_set) // (1 + 784), CNN, TRAINERS_PER_GROUP,
                      contest_blocks=CONTEST_BLOCKS)


def build_workload(rounds: int, test_images: int) -> tuple[list[Advance], list[Advance]]:
    """(setup inputs, round inputs), with each round closed by the producer the rollup elected."""
    advances: list[Advance] = []

    def add(sender: str, payload: bytes) -> Advance:
        adv = Advance(sender, payload, input_index=len(advances), block_number=100 + len(advances),
                      block_timestamp=1_700_000_000 + 12 * len(advances),
                      prev_randao=len(advances).to_bytes(32, "big"), chain_id=CHAIN_ID, app_contract=APP)
        advances.append(adv)
        return adv

    test_set = public_test_set(test_images)
    created = create_task(rounds, test_set)
    add(PUBLISHER, created.encode())
    for chunk in set_chunks(1, test_set):
        add(PUBLISHER, chunk.encode())
    escrow = rounds * (created.round_trainer_budget + created.validator_reward)
    add(PORTAL, encode_ether_deposit(PUBLISHER, escrow, encode_deposit_data(1)))
    for g in range(GROUPS):
        add(VALIDATORS[g], Register(1, ROLE_VALIDATOR, g).encode())
        for t in TRAINERS[g]:
            add(t.address, Register(1, ROLE_TRAINER, g).encode())
    state = State()
    for adv in advances:
        state = apply(state, adv, PORTAL).state
    setup = len(advances)
    for r in range(1, rounds + 1):
        for g in range(GROUPS):
            state = apply(state, add(VALIDATORS[g], validator_report(r, g).encode()), PORTAL).state
        for g in range(GROUPS):
            for chunk in model_chunks(1, r, validator_model(r, g)):
                state = apply(state, add(VALIDATORS[g], chunk.encode()), PORTAL).state
        state = apply(state, add(state.tasks[1].producer, RoundClose(1, r).encode()), PORTAL).state
    return advances[:setup], advances[setup:]


def time_state_machine(setup: list[Advance], rounds: list[Advance]) -> tuple[float, int]:
    """Seconds to apply the round inputs to a state that has the setup applied; and notices emitted."""
    state = State()
    for adv in setup:
        state = apply(state, adv, PORTAL).state
    notices = 0
    start = time.perf_counter()
    for adv in rounds:
        result = apply(state, adv, PORTAL)
        state, notices = result.state, notices + sum(isinstance(o, Notice) for o in result.outputs)
    return time.perf_counter() - start, notices


def request_data(adv: Advance) -> dict:
    """The rollup HTTP request that carries `adv`, on the dev chain's Application."""
    return encode_advance(replace(adv, chain_id=CHAIN_ID, app_contract=APP))


def time_http(setup: list[Advance], rounds: list[Advance]) -> tuple[float, int]:
    """Seconds for `python -m dapp` behind the node's rollup HTTP server to process the round inputs."""
    machine = HostMachine([sys.executable, "-m", "dapp"], finish_timeout=5.0)
    machine.start()
    try:
        outputs = 0
        for adv in setup:
            outputs += len(machine.advance(request_data(adv), outputs).outputs)
        start = time.perf_counter()
        for adv in rounds:
            result = machine.advance(request_data(adv), outputs)
            if result.status != "accept":
                raise RuntimeError(f"input {adv.input_index} was not accepted: {result.status}")
            outputs += len(result.outputs)
        return time.perf_counter() - start, outputs
    finally:
        machine.stop()


def input_sizes() -> list[tuple[str, int]]:
    return [
        ("CreateTask (2 groups)", len(create_task(10, public_test_set(1)).encode())),
        ("Ether deposit (EtherPortal payload)", len(encode_ether_deposit(PUBLISHER, 10**17, encode_deposit_data(1)))),
        ("Register", len(Register(1, ROLE_TRAINER, 0).encode())),
        ("ValidatorReport, 10 trainers", len(validator_report(1, 0).encode())),
        ("ModelChunk (the CNN, one chunk)", len(model_chunks(1, 1, validator_model(1, 0))[0].encode())),
        ("RoundClose", len(RoundClose(1, 1).encode())),
        ("Withdraw", len(Withdraw().encode())),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="rounds for the state-machine runs")
    parser.add_argument("--http-rounds", type=int, default=30, help="rounds for the HTTP runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--test-images", type=int, default=200, help="images in the public test set")
    args = parser.parse_args(argv)

    setup, rounds = build_workload(args.rounds, args.test_images)
    runs = [time_state_machine(setup, rounds) for _ in range(args.repeats)]
    sm_seconds = statistics.median(s for s, _ in runs)
    sm_rate = len(rounds) / sm_seconds

    http_setup, http_rounds = build_workload(args.http_rounds, args.test_images)
    runs_http = [time_http(http_setup, http_rounds) for _ in range(max(1, args.repeats // 2))]
    http_rows = [("python -m dapp via the node's rollup HTTP API", len(http_rounds), len(runs_http),
                  len(http_rounds) / statistics.median(s for s, _ in runs_http))]

    per_round = 1 + 2 * GROUPS
    print(f"Backend throughput: rounds of {GROUPS * TRAINERS_PER_GROUP} trainers ({GROUPS} signed ValidatorReports "
          f"of {TRAINERS_PER_GROUP} + {GROUPS} CNN reveals + 1 RoundClose per round), public test set of "
          f"{args.test_images} images, medians")
    print(f"{'path':46} {'inputs':>7} {'runs':>5} {'inputs/s':>10} {'ms/round':>9} {'vs baseline':>12}")
    print(f"{'state machine alone (baseline)':46} {len(rounds):>7} {len(runs):>5} {sm_rate:>10.0f} "
          f"{1000 * per_round / sm_rate:>9.2f} {'1.00x':>12}")
    for label, n_inputs, n_runs, rate in http_rows:
        print(f"{label:46} {n_inputs:>7} {n_runs:>5} {rate:>10.0f} {1000 * per_round / rate:>9.2f} "
              f"{sm_rate / rate:>11.1f}x")
    print()
    print("Input sizes (10 trainers per validator)")
    print(f"{'input':40} {'bytes':>6}")
    for name, size in input_sizes():
        print(f"{name:40} {size:>6}")
    report_size = dict(input_sizes())["ValidatorReport, 10 trainers"]
    print(f"\nValidatorReport for 10 trainers: {report_size} bytes (packed word, update digest and signature: 128 "
          f"bytes per trainer; L1 payload limit {MAX_INPUT_PAYLOAD:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
