"""Benchmark: one group of 1,000 and 5,000 trainers recorded on the rollup through reports in parts (issue 16).

Per scale, one task of ONE group: every trainer registers, the validator's report of every trainer (each entry
signed by its trainer, all Positive: the most outputs) goes as `ReportPart`s of 500 (`flower_sim.rollup_inputs.
split_report`, what the recorder sends), the validator reveals its CNN, the publisher closes (the rollup pays every
trainer). Two places:

1. the state machine (`dapp.state.apply`, every output encoded as the backend posts it), per scale: the parts, their
   bytes, ms per part (each checks its 500 signatures; the last also judges and classifies the whole report), ms
   of the close, outputs and the largest output against the machine's limits;
2. anvil + the host-mode node + `python -m dapp` at each of ``--chain-scales`` (a fresh stack each; 0: none): the
   same inputs sent to the InputBox from each role's own key (the trainers funded with anvil_setBalance), L1 gas per
   input from the receipts, and the round's wall time: the parts sent until the node accepted the last, the reveal,
   the wait for the contest window, the close until the node accepted it.

Run: .venv/bin/python -m benchmarks.report_parts [--scales 1000 5000] [--chain-scales 1000 5000] [--block-time 1]
     [--test-images 200] [--per-part 500]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from contracts_config.anvil import free_port, start_anvil
from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.transactions import connect
from dapp import qmodel
from dapp.eip712 import Domain
from dapp.portal import encode_ether_deposit
from dapp.state import Accepted
from dapp.schema import (MAX_INPUT_PAYLOAD, MAX_OUTPUT_BYTES, MAX_OUTPUTS_PER_INPUT, REPORT_INPUT_TRAINERS,
                         ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, Message, Register, ReportPart, RoundClose,
                         ValidatorReport, encode_deposit_data)
from flower_sim.rollup_inputs import split_report
from rollups_client.node import NodeClient

from benchmarks.dapp_scale import MILLI, PORTAL, PUBLISHER, Run, output_bytes, timed
from benchmarks.dapp_throughput import CNN, DOMAIN
from benchmarks.node_latency import start_node
from benchmarks.rollup_inputs import model, model_chunks, public_test_set, set_chunks, signed_report, signer

VALIDATOR = signer("validator 0")
CONTEST_BLOCKS = 2  # as the project's runs (RUN_CONTEST_BLOCKS): the reveal sent with the last part lands in it


def trainer_signer(i: int):
    return signer(f"trainer {i}")


def create_task(trainers: int, test_set: bytes, images: int) -> CreateTask:
    """One round, one group of `trainers`, 1 mETH per Positive (the budget pays every trainer)."""
    return CreateTask(2500, 1, 1, trainers * MILLI, MILLI, MILLI, (VALIDATOR.address,), qmodel.digest(test_set),
                      images, CNN, trainers, registration_blocks=trainers + 1_000, report_blocks=1_000,
                      close_blocks=1_000, contest_blocks=CONTEST_BLOCKS)  # a slow machine closes in time


def report_parts(domain: Domain, trainers: int, per_part: int) -> list[ValidatorReport | ReportPart]:
    """The validator's report of every trainer (scores spread so that ties are pairs at most), in parts."""
    scores = [(trainer_signer(i), 8000 + i % 1500) for i in range(trainers)]
    return split_report(signed_report(domain, 1, 1, 0, 9000, model(CNN, 0), scores), per_part)


@dataclass
class MachineRow:
    trainers: int
    parts: int
    part_bytes: int  # the largest part's payload
    part_ms: list[float]  # each part but the last: (wall, CPU) seconds
    last_ms: tuple[float, float]
    last_outputs: int
    close_ms: tuple[float, float]
    close_outputs: int
    largest_output: int
    registration_s: float


def on_the_state_machine(trainers: int, images: int, per_part: int) -> MachineRow:
    run = Run()
    test_set = public_test_set(images)
    run.send(PUBLISHER, create_task(trainers, test_set, images).encode())
    for chunk in set_chunks(1, test_set):
        run.send(PUBLISHER, chunk.encode())
    run.send(VALIDATOR.address, Register(1, ROLE_VALIDATOR, 0).encode())
    addresses = [trainer_signer(i).address for i in range(trainers)]  # keys derived before the timing
    start = time.perf_counter()
    for a in addresses:
        run.send(a, Register(1, ROLE_TRAINER, 0).encode())
    registration = time.perf_counter() - start
    run.send(PORTAL, encode_ether_deposit(PUBLISHER, trainers * MILLI + MILLI, encode_deposit_data(1)))
    parts = report_parts(DOMAIN, trainers, per_part)
    seconds, largest = [], 0
    for part in parts:
        *elapsed, result = cpu_timed(run, VALIDATOR.address, part.encode())
        run.state = result.state
        seconds.append(tuple(elapsed))
        largest = max([largest, *output_bytes(result)])
    last = result
    [reveal] = model_chunks(1, 1, model(CNN, 0))
    run.send(VALIDATOR.address, reveal.encode())
    run.block = run.state.tasks[1].contest_deadline() + 1
    *close_s, close = cpu_timed(run, PUBLISHER, RoundClose(1, 1).encode())
    assert close.state.tasks[1].finished
    return MachineRow(trainers, len(parts), max(len(p.encode()) for p in parts), seconds[:-1], seconds[-1],
                      len(last.outputs), tuple(close_s), len(close.outputs), max([largest, *output_bytes(close)]),
                      registration)


def cpu_timed(run: Run, sender: str, payload: bytes) -> tuple[float, float, Accepted]:
    """Wall and CPU seconds of one input applied with its outputs encoded (CPU: what a shared machine's other jobs
    do not inflate), and its result."""
    cpu = time.process_time()
    wall, result = timed(run.state, run.advance(sender, payload))
    return wall, time.process_time() - cpu, result


# ------------------------------------------------------------------------------------- anvil + node

PUBLISHER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # anvil dev account 1
VALIDATOR_KEY = "0x" + VALIDATOR.key.to_hex()[2:]
GWEI = 10**9


@dataclass
class ChainRound:
    trainers: int
    registration_s: float
    gas: list[tuple[str, int, int]]  # (input, payload bytes, gas)
    parts_s: float  # first part sent -> the node accepted the last
    reveal_s: float
    window_s: float  # waiting for the contest window to pass
    close_s: float  # RoundClose sent -> the node accepted it

    @property
    def round_gas(self) -> int:
        """The round's inputs: report parts, reveal, close (not the registrations)."""
        return sum(used for name, _, used in self.gas if not name.startswith("Register"))

    @property
    def round_s(self) -> float:
        return self.parts_s + self.reveal_s + self.window_s + self.close_s


class Chain:
    """anvil, the official contracts and the host-mode node with the real backend; inputs sent as raw transactions
    signed by each role's own key."""

    def __init__(self, block_time: float, folder: Path) -> None:
        self.anvil = start_anvil(free_port(), block_time=block_time)
        self.node = None
        rpc_url = f"http://127.0.0.1:{self.anvil.args[self.anvil.args.index('--port') + 1]}"
        self.deployment = deploy(rpc_url, ANVIL_KEY_0, epoch_length=1_000)
        path = folder / "deployment.json"
        path.write_text(self.deployment.to_json())
        port = free_port()
        self.node = start_node(path, folder, port)
        self.client = NodeClient.at(f"http://127.0.0.1:{port}", self.deployment.application)
        self.w3 = connect(rpc_url)
        self.box = self.w3.eth.contract(address=self.deployment.input_box, abi=self.deployment.abi("InputBox"))
        self.portal = self.w3.eth.contract(address=self.deployment.ether_portal,
                                           abi=self.deployment.abi("EtherPortal"))
        self.nonces: dict[str, int] = {}

    def close(self) -> None:
        if self.node is not None:
            self.node.terminate()
            self.node.wait(timeout=30)
        self.anvil.kill()
        self.anvil.wait()

    def domain(self) -> Domain:
        return Domain(self.w3.eth.chain_id, self.deployment.application.lower())

    def fund(self, addresses: list[str]) -> None:
        for a in addresses:
            self.w3.provider.make_request("anvil_setBalance", [self.w3.to_checksum_address(a), hex(10**18)])

    def send(self, key: str, payload: bytes | Message, gas: int = 3_000_000, value: int = 0,
             deposit: bytes | None = None):
        """Sign and send one input (or, with ``deposit``, an EtherPortal deposit); its transaction hash."""
        account = self.w3.eth.account.from_key(key)
        nonce = self.nonces.get(account.address)
        if nonce is None:
            nonce = self.w3.eth.get_transaction_count(account.address)
        self.nonces[account.address] = nonce + 1
        fn = self.portal.functions.depositEther(self.deployment.application, deposit) if deposit is not None else \
            self.box.functions.addInput(self.deployment.application,
                                        payload.encode() if isinstance(payload, Message) else payload)
        tx = fn.build_transaction({"from": account.address, "nonce": nonce, "gas": gas, "value": value,
                                   "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI,
                                   "chainId": self.w3.eth.chain_id})
        return self.w3.eth.send_raw_transaction(self.w3.eth.account.sign_transaction(tx, key).raw_transaction)

    def receipt(self, tx_hash):
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=600, poll_latency=0.05)
        if receipt["status"] != 1:
            raise SystemExit(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def accepted(self, tx_hash, timeout: float = 900.0) -> int:
        """Wait until the node processed the input of ``tx_hash``; its index (exits if it was not accepted)."""
        index = int(self.receipt(tx_hash)["logs"][0]["topics"][2].hex(), 16)
        deadline = time.monotonic() + timeout
        while (status := self.client.input_status(index)) in ("NONE", ""):
            if time.monotonic() > deadline:
                raise SystemExit(f"the node did not process input {index} within {timeout:.0f} s")
            time.sleep(0.05)
        if status != "ACCEPTED":
            reports = self.client.reports(input_index=index)
            raise SystemExit(f"input {index} was {status}: " + (reports[0].raw_data.decode() if reports else ""))
        return index

    def wait_for_block(self, block: int) -> None:
        while self.w3.eth.block_number < block:
            time.sleep(0.05)


def on_chain(trainers: int, images: int, block_time: float, per_part: int) -> ChainRound:
    folder = Path(tempfile.mkdtemp(prefix="report-parts-"))
    chain = Chain(block_time, folder)
    try:
        test_set = public_test_set(images)
        publisher = chain.w3.eth.account.from_key(PUBLISHER_KEY).address.lower()
        task = create_task(trainers, test_set, images)
        chain.accepted(chain.send(PUBLISHER_KEY, task))
        for chunk in set_chunks(1, test_set):
            last = chain.send(PUBLISHER_KEY, chunk)
        chain.accepted(last)
        chain.accepted(chain.send(PUBLISHER_KEY, b"", gas=200_000, value=trainers * MILLI + MILLI,
                                  deposit=encode_deposit_data(1)))
        signers = [trainer_signer(i) for i in range(trainers)]
        chain.fund([VALIDATOR.address] + [s.address for s in signers])
        chain.accepted(chain.send(VALIDATOR_KEY, Register(1, ROLE_VALIDATOR, 0), gas=300_000))
        start = time.perf_counter()
        hashes = [chain.send("0x" + s.key.to_hex()[2:], Register(1, ROLE_TRAINER, 0), gas=300_000) for s in signers]
        chain.accepted(hashes[-1])
        registration = time.perf_counter() - start
        gas = [("Register (a trainer)", len(Register(1, ROLE_TRAINER, 0).encode()),
                chain.receipt(hashes[-1])["gasUsed"])]
        assert publisher != VALIDATOR.address
        parts = report_parts(chain.domain(), trainers, per_part)

        [reveal] = model_chunks(1, 1, model(CNN, 0))
        start = time.perf_counter()  # the reveal follows the last part at once (one key: nonce order), as in a run
        sent = [chain.send(VALIDATOR_KEY, p, gas=5_000_000) for p in parts + [reveal]]
        chain.accepted(sent[-2])
        parts_s = time.perf_counter() - start
        for part, tx in zip(parts, sent):
            name = f"ReportPart {part.part + 1} of {part.parts}" if isinstance(part, ReportPart) else "ValidatorReport"
            gas.append((name, len(part.encode()), chain.receipt(tx)["gasUsed"]))
        start = time.perf_counter()
        chain.accepted(sent[-1])
        gas.append(("ModelChunk (the CNN revealed)", len(reveal.encode()), chain.receipt(sent[-1])["gasUsed"]))
        reveal_s = time.perf_counter() - start
        start = time.perf_counter()
        report_block = chain.receipt(sent[-2])["blockNumber"]
        chain.wait_for_block(report_block + CONTEST_BLOCKS)  # the close may land from the block after the window
        window_s = time.perf_counter() - start
        start = time.perf_counter()
        tx = chain.send(PUBLISHER_KEY, RoundClose(1, 1), gas=500_000)
        chain.accepted(tx)
        close_s = time.perf_counter() - start
        gas.append(("RoundClose", len(RoundClose(1, 1).encode()), chain.receipt(tx)["gasUsed"]))
        return ChainRound(trainers, registration, gas, parts_s, reveal_s, window_s, close_s)
    finally:
        chain.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1000, 5000],
                        help="trainers in the task's one group (state machine)")
    parser.add_argument("--chain-scales", type=int, nargs="+", default=[1000, 5000],
                        help="trainers of the runs on anvil + the node (0: none)")
    parser.add_argument("--block-time", type=float, default=1.0, help="anvil seconds per block")
    parser.add_argument("--test-images", type=int, default=200, help="images in the public test set")
    parser.add_argument("--per-part", type=int, default=REPORT_INPUT_TRAINERS,
                        help=f"trainers per report part (default {REPORT_INPUT_TRAINERS}, the recorder's; fewer: toy "
                             f"runs with several parts)")
    args = parser.parse_args(argv)
    chain_scales = [s for s in args.chain_scales if s]
    if any(not 1 <= s <= 10_000 for s in args.scales + chain_scales):
        parser.error("every scale is in 1..10000 trainers (one group)")
    if not 1 <= args.per_part <= REPORT_INPUT_TRAINERS:
        parser.error(f"--per-part is in 1..{REPORT_INPUT_TRAINERS}")

    rows = [on_the_state_machine(s, args.test_images, args.per_part) for s in args.scales]
    print(f"1. The state machine: one group, its report in parts of {args.per_part} (each entry signed), the "
          f"demo's CNN revealed, the close paying every trainer; public test set of {args.test_images} images")
    print("ms: wall clock / CPU of this process (the machine may be shared); a part but the last: the median")
    print(f"{'trainers':>8} {'parts':>5} {'part B':>7} {'ms per part':>13} {'ms last part':>13} {'outputs':>8} "
          f"{'ms close':>11} {'outputs':>8} {'largest output B':>17} {'registration s':>15}")
    for r in rows:
        per_part = "/".join(f"{1000 * statistics.median(s[k] for s in r.part_ms):.0f}" for k in (0, 1)) \
            if r.part_ms else "—"
        last, close = ("/".join(f"{1000 * s:.0f}" for s in pair) for pair in (r.last_ms, r.close_ms))
        print(f"{r.trainers:>8,} {r.parts:>5} {r.part_bytes:>7,} {per_part:>13} {last:>13} {r.last_outputs:>8,} "
              f"{close:>11} {r.close_outputs:>8,} {r.largest_output:>17,} {r.registration_s:>15.1f}")
    base, top = rows[0], rows[-1]
    backend = [sum(s[1] for s in r.part_ms) + r.last_ms[1] + r.close_ms[1] for r in rows]
    print("Backend CPU time of the round's report and close: " + ", ".join(
        f"{r.trainers:,} trainers {s:.1f} s" for r, s in zip(rows, backend))
        + (f" ({backend[-1] / backend[0]:.1f}x for {top.trainers / base.trainers:.0f}x the trainers)"
           if len(rows) > 1 else ""))
    over = [r.trainers for r in rows if r.part_bytes > MAX_INPUT_PAYLOAD or r.largest_output > MAX_OUTPUT_BYTES
            or max(r.last_outputs, r.close_outputs) > MAX_OUTPUTS_PER_INPUT]
    print(f"Limits: an input payload <= {MAX_INPUT_PAYLOAD:,} B, an output <= {MAX_OUTPUT_BYTES:,} B, <= "
          f"{MAX_OUTPUTS_PER_INPUT:,} outputs per input: "
          + ("every input and output within them" if not over else f"OVER at {over} trainers"))
    runs = [on_chain(n, args.test_images, args.block_time, args.per_part) for n in chain_scales]
    for r in runs:
        print(f"\n2. anvil ({args.block_time:g} s blocks) + the host-mode node + `python -m dapp`, one group of "
              f"{r.trainers:,} trainers (registered in {r.registration_s:.0f} s)")
        print(f"{'input':32} {'payload B':>10} {'gas':>11}")
        for name, size, used in r.gas:
            print(f"{name:32} {size:>10,} {used:>11,}")
        print(f"L1 gas of the round (report parts, reveal, close): {r.round_gas:,}")
        print(f"Round wall time {r.round_s:.1f} s: report parts sent until the node accepted the last "
              f"{r.parts_s:.1f} s, then the reveal {r.reveal_s:.1f} s, the contest window ({CONTEST_BLOCKS} blocks) "
              f"{r.window_s:.1f} s, the close {r.close_s:.1f} s")
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        print(f"\n{last.trainers:,} against {first.trainers:,} trainers ({last.trainers / first.trainers:.0f}x): "
              f"round wall time {last.round_s / first.round_s:.1f}x, L1 gas {last.round_gas / first.round_gas:.1f}x")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
