"""Benchmark: the slowest input of the rollup's rules, and its largest output, as a task grows to 10,000 trainers.

Workload per scale (participants = trainers; 20 groups x trainers_per_group, so 10,000 = 20 x 500, each report one
input; a larger group reports in parts: benchmarks.report_parts): CreateTask, the public test set (--test-images
seeded images), every trainer and validator registers, the task is funded, round 1 is played with a full
ValidatorReport per group (every trainer Positive, each entry signed by its trainer: a 500-trainer report checks 500
signatures), every validator reveals its CNN (scored by the rollup on the test set), the publisher closes (the
rollup averages the 20 models, scores the mean and pays every trainer: the most outputs an input can have), then a
trainer withdraws and, round 2 left silent past its report deadline, the publisher cancels. Every input goes through
`dapp.state.apply`, the machine's rules, as the backend runs them.
Each measured input is applied `--repeats` times to the same state (the state is immutable, so every repeat does
the same work), and its outputs are encoded as the backend posts them.
Measured per input type: median and max time, the number of outputs and the largest one's bytes (its call
encoding, what the machine's 2 MiB tx buffer must hold), against dapp.schema's limits; baseline: the
smallest scale in the same run. The total time of the whole registration shows what per-input work adds up to.
The inputs of one scale (`--http-scale`) are then fed to `python -m dapp` behind the node's rollup HTTP server,
as the host-mode node runs it, for what one HTTP POST per output adds.
Run: .venv/bin/python -m benchmarks.dapp_scale [--scales 100 1000 10000] [--repeats 7] [--http-scale 1000]
     [--test-images 200]
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass

from dapp import qmodel
from dapp.portal import CANONICAL_ETHER_PORTAL, encode_ether_deposit
from dapp.schema import (MAX_INPUT_PAYLOAD, MAX_OUTPUT_BYTES, MAX_OUTPUTS_PER_INPUT, MAX_TASK_TRAINERS,
                         REPORT_INPUT_TRAINERS, ROLE_TRAINER, ROLE_VALIDATOR, CancelTask, CreateTask, Register,
                         RoundClose, ValidatorReport, Withdraw, encode_deposit_data, normalize_address)
from dapp.state import Accepted, Advance, Notice, State, Voucher, apply
from rollups_node.machine import HostMachine
from rollups_node.outputs import encode_notice, encode_voucher

from benchmarks.dapp_throughput import APP, CHAIN_ID, CNN, DOMAIN, request_data
from benchmarks.rollup_inputs import Signer, model, model_chunks, public_test_set, set_chunks, signed_report, signer

PORTAL = normalize_address(CANONICAL_ETHER_PORTAL)
GROUPS = MAX_TASK_TRAINERS // REPORT_INPUT_TRAINERS  # 20 groups, each report one input at 10,000 trainers
MILLI = 10**15
PUBLISHER = "0x" + f"{0xA11CE:040x}"
VALIDATORS = tuple(signer(f"validator {g}").address for g in range(GROUPS))


def trainer(i: int) -> Signer:
    return signer(f"trainer {i}")


def validator_model(group: int) -> bytes:
    return model(CNN, group)


@dataclass
class Row:
    scale: int
    name: str
    seconds: list[float]
    outputs: int
    largest_output: int
    input_bytes: int

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    @property
    def max_ms(self) -> float:
        return 1000 * max(self.seconds)


def output_bytes(result: Accepted) -> list[int]:
    """Each output's call encoding, as the machine writes it to its tx buffer."""
    sizes = []
    for out in result.outputs:
        if isinstance(out, Notice):
            sizes.append(len(encode_notice(out.payload)))
        elif isinstance(out, Voucher):
            sizes.append(len(encode_voucher(out.destination, out.value, out.payload)))
        else:
            sizes.append(len(out.payload))
    return sizes


def timed(state: State, adv: Advance) -> tuple[float, Accepted]:
    """Seconds to apply one input and encode every output it emits (what the backend does before posting)."""
    start = time.perf_counter()
    result = apply(state, adv, PORTAL)
    for out in result.outputs:
        _ = out.payload
    return time.perf_counter() - start, result


class Run:
    """Feeds one scale's inputs to `apply`, one L1 block each, keeping the state."""

    def __init__(self) -> None:
        self.state, self.block, self.index = State(), 100, 0
        self.applied: list[tuple[str, Advance]] = []  # every input kept, with the name of those measured

    def advance(self, sender: str, payload: bytes) -> Advance:
        adv = Advance(sender, payload, input_index=self.index, block_number=self.block,
                      block_timestamp=1_700_000_000 + 12 * self.block, prev_randao=self.block.to_bytes(32, "big"),
                      chain_id=CHAIN_ID, app_contract=APP)
        self.index, self.block = self.index + 1, self.block + 1
        return adv

    def send(self, sender: str, payload: bytes) -> None:
        self.keep("", self.advance(sender, payload))

    def keep(self, name: str, adv: Advance) -> None:
        self.state = apply(self.state, adv, PORTAL).state
        self.applied.append((name, adv))

    def measure(self, scale: int, name: str, sender: str, payload: bytes, repeats: int) -> tuple[Row, Advance]:
        """Time `repeats` applications of one input to the current state (which it does not change)."""
        adv = self.advance(sender, payload)
        seconds, sizes = [], []
        gc.collect()  # no garbage of the inputs before: each repeat's results are dropped before the next
        for _ in range(repeats):
            elapsed, result = timed(self.state, adv)
            seconds.append(elapsed)
            sizes = output_bytes(result)
        return Row(scale, name, seconds, len(sizes), max(sizes, default=0), len(payload)), adv


def full_report(group: int, per_group: int) -> ValidatorReport:
    """Every trainer of the group, all Positive (the most outputs: each is classified and paid), scores spread
    so that ties are pairs at most; each entry signed by its trainer."""
    scores = [(trainer(group * per_group + i), 8000 + i % 1500) for i in range(per_group)]
    return signed_report(DOMAIN, 1, 1, group, 9000, validator_model(group), scores)


def measure_scale(scale: int, repeats: int, test_images: int) -> tuple[list[Row], float, Run]:
    """Every input type at `scale` trainers; the seconds the whole registration took; the run."""
    per_group = scale // GROUPS
    per_positive, validator_reward = 2 * MILLI, 1 * MILLI
    budget = GROUPS * per_group * per_positive  # pays every Positive
    rounds, report_blocks = 2, 100
    run, rows = Run(), []
    test_set = public_test_set(test_images)
    run.send(PUBLISHER, CreateTask(2500, rounds, GROUPS, budget, per_positive, validator_reward, VALIDATORS,
                                   qmodel.digest(test_set), test_images, CNN, per_group,
                                   registration_blocks=scale + 1000, report_blocks=report_blocks, close_blocks=50,
                                   contest_blocks=GROUPS + 5).encode())  # room for every reveal
    for chunk in set_chunks(1, test_set):
        run.send(PUBLISHER, chunk.encode())
    for g in range(GROUPS):
        run.send(VALIDATORS[g], Register(1, ROLE_VALIDATOR, g).encode())
    trainers = [trainer(i).address for i in range(scale)]  # their keys derived now, not in the timing
    start = time.perf_counter()
    for i in range(scale - 1):
        run.send(trainers[i], Register(1, ROLE_TRAINER, i // per_group).encode())
    registration = time.perf_counter() - start
    row, last = run.measure(scale, "Register (the last trainer)", trainers[-1],
                            Register(1, ROLE_TRAINER, GROUPS - 1).encode(), repeats)
    rows.append(row)
    run.keep(row.name, last)
    registration += statistics.median(row.seconds)
    escrow = rounds * (budget + validator_reward)
    rows.append(run.measure(scale, "Ether deposit crediting a balance", PORTAL,
                            encode_ether_deposit(trainer(0).address, MILLI), repeats)[0])
    row, fund = run.measure(scale, "Ether deposit funding the task", PORTAL,
                            encode_ether_deposit(PUBLISHER, escrow, encode_deposit_data(1)), repeats)
    rows.append(row)
    run.keep(row.name, fund)
    row, adv = run.measure(scale, "ValidatorReport (a full group, signed)", VALIDATORS[0],
                           full_report(0, per_group).encode(), repeats)
    rows.append(row)
    run.keep(row.name, adv)
    for g in range(1, GROUPS):
        run.send(VALIDATORS[g], full_report(g, per_group).encode())
    for g in range(GROUPS):
        [chunk] = model_chunks(1, 1, validator_model(g))  # the CNN fits one chunk
        row, adv = run.measure(scale, "ModelChunk (a CNN revealed, scored)", VALIDATORS[g], chunk.encode(),
                               repeats if g == 0 else 1)
        if g == 0:
            rows.append(row)
        run.keep(row.name, adv)
    run.block = run.state.tasks[1].contest_deadline() + 1
    row, close = run.measure(scale, "RoundClose (mean of 20, every stake)", PUBLISHER, RoundClose(1, 1).encode(),
                             repeats)
    rows.append(row)
    run.keep(row.name, close)
    paid = next(a for a in sorted(run.state.balances) if a not in VALIDATORS and a != PUBLISHER)
    rows.append(run.measure(scale, "Withdraw (a paid trainer)", paid, Withdraw().encode(), repeats)[0])
    run.block = run.state.tasks[1].report_deadline() + 1  # round 2: every group silent past its deadline
    rows.append(run.measure(scale, "CancelTask (refund voucher)", PUBLISHER, CancelTask(1).encode(), repeats)[0])
    return rows, registration, run


def time_http(run: Run) -> dict[str, tuple[list[float], int]]:
    """`python -m dapp` behind the node's rollup HTTP server (host mode: one POST per output) takes every input
    of `run`; per measured input type, the seconds of each and its output count."""
    machine = HostMachine([sys.executable, "-m", "dapp"], finish_timeout=5.0)
    machine.start()
    try:
        outputs, measured = 0, {}
        for name, adv in run.applied:
            start = time.perf_counter()
            result = machine.advance(request_data(adv), outputs)
            seconds = time.perf_counter() - start
            if result.status != "accept":
                raise RuntimeError(f"input {adv.input_index} ({name or 'setup'}) was not accepted: {result.status}")
            outputs += len(result.outputs)
            if name:
                measured.setdefault(name, ([], len(result.outputs)))[0].append(seconds)
        return measured
    finally:
        machine.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[100, 1000, 10000],
                        help=f"trainers per task ({GROUPS} groups; at most 10,000)")
    parser.add_argument("--repeats", type=int, default=7, help="applications of each measured input")
    parser.add_argument("--http-scale", type=int, default=1000,
                        help="trainers of the run also fed through the rollup HTTP API (0: none)")
    parser.add_argument("--test-images", type=int, default=200, help="images in the public test set")
    args = parser.parse_args(argv)
    if any(s % GROUPS or not GROUPS <= s <= 10_000 for s in args.scales + [args.http_scale or GROUPS]):
        parser.error(f"every scale is a multiple of {GROUPS} in {GROUPS}..10000")

    results = {scale: measure_scale(scale, args.repeats, args.test_images) for scale in args.scales}
    base = args.scales[0]
    print(f"Every input type at {', '.join(f'{s:,}' for s in args.scales)} trainers ({GROUPS} groups, the demo's "
          f"CNN, a public test set of {args.test_images} images), dapp.state.apply + output encoding, "
          f"{args.repeats} repeats; baseline: {base:,} trainers")
    print(f"{'input':40} {'trainers':>8} {'median ms':>10} {'max ms':>8} {'x base':>7} {'outputs':>8} "
          f"{'largest output B':>17} {'input B':>8}")
    for i in range(len(results[base][0])):
        for scale in args.scales:
            row, ref = results[scale][0][i], results[base][0][i]
            name = row.name if scale == base else ""
            print(f"{name:40} {scale:>8,} {row.median_ms:>10.3f} {row.max_ms:>8.3f} "
                  f"{row.median_ms / ref.median_ms:>6.1f}x {row.outputs:>8,} {row.largest_output:>17,} "
                  f"{row.input_bytes:>8,}")
    print(f"\nLimits (dapp/schema.py): an output <= {MAX_OUTPUT_BYTES:,} B (tx buffer), <= {MAX_OUTPUTS_PER_INPUT:,} "
          f"outputs per input, an input payload <= {MAX_INPUT_PAYLOAD:,} B")
    print("Whole registration (every Register of the task, one after another):")
    for scale in args.scales:
        seconds = results[scale][1]
        print(f"  {scale:>6,} trainers: {seconds:7.2f} s, {1000 * seconds / scale:.3f} ms per Register on average")
    if args.http_scale:
        http = time_http(measure_scale(args.http_scale, 1, args.test_images)[2])
        print(f"\nThe same inputs through `python -m dapp` behind the node's rollup HTTP server, {args.http_scale:,} "
              f"trainers (host mode: one HTTP POST per output; a Cartesi Machine writes them to its tx buffer)")
        print(f"{'input':40} {'median ms':>10} {'max ms':>8} {'outputs':>8} {'ms per output':>14}")
        for name, (seconds, count) in http.items():
            median = 1000 * statistics.median(seconds)
            print(f"{name:40} {median:>10.1f} {1000 * max(seconds):>8.1f} {count:>8,} {median / count:>14.2f}")
    top = args.scales[-1]
    rows = results[top][0]
    slowest = max(rows, key=lambda r: r.max_ms)
    worst = max(r.largest_output for r in rows)
    most = max(r.outputs for r in rows)
    over = [r.name for r in rows if r.largest_output > MAX_OUTPUT_BYTES or r.outputs > MAX_OUTPUTS_PER_INPUT
            or r.input_bytes > MAX_INPUT_PAYLOAD]
    base_row = next(r for r in results[base][0] if r.name == slowest.name)
    print(f"\nBound at {top:,} trainers: every input < {slowest.max_ms:.0f} ms (slowest: {slowest.name}, median "
          f"{slowest.median_ms:.0f} ms, {slowest.median_ms / base_row.median_ms:.0f}x its {base:,}-trainer figure); "
          f"largest output {worst:,} B ({100 * worst / MAX_OUTPUT_BYTES:.1f}% of the limit); at most {most:,} "
          f"outputs per input ({100 * most / MAX_OUTPUTS_PER_INPUT:.1f}% of the limit); "
          + ("every input and output within the limits" if not over else "OVER THE LIMITS: " + ", ".join(over)))
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
