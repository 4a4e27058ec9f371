"""Flower's engines against the in-process grid: many registered trainers, a sample of them per round.

    .venv/bin/python -m benchmarks.flower_engines [--trainers 1000] [--fraction-train 0.1] [--rounds 3]
                                                  [--model cnn] [--strategy fedavg] [--engines inprocess,ray1,ray2]
                                                  [--quick]

Each engine runs the same federation (the same options, seed and splits) in fresh processes:
  * inprocess: `fedrollup simulate` (one process, trainers one after another);
  * rayN: `flwr run .` on Flower's Simulation Engine, a local SuperLink and Ray with N CPUs (N trainer actors at a
    time), under its own FLWR_HOME.
Per engine: the median seconds of a round over rounds 2.. (round 1 also traces TensorFlow; a round = the
validators' training, validation and aggregation as metrics.json records them), the whole run's wall time (Ray's
start included), the peak resident memory of the whole process tree (sampled every 0.2 s: for Ray the SuperLink,
the simulation process, Ray's daemons and its actors), and the final global accuracy and accepted/rejected counts,
which must agree across engines (the decisions are the same; Ray's weights may differ in the last float bits).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, resident bytes, command line) of every process now."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            rss = int((proc / "statm").read_text().split()[1]) * PAGE
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        found[int(proc.name)] = (parent, rss, cmdline)
    return found


def tree_rss(roots: set[int], procs: dict[int, tuple[int, int, str]]) -> int:
    """Resident bytes of `roots` and all their descendants."""
    members, grew = set(roots) & set(procs), True
    while grew:
        more = {pid for pid, (parent, _, _) in procs.items() if parent in members} - members
        members |= more
        grew = bool(more)
    return sum(procs[p][1] for p in members)


class PeakMemory:
    """Samples the resident memory of the process trees `roots()` names, every 0.2 s, and keeps the peak."""

    def __init__(self, roots) -> None:
        self.roots, self.peak = roots, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            procs = _processes()
            self.peak = max(self.peak, tree_rss(self.roots(procs), procs))

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_inprocess(options: dict, out: Path) -> tuple[float, int]:
    argv = [str(BIN / "fedrollup"), "simulate", "--out", str(out)]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakMemory(lambda procs: {proc.pid}) as memory:
        _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"fedrollup simulate failed: {err[-2000:]}")
    return time.perf_counter() - start, memory.peak


def run_ray(options: dict, out: Path, cpus: int, home: Path) -> tuple[float, int]:
    config = " ".join(f"{k}={json.dumps(v)}" for k, v in {**options, "out": str(out)}.items())
    federation = f"num-supernodes={options['trainers']} init-args-num-cpus={cpus} client-resources-num-cpus=1"
    env = {**os.environ, "FLWR_HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.Popen([str(BIN / "flwr"), "run", str(REPO), "--stream", "-c", config, "--federation-config",
                             federation], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def ours(procs: dict) -> set[int]:  # the CLI, and the detached SuperLink that logs under our FLWR_HOME
        return {proc.pid} | {p for p, (_, _, cmd) in procs.items() if "flower-superlink" in cmd and str(home) in cmd}
    try:
        with PeakMemory(ours) as memory:
            log, _ = proc.communicate()
    finally:
        for pid in ours(_processes()) - {proc.pid}:
            os.kill(pid, signal.SIGTERM)
    if not (out / "metrics.json").is_file():
        raise SystemExit(f"flwr run failed:\n{log[-3000:]}")
    return time.perf_counter() - start, memory.peak


def summary(out: Path) -> dict:
    rounds = json.loads((out / "metrics.json").read_text())["rounds"]
    seconds = [sum(r["timings"].values()) for r in rounds]
    return {"round_s": statistics.median(seconds[1:] or seconds), "first_round_s": seconds[0],
            "accuracy": rounds[-1]["global_accuracy"],
            "accepted": sum(c["accepted"] for r in rounds for c in r["contributions"]),
            "rejected": sum(not c["accepted"] for r in rounds for c in r["contributions"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.flower_engines", description=__doc__.split("\n")[0])
    parser.add_argument("--trainers", type=int, default=1000)
    parser.add_argument("--fraction-train", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--strategy", default="fedavg", help="fedavg: with ~4 samples a trainer, MAD's reference "
                        "model outscores every update and rejects them all (docs/researchers.md, issue 14)")
    parser.add_argument("--engines", default="inprocess,ray1,ray2")
    parser.add_argument("--quick", action="store_true", help="200 trainers, 20 per round, 2 rounds, logreg")
    args = parser.parse_args(argv)
    if args.quick:
        args.trainers, args.rounds, args.model = 200, 2, "logreg"
    options = {"trainers": args.trainers, "fraction-train": args.fraction_train, "rounds": args.rounds,
               "model": args.model, "strategy": args.strategy}
    console = Console(width=max(Console().width, 140))
    table = Table(title=f"{args.trainers} trainers, {int(args.trainers / 2 * args.fraction_train) * 2} per round, "
                        f"{args.rounds} rounds, {args.model}, {args.strategy} (one run each, {time.strftime('%Y-%m-%d')})")
    for name in ("engine", "s / round (median 2..)", "round 1 s", "wall s (start included)", "peak memory",
                 "final accuracy", "accepted / rejected"):
        table.add_column(name, justify="left" if name == "engine" else "right")
    baseline = None
    with tempfile.TemporaryDirectory(prefix="engines-") as tmp:
        for engine in args.engines.split(","):
            out = Path(tmp) / engine
            console.print(f"== {engine}: running {args.trainers} trainers …")
            if engine == "inprocess":
                wall, peak = run_inprocess(options, out)
            elif engine.startswith("ray") and engine[3:].isdigit():
                wall, peak = run_ray(options, out, int(engine[3:]), Path(tmp) / f"home-{engine}")
            else:
                raise SystemExit(f"unknown engine {engine!r} (inprocess, ray1, ray2, …)")
            s = summary(out)
            baseline = baseline or s["round_s"]
            table.add_row(engine, f"{s['round_s']:.1f} ({s['round_s'] / baseline:.2f}x)", f"{s['first_round_s']:.1f}",
                          f"{wall:.0f}", f"{peak / 2**30:.2f} GiB", f"{100 * s['accuracy']:.1f}%",
                          f"{s['accepted']} / {s['rejected']}")
            console.print(f"   {engine}: {s['round_s']:.1f} s per round, peak {peak / 2**30:.2f} GiB")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
