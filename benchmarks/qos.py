"""QoS task benchmark: federated SLA-violation prediction (MAD and FedAvg, 20 trainers) against a centralized bound.

For every seed, the same data (`flower_sim.qos_data`: each station's own windows, non-IID by cell), the same
initial model and the same SGD settings; without attack, and with 30% label flippers (each swaps violation and
compliance on half its windows), where MAD's validation should matter. The centralized bound is the same Keras
model trained on the union of all trainers' windows for the same epochs budget (rounds x local epochs,
`benchmarks.robustness`), scored on the same test set. Also shown: the always-compliant model (predicts no
violation), the floor a model must beat.

    .venv/bin/python -m benchmarks.qos [--quick] [--seeds 1,2,3] [--rounds 10] [--out runs/bench-qos]

Prints mean ± standard deviation over the seeds of accuracy, violation precision and violation recall (class 1,
the rare class) of the final global model, and how many label flippers' updates MAD rejected; saves them as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from itertools import product
from pathlib import Path

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# after the environment above: Flower and TensorFlow read it when they load
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.robustness import centralized_scores  # noqa: E402
from flower_sim.config import SimulationConfig  # noqa: E402
from flower_sim.simulation import simulate  # noqa: E402

FIGURES = ("accuracy", "precision", "recall")
# The QoS task's training settings for its figures (simulate's lr 0.1, batch 16 learn it slowly): also
# benchmarks.privacy's for --task qos
QOS_LR, QOS_BATCH_SIZE = 0.3, 8
SCENARIOS = {"": dict(attack="none", malicious=0.0),
             ", labelflip 30%": dict(attack="labelflip", malicious=0.3, flip_fraction=0.5)}


def spread(values: list[float]) -> str:
    """Mean ± standard deviation, in percent."""
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, seeds 1,2,3: a few minutes")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--trainers", type=int, default=20)
    parser.add_argument("--lr", type=float, default=QOS_LR, help="SGD learning rate, federated and centralized alike")
    parser.add_argument("--batch-size", type=int, default=QOS_BATCH_SIZE)
    parser.add_argument("--out", default="runs/bench-qos")
    args = parser.parse_args(argv)

    console = Console()
    seeds = [1, 2, 3] if args.quick else [int(s) for s in args.seeds.split(",")]
    base = SimulationConfig(task="qos", rounds=5 if args.quick else args.rounds, trainers=args.trainers,
                            attack="none", malicious=0.0, lr=args.lr, batch_size=args.batch_size).validate()
    out = Path(args.out)
    results: dict[str, dict[str, list[float]]] = {}
    rates: list[float] = []
    judged = {"malicious": [0, 0], "honest": [0, 0]}  # MAD under attack: [rejected, all] updates

    def keep(name: str, accuracy: float, precision: float, recall: float) -> None:
        row = results.setdefault(name, {f: [] for f in FIGURES})
        for figure, value in zip(FIGURES, (accuracy, precision, recall)):
            row[figure].append(value)

    started = time.perf_counter()
    for seed in seeds:
        for (scenario, attack), strategy in product(SCENARIOS.items(), ("mad", "fedavg")):
            cfg = replace(base, seed=seed, strategy=strategy, **attack).validate()
            records = simulate(cfg, out / f"seed{seed}-{strategy}-{cfg.attack}").records
            last = records[-1]
            keep(f"federated, {strategy}{scenario}", last.global_accuracy, last.global_violation_precision,
                 last.global_violation_recall)
            if strategy == "mad" and cfg.attack != "none":
                for c in (c for r in records for c in r.contributions):
                    judged["malicious" if c.malicious else "honest"][0] += not c.accepted
                    judged["malicious" if c.malicious else "honest"][1] += 1
            console.print(f"seed {seed} · {strategy}{scenario}: accuracy {100 * last.global_accuracy:.1f}%, "
                          f"violation recall {100 * last.global_violation_recall:.1f}%, precision "
                          f"{100 * last.global_violation_precision:.1f}%")
        bound = centralized_scores(replace(base, seed=seed))[-1]
        keep("centralized bound", bound.accuracy, bound.precision, bound.recall)
        rates.append(bound.actual_positive / bound.total)
        keep("always compliant", 1 - rates[-1], 0.0, 0.0)
        console.print(f"seed {seed} · centralized accuracy {100 * bound.accuracy:.1f}%, violation recall "
                      f"{100 * bound.recall:.1f}%; {100 * rates[-1]:.1f}% of the test windows are violations")

    table = Table(title=f"QoS task, {base.trainers} trainers in {base.validators} cells, {base.rounds} rounds x "
                        f"{base.local_epochs} local epochs (lr {base.lr:g}, batch {base.batch_size}), seeds "
                        f"{','.join(map(str, seeds))}: mean ± std %; test windows in violation "
                        f"{spread(rates)}", title_justify="left")
    table.add_column("model")
    for figure in FIGURES:
        table.add_column(f"violation {figure}" if figure != "accuracy" else figure, justify="right")
    for name, row in results.items():
        table.add_row(name, *[spread(row[f]) for f in FIGURES])
    console.print(table)
    (bad, bad_all), (good, good_all) = judged["malicious"], judged["honest"]
    if bad_all:
        console.print(f"MAD under label flipping rejected {bad} of the flippers' {bad_all} updates "
                      f"({100 * bad / bad_all:.0f}%) and {good} of the {good_all} honest ones "
                      f"({100 * good / good_all:.1f}%)")
    console.print(f"{time.perf_counter() - started:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"config": base.as_dict(), "seeds": seeds, "violation_rate": rates,
                                                  "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
