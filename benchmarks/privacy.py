"""Privacy benchmark (issue 17): global accuracy and the MAD validators' honest-rejected rate against the trainers'
per-round ε, for Gaussian and Laplace noise on the updates, with `--strategy mad` and `fedavg`.

No attack (every trainer honest and noising its update), so every rejection is an honest update the MAD rule threw
away because its noise made it score under (1 − MAD) × the validator's own accuracy. ε = ∞ is the run without DP
(shared by both mechanisms). Each cell is the mean ± standard deviation over `--seeds` seeds (different data splits,
initial model and noise). Clipping: L2 norm `--clip` for Gaussian, L1 norm `--clip-l1` for Laplace (an MLP update's
L2 norm after 3 local epochs is about 2, its L1 norm about 350: one L1 bound as small as the L2 one would shrink the
update 300-fold before any noise).

    .venv/bin/python -m benchmarks.privacy [--quick] [--task mnist] [--seeds 3] [--rounds 5]
                                           [--epsilons inf,1000,300,100,30,8,2,0.5] [--mechanisms gaussian,laplace]
                                           [--plot docs/privacy.png]

Prints one table (accuracy % and honest-rejected %), saves the plot and a JSON (`--out`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# after the environment above: Flower and TensorFlow read it when they load
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.qos import QOS_BATCH_SIZE, QOS_LR  # noqa: E402
from common import dp_accountant  # noqa: E402
from flower_sim.config import SimulationConfig  # noqa: E402
from flower_sim.simulation import simulate  # noqa: E402

MECHANISMS = ("gaussian", "laplace")
STRATEGIES = ("mad", "fedavg")


def run_config(args: argparse.Namespace, seed: int, strategy: str, mechanism: str, epsilon: float) -> SimulationConfig:
    """The run of one cell: no attack, `epsilon` per round (∞: no DP). The QoS task trains with the QoS
    benchmark's settings (`benchmarks.qos.QOS_LR`, `QOS_BATCH_SIZE`), MNIST with simulate's."""
    qos = {"lr": QOS_LR, "batch_size": QOS_BATCH_SIZE} if args.task == "qos" else {}
    base = SimulationConfig(rounds=args.rounds, trainers=args.trainers, validators=2, model=args.model, seed=seed,
                            attack="none", malicious=0.0, strategy=strategy, task=args.task, **qos)
    if math.isinf(epsilon):
        return base.validate()
    clip = args.clip if mechanism == "gaussian" else args.clip_l1
    return replace(base, dp=mechanism, dp_epsilon=epsilon, dp_clip=clip, dp_delta=args.delta).validate()


def honest_rejected(records) -> float:
    contributions = [c for r in records for c in r.contributions if not c.malicious]
    return sum(not c.accepted for c in contributions) / len(contributions)


def accuracy(cell: dict[str, list[float]]) -> str:
    """The cell's final accuracy, and for the QoS task its violation recall in brackets."""
    recall = cell.get("violation_recall")
    return spread(cell["accuracy"]) + (f" ({spread(recall)})" if recall else "")


def spread(values: list[float]) -> str:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * mean:.1f} ± {100 * sd:.1f}"


def number(x: float) -> str:
    return f"{x:.3g}" if x < 1000 else f"{x:,.0f}"


def plot(path: Path, epsilons: list[float], cells: dict, title: str) -> None:
    """Accuracy (left) and MAD's honest-rejected rate (right) against ε per round, mean ± sd over seeds."""
    import matplotlib  # heavy: only when the plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use("Agg"): no display backend

    finite = sorted(e for e in epsilons if not math.isinf(e))
    fig, (acc_ax, rej_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for mechanism in MECHANISMS:
        for strategy in STRATEGIES:
            runs = [cells.get((mechanism, strategy, e)) for e in finite]
            if not all(runs):
                continue
            means = [statistics.fmean(r["accuracy"]) for r in runs]
            sds = [statistics.stdev(r["accuracy"]) if len(r["accuracy"]) > 1 else 0 for r in runs]
            acc_ax.errorbar(finite, means, yerr=sds, marker="o", capsize=3, label=f"{mechanism}, {strategy}")
            if strategy == "mad":
                rej = [statistics.fmean(r["honest_rejected"]) for r in runs]
                rej_ax.plot(finite, rej, marker="o", label=f"{mechanism}, mad")
    for strategy, style in zip(STRATEGIES, (":", "--")):
        base = cells.get(("none", strategy, math.inf))
        if base:
            acc_ax.axhline(statistics.fmean(base["accuracy"]), linestyle=style, color="grey",
                           label=f"no DP, {strategy}")
    acc_ax.set(xscale="log", xlabel="ε per round", ylabel="global accuracy (test set)", ylim=(0, 1), title=title)
    rej_ax.set(xscale="log", xlabel="ε per round", ylabel="honest updates rejected by MAD", ylim=(-0.02, 1.02),
               title="MAD's rejections of honest, noised updates")
    for ax in (acc_ax, rej_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist", choices=("mnist", "qos"))
    parser.add_argument("--quick", action="store_true", help="3 rounds, 10 trainers, ε in {∞, 300, 8}: minutes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trainers", type=int, default=20)
    parser.add_argument("--model", default="", help="default: mlp for mnist, the qos model for qos")
    parser.add_argument("--epsilons", default="inf,1000,300,100,30,8,2,0.5")
    parser.add_argument("--mechanisms", default=",".join(MECHANISMS))
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--clip", type=float, default=1.0, help="L2 clipping norm (Gaussian)")
    parser.add_argument("--clip-l1", type=float, default=100.0, help="L1 clipping norm (Laplace)")
    parser.add_argument("--out", default="runs/bench-privacy")
    parser.add_argument("--plot", default="docs/privacy.png")
    args = parser.parse_args(argv)
    args.model = args.model or ("qos" if args.task == "qos" else "mlp")
    if args.task == "qos":  # beside MNIST's figures, not over them
        args.out = args.out.replace("bench-privacy", "bench-privacy-qos")
        args.plot = args.plot.replace("privacy.png", "privacy-qos.png")
    if args.quick:
        args.rounds, args.trainers, args.epsilons = 3, 10, "inf,300,8"
    epsilons = [float(e) for e in args.epsilons.split(",")]
    mechanisms = [m for m in MECHANISMS if m in args.mechanisms.split(",")]
    console = Console(width=180)
    out = Path(args.out)
    cells: dict[tuple[str, str, float], dict[str, list[float]]] = {}
    started = time.perf_counter()
    for epsilon in epsilons:
        for mechanism in (("none",) if math.isinf(epsilon) else mechanisms):
            for strategy in STRATEGIES:
                cell = cells.setdefault((mechanism, strategy, epsilon), {"accuracy": [], "honest_rejected": [],
                                                                         "violation_recall": []})
                for seed in range(42, 42 + args.seeds):
                    cfg = run_config(args, seed, strategy, mechanism, epsilon)
                    records = simulate(cfg, out / f"{mechanism}-{strategy}-eps{epsilon:g}-seed{seed}").records
                    cell["accuracy"].append(records[-1].global_accuracy)
                    cell["honest_rejected"].append(honest_rejected(records))
                    if args.task == "qos":  # accuracy alone hides a model that never predicts the rare violation
                        cell["violation_recall"].append(records[-1].global_violation_recall or 0.0)
                console.print(f"ε {epsilon:>5g} · {mechanism:<8} · {strategy:<6} accuracy {spread(cell['accuracy'])}"
                              f"%, honest rejected {spread(cell['honest_rejected'])}%  "
                              f"({time.perf_counter() - started:.0f} s)")

    title = (f"{args.task}, model {args.model}, {args.trainers} trainers, {args.rounds} rounds, "
             f"{args.seeds} seeds")
    recall = " (violation recall %)" if args.task == "qos" else ""
    table = Table(title=f"Final global accuracy %{recall} and honest updates rejected by MAD % (mean ± sd) against "
                        f"ε per round; {title}; δ = {args.delta:g} (Gaussian, L2 clip {args.clip:g}), Laplace L1 clip "
                        f"{args.clip_l1:g}", title_justify="left")
    table.add_column("ε per round", justify="right")
    table.add_column(f"total ε, {args.rounds} rounds (Gaussian at δ / Laplace)", justify="right")
    for mechanism in mechanisms:
        table.add_column(f"{mechanism} · mad", justify="right")
        table.add_column(f"{mechanism} · fedavg", justify="right")
        table.add_column(f"{mechanism} · honest rejected (mad)", justify="right")
    for epsilon in epsilons:
        row = ["∞ (no DP)" if math.isinf(epsilon) else f"{epsilon:g}",
               "—" if math.isinf(epsilon) else
               f"{number(dp_accountant.total_epsilon('gaussian', epsilon, args.delta, args.rounds))} / "
               f"{number(dp_accountant.total_epsilon('laplace', epsilon, 0.0, args.rounds))}"]
        for mechanism in mechanisms:
            key = "none" if math.isinf(epsilon) else mechanism
            mad, fedavg = cells[(key, "mad", epsilon)], cells[(key, "fedavg", epsilon)]
            row += [accuracy(mad), accuracy(fedavg), spread(mad["honest_rejected"])]
        table.add_row(*row)
    console.print(table)
    plot(Path(args.plot), epsilons, cells, title)
    out.mkdir(parents=True, exist_ok=True)
    document = [{"mechanism": m, "strategy": s, "epsilon": None if math.isinf(e) else e, **v}
                for (m, s, e), v in cells.items()]
    (out / "privacy.json").write_text(json.dumps({"args": vars(args), "cells": document}, indent=2) + "\n")
    console.print(f"plot: {args.plot}; data: {out / 'privacy.json'}; {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
