"""Robustness benchmark: MAD against FedAvg, Krum, median and trimmed mean under poisoning attacks.

Every run uses the same seed, so the same data splits, the same initial model and the same attackers.
Scenarios (issue 2): no attack; gaussian noise (sigma 1, always on) from 15% and 30% of trainers;
signflip from 30%; labelflip by 30% of trainers relabelling 50% of their samples. A centralized model
trained on the union of the trainers' data for the same number of epochs (rounds x local epochs), from the
same initial weights, is measured in the same run as the upper bound.

    .venv/bin/python -m benchmarks.robustness [--rounds 20] [--batch-size 8] [--quick] [--out runs/bench-robustness]

Prints final accuracy, rounds to reach 95% of the strategy's own clean final accuracy, and the MAD
detection rates (malicious contributions rejected, honest contributions rejected); saves a plot and a JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# after the environment above: Flower and TensorFlow read it when they load
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from flower_sim import models  # noqa: E402
from flower_sim.config import SimulationConfig  # noqa: E402
from flower_sim.data import make_splits  # noqa: E402
from flower_sim.simulation import simulate  # noqa: E402

SCENARIOS = {
    "clean": dict(attack="none", malicious=0.0),
    "gaussian 15%": dict(attack="gaussian", malicious=0.15, attack_prob=1.0, sigma=1.0),
    "gaussian 30%": dict(attack="gaussian", malicious=0.30, attack_prob=1.0, sigma=1.0),
    "signflip 30%": dict(attack="signflip", malicious=0.30),
    "labelflip 30%": dict(attack="labelflip", malicious=0.30, flip_fraction=0.5),
}
STRATEGIES = ["mad", "fedavg", "krum", "median", "trimmed"]


def centralized_curve(cfg) -> list[float]:
    """Upper bound: the same model and optimizer trained on the union of all trainers' data, from the same
    initial weights, `local_epochs` epochs per round (so after round r it has had the epochs a federated
    trainer has had); its test accuracy after each round. The bound is the last value."""
    return [s.accuracy for s in centralized_scores(cfg)]


def centralized_scores(cfg) -> list[models.Score]:
    """`centralized_curve`'s model scored after each round (accuracy, and the class-1 counts the QoS task reports)."""
    splits = make_splits(cfg.split_spec())
    x = np.concatenate([t.x for t in splits.trainers])
    y = np.concatenate([t.y for t in splits.trainers])
    model = models.build_model(cfg.model, cfg.lr)
    weights, curve = models.initial_weights(cfg.model, cfg.seed), []
    for rnd in range(1, cfg.rounds + 1):
        seed = int(np.random.SeedSequence([cfg.seed, rnd, 3]).generate_state(1)[0])
        weights, _ = models.train(model, weights, x, y, epochs=cfg.local_epochs, batch_size=cfg.batch_size,
                                  seed=seed)
        curve.append(models.score(model, weights, splits.test.x, splits.test.y))
    return curve


def rounds_to(curve: list[float], target: float) -> int | None:
    return next((i + 1 for i, acc in enumerate(curve) if acc >= target), None)


def detection(records) -> tuple[float | None, float | None]:
    """(share of malicious contributions rejected, share of honest contributions rejected)."""
    mal = [c for r in records for c in r.contributions if c.malicious]
    hon = [c for r in records for c in r.contributions if not c.malicious]
    rate = lambda cs: (sum(not c.accepted for c in cs) / len(cs)) if cs else None  # noqa: E731
    return rate(mal), rate(hon)


def fmt(x, pct=True) -> str:
    if x is None:
        return "—"
    return f"{100 * x:.1f}" if pct else str(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="4 rounds, MLP model: a few minutes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=8,
                        help="trainers' SGD batch (default 8: at simulate's default 16 FedAvg on 175-sample "
                             "partitions plateaus ~1.3 points under the centralized bound)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", default="runs/bench-robustness")
    args = parser.parse_args(argv)

    console = Console()
    base = SimulationConfig(rounds=4 if args.quick else args.rounds, seed=args.seed, batch_size=args.batch_size,
                            model="mlp" if args.quick else "cnn").validate()
    strategies = args.strategies.split(",")
    scenarios = args.scenarios.split(",")
    out = Path(args.out)
    started = time.perf_counter()
    central = centralized_curve(base)
    upper = central[-1]
    console.print(f"centralized upper bound ({base.rounds * base.local_epochs} epochs on the union of the "
                  f"trainers' data): {100 * upper:.1f}%; per round: {' '.join(f'{100 * a:.1f}' for a in central)}")
    results: dict[str, dict[str, dict]] = {}
    for scenario in scenarios:
        for strategy in strategies:
            cfg = replace(base, strategy=strategy, **SCENARIOS[scenario]).validate()
            t0 = time.perf_counter()
            records = simulate(cfg, out / f"{scenario.replace(' ', '-').replace('%', '')}-{strategy}").records
            curve = [r.global_accuracy for r in records]
            caught, false_alarm = detection(records)
            results.setdefault(scenario, {})[strategy] = dict(
                curve=curve, final=curve[-1], caught=caught, false_alarm=false_alarm,
                seconds=time.perf_counter() - t0)
            console.print(f"{scenario:>14} · {strategy:<8} final {100 * curve[-1]:5.1f}%  "
                          f"({time.perf_counter() - t0:.0f} s)")

    table = Table(title=f"Final global accuracy % after {base.rounds} rounds (model {base.model}, seed "
                        f"{base.seed}); centralized upper bound {100 * upper:.1f}%", title_justify="left")
    table.add_column("scenario")
    for s in strategies:
        table.add_column(s, justify="right")
    for scenario in scenarios:
        table.add_row(scenario, *[fmt(results[scenario][s]["final"]) for s in strategies])
    console.print(table)

    if "clean" in results:
        speed = Table(title="Rounds to reach 95% of the strategy's own clean final accuracy (— = never)",
                      title_justify="left")
        speed.add_column("scenario")
        for s in strategies:
            speed.add_column(s, justify="right")
        for scenario in scenarios:
            speed.add_row(scenario, *[fmt(rounds_to(results[scenario][s]["curve"],
                                                    0.95 * results["clean"][s]["final"]), pct=False)
                                      for s in strategies])
        console.print(speed)

    if "clean" in results:
        gap = Table(title="Clean run against the centralized bound, per round (accuracy %; gap in points)",
                    title_justify="left")
        gap.add_column("round")
        gap.add_column("centralized", justify="right")
        for s in strategies:
            gap.add_column(s, justify="right")
        for i, c in enumerate(central):
            gap.add_row(str(i + 1), fmt(c), *[f"{fmt(results['clean'][s]['curve'][i])} "
                                              f"({100 * (results['clean'][s]['curve'][i] - c):+.1f})"
                                              for s in strategies])
        console.print(gap)

    if "mad" in strategies:
        det = Table(title="MAD detection: % of contributions rejected", title_justify="left")
        for col in ("scenario", "malicious rejected", "honest rejected"):
            det.add_column(col, justify="right")
        for scenario in scenarios:
            r = results[scenario]["mad"]
            det.add_row(scenario, fmt(r["caught"]), fmt(r["false_alarm"]))
        console.print(det)

    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(
        {"config": base.as_dict(), "centralized_upper_bound": upper, "centralized_curve": central,
         "results": results}, indent=2) + "\n")
    plot(out / "robustness.png", results, scenarios, strategies, upper)
    console.print(f"{time.perf_counter() - started:.0f} s in all; results in {out}/robustness.json, "
                  f"plot {out}/robustness.png")
    return 0


def plot(path: Path, results, scenarios, strategies, upper: float) -> None:
    import matplotlib  # heavy: matplotlib (0.4 s), only when the plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use("Agg"): no display backend

    fig, axes = plt.subplots(1, len(scenarios), figsize=(3.2 * len(scenarios), 3.4), sharey=True)
    for ax, scenario in zip(list(axes) if len(scenarios) > 1 else [axes], scenarios):
        for s in strategies:
            curve = results[scenario][s]["curve"]
            ax.plot(range(1, len(curve) + 1), curve, marker=".", label=s, linewidth=2 if s == "mad" else 1)
        ax.axhline(upper, color="grey", linestyle=":", label="centralized")
        ax.set(title=scenario, xlabel="round", ylim=(0, 1))
        ax.grid(alpha=0.3)
    (list(axes) if len(scenarios) > 1 else [axes])[0].set_ylabel("global test accuracy")
    (list(axes) if len(scenarios) > 1 else [axes])[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
