"""Round-time benchmark: seconds per round and peak memory for 20 trainers, split into training,
validation and aggregation, for MAD against the no-validation baseline (FedAvg) measured in the same run.

    .venv/bin/python -m benchmarks.round_time [--rounds 5] [--trainers 20] [--strategies mad,fedavg] [--quick]

Each strategy runs in a fresh Python process (so memory peaks are comparable) with the same seed and
splits. Times are the medians over rounds 2.. (round 1 also traces TensorFlow functions) of the round
records' timings: training = the trainers' local
training (ClientApp calls), validation = the validator's reference training and the scoring of every
update on its data, aggregation = the strategies' aggregation and the manager's averaging. Memory is the
process's resident set size sampled every 5 ms and attributed to the phase running at that moment;
scoring and FedAvg both happen inside `aggregate_train`, so their peaks are reported together.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# after the environment above: Flower and TensorFlow read it when they load
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from flower_sim import manager as manager_module, validator  # noqa: E402
from flower_sim.config import SimulationConfig  # noqa: E402
from flower_sim.grid import GroupGrid  # noqa: E402
from flower_sim.manager import Manager  # noqa: E402
from flower_sim.simulation import simulate  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class PhaseMemory:
    """Samples RSS in a thread and keeps the peak per phase name."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = rss_mib()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            time.sleep(0.005)

    def start(self) -> "PhaseMemory":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def around(self, owner, name: str, phase: str) -> None:
        """Tag the time spent in `owner.name` with `phase` (benchmark instrumentation only)."""
        original = getattr(owner, name)
        tracker = self

        def wrapped(*args, **kwargs):
            before, tracker.phase = tracker.phase, phase
            try:
                return original(*args, **kwargs)
            finally:
                tracker.phase = before

        setattr(owner, name, wrapped)


def child(strategy: str, rounds: int, trainers: int, model: str, out: Path) -> dict:
    """One measured run in this process; returns medians and peaks."""
    cfg = SimulationConfig(rounds=rounds, trainers=trainers, strategy=strategy, model=model).validate()
    memory = PhaseMemory()
    memory.around(validator.Validator, "run_round", "validation + aggregation")
    memory.around(GroupGrid, "send_and_receive", "training")
    memory.around(Manager, "evaluate", "manager (average, test set)")
    memory.around(manager_module, "average", "manager (average, test set)")
    import tensorflow  # noqa: F401  (imported before the baseline reading, as in every run)

    baseline = rss_mib()
    memory.start()
    records = simulate(cfg, out / strategy).records
    memory.stop()
    timed = records[1:] or records  # round 1 also traces every model's TensorFlow functions: warm-up
    med = lambda key: statistics.median(r.timings[key] for r in timed)  # noqa: E731
    return {"strategy": strategy, "rounds": rounds, "trainers": trainers, "baseline_mib": baseline,
            "training_s": med("training_s"), "validation_s": med("validation_s"),
            "aggregation_s": med("aggregation_s"),
            "round_s": statistics.median(sum(r.timings.values()) for r in timed),
            "peaks_mib": memory.peaks, "final_accuracy": records[-1].global_accuracy}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trainers", type=int, default=20)
    parser.add_argument("--strategies", default="mad,fedavg")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--quick", action="store_true", help="2 rounds (only round 2 is timed)")
    parser.add_argument("--out", default="runs/bench-round-time")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    out = Path(args.out)
    if args.child:
        print(json.dumps(child(args.child, rounds, args.trainers, args.model, out)))
        return 0

    console = Console()
    results = []
    for strategy in args.strategies.split(","):
        console.print(f"measuring {strategy}: {args.trainers} trainers, {rounds} rounds, model {args.model} …")
        proc = subprocess.run([sys.executable, "-m", "benchmarks.round_time", "--child", strategy,
                               "--rounds", str(rounds), "--trainers", str(args.trainers), "--model", args.model,
                               "--out", str(out)], capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    base = results[-1]
    table = Table(title=f"Seconds per round (median of rounds 2-{rounds}), {args.trainers} trainers, model {args.model}; "
                        f"ratio against {base['strategy']}", title_justify="left")
    for col in ("strategy", "training", "validation", "aggregation", "round", "ratio", "final acc"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(r["strategy"], f"{r['training_s']:.2f}", f"{r['validation_s']:.2f}",
                      f"{r['aggregation_s']:.3f}", f"{r['round_s']:.2f}", f"{r['round_s'] / base['round_s']:.2f}x",
                      f"{100 * r['final_accuracy']:.1f}%")
    console.print(table)
    phases = ["training", "validation + aggregation", "manager (average, test set)"]
    mem = Table(title="Peak resident memory (MiB) by phase; baseline = after importing TensorFlow",
                title_justify="left")
    for col in ("strategy", "baseline", *phases):
        mem.add_column(col, justify="right")
    for r in results:
        mem.add_row(r["strategy"], f"{r['baseline_mib']:.0f}",
                    *[f"{r['peaks_mib'].get(p, float('nan')):.0f}" for p in phases])
    console.print(mem)
    out.mkdir(parents=True, exist_ok=True)
    (out / "round_time.json").write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results in {out}/round_time.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
