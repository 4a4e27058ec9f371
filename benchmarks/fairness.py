"""Fairness benchmark (issue 14): is the validation fair to honest non-IID trainers, and does it catch attacks?

Grid: partitions {iid, dirichlet α 0.3, pathological 2 classes per trainer} × attacks {none, gaussian (σ 1, always
on), scaled (×10), signflip, labelflip 50 %, labelflip 20 %} by 30 % of the trainers × strategies {mad, trust,
fedavg, krum, median, trimmed} × seeds (different data splits, initial model and attackers). Per cell: the final
global accuracy (mean ± sd over the seeds) and, for the validating strategies (mad, trust), the share of honest and
of malicious contributions rejected (the malicious share in round 1 too: the issue asks for catching from round 1).
The clean FedAvg run on the same partition is the accuracy baseline (always run). A cell where `trust` misses one of
the issue's targets is marked ✗ and the misses are listed under the tables.

Every run's result is one JSON file in `--out`, named by its partition, attack, strategy, seed, model and rounds,
written as the run finishes and reused when it exists: a killed benchmark, restarted, repeats nothing.

For the validating strategies the file also keeps every contribution's (round, trainer, malicious, cosine_bps,
norm_centi, accepted): another rule can be tried on the measures without training again.

Cost, measured here (2 cores shared with other jobs; 20 trainers, 2 validators, batch 8, Dirichlet α 0.3): one
20-round run takes 27-31 s with the MLP and 80-96 s with the CNN, so the full grid (324 runs) is ~2.7 h with the MLP
and ~7.5 h with the CNN. The grid therefore defaults to `--model mlp`; `--model cnn` runs it on the paper's model.
The MLP is weaker (clean FedAvg on Dirichlet 0.3 after 20 rounds: 91.9 % against the CNN's 96.7 %, seed 42), but
the verdicts behave alike (trust's first, strict rule on Dirichlet 0.3 × signflip, same seed: honest rejected 26.8 %
with the MLP, 28.6 % with the CNN; malicious rejected 98.3 % with both).

    .venv/bin/python -m benchmarks.fairness [--quick] [--rounds 20] [--seeds 3] [--model mlp] [--trainers 20]
        [--partitions iid,dirichlet,pathological] [--attacks none,gaussian,scaled,signflip,labelflip50,labelflip20]
        [--strategies mad,trust,fedavg,krum,median,trimmed] [--out runs/bench-fairness] [--figure docs/fairness.png]

`--shard K/N` runs every N-th run from the K-th (N processes share the grid: `--shard 0/2` and `--shard 1/2` on 2
cores); `--cached` reports the runs already in `--out` without training any (a grid still running, or measured over
several sittings): each partition's table says how many seeds its cells have.

`--quick`: 1 seed, 5 rounds, every partition, attacks none, scaled, signflip, labelflip50,
strategies mad, trust, fedavg, median (48 runs, ~8 min); its figure goes to `--out`, not docs/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
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

from benchmarks.privacy import spread  # noqa: E402
from benchmarks.robustness import detection, fmt  # noqa: E402
from common.errors import ConfigError  # noqa: E402
from flower_sim.config import SimulationConfig  # noqa: E402
from flower_sim.simulation import simulate  # noqa: E402

MALICIOUS = 0.30
PARTITIONS = {
    "iid": dict(partition="iid"),
    "dirichlet": dict(partition="dirichlet", alpha=0.3),
    "pathological": dict(partition="pathological", classes_per_trainer=2),
}
ATTACKS = {
    "none": dict(attack="none", malicious=0.0),
    "gaussian": dict(attack="gaussian", malicious=MALICIOUS, attack_prob=1.0, sigma=1.0),
    "scaled": dict(attack="scaled", malicious=MALICIOUS, boost=10.0),
    "signflip": dict(attack="signflip", malicious=MALICIOUS),
    "labelflip50": dict(attack="labelflip", malicious=MALICIOUS, flip_fraction=0.5),
    "labelflip20": dict(attack="labelflip", malicious=MALICIOUS, flip_fraction=0.2),
}
STRATEGIES = ("mad", "trust", "fedavg", "krum", "median", "trimmed")
VALIDATING = ("mad", "trust")
ROBUST = ("krum", "median", "trimmed")
QUICK = dict(partitions="iid,dirichlet,pathological", attacks="none,scaled,signflip,labelflip50",
             strategies="mad,trust,fedavg,median")

# the targets for trust (mean of the seeds): honest rejected at most 5 %; malicious rejected at least ...
HONEST_MAX = 0.05
CATCH_MIN = {"gaussian": 0.95, "scaled": 0.95, "signflip": 0.95, "labelflip50": 0.80}
ACCURACY_SLACK = 0.01  # final accuracy within 1 point of the clean FedAvg run on the same partition


def run_path(out: Path, partition: str, attack: str, strategy: str, seed: int, cfg: SimulationConfig) -> Path:
    epochs = f"-ve{cfg.validator_epochs}" if cfg.validator_epochs != 1 else ""
    return out / f"{partition}-{attack}-{strategy}-seed{seed}-{cfg.model}-r{cfg.rounds}{epochs}.json"


def run_one(cfg: SimulationConfig) -> dict:
    """One run's result: accuracy per round, and the validators' verdicts as rates (None for a baseline)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fairness-") as scratch:  # its models are not kept: 324 runs of them
        records = simulate(cfg, Path(scratch)).records
    caught, honest = detection(records)
    first_caught, _ = detection(records[:1])
    measures = [[r.round, c.trainer_id, c.malicious, c.cosine_bps, c.norm_centi, c.accepted]
                for r in records for c in r.contributions] if cfg.strategy in VALIDATING else []
    return dict(curve=[r.global_accuracy for r in records], final=records[-1].global_accuracy,
                malicious_rejected=caught, honest_rejected=honest, malicious_rejected_round1=first_caught,
                seconds=time.perf_counter() - t0, contributions=measures)


def mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def misses(cell: dict, attack: str, baseline: float | None, best_robust: float | None) -> list[str]:
    """The issue's targets `trust`'s cell misses, in words (means over the seeds)."""
    found = []
    honest = mean(cell["honest_rejected"])
    if honest is not None and honest > HONEST_MAX:
        found.append(f"honest rejected {fmt(honest)} % > {fmt(HONEST_MAX)} %")
    if attack in CATCH_MIN:
        for key, when in (("malicious_rejected", ""), ("malicious_rejected_round1", " in round 1")):
            caught = mean(cell[key])
            if caught is not None and caught < CATCH_MIN[attack]:
                found.append(f"malicious rejected{when} {fmt(caught)} % < {fmt(CATCH_MIN[attack])} %")
    final = statistics.fmean(cell["final"])
    if baseline is not None and final < baseline - ACCURACY_SLACK:
        found.append(f"accuracy {fmt(final)} % more than 1 point under clean FedAvg's {fmt(baseline)} %")
    if attack != "none" and best_robust is not None and final < best_robust:
        found.append(f"accuracy {fmt(final)} % under the best of krum/median/trimmed ({fmt(best_robust)} %)")
    return found


def choose(value: str, known, what: str) -> list[str]:
    chosen = [v for v in value.split(",") if v]
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        raise ConfigError(f"--{what} takes a comma-separated list of {', '.join(known)}; got {value!r}")
    return chosen


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N); ConfigError (one line) unless 0 <= K < N."""
    k, sep, n = text.partition("/")
    if not (sep and k.isdecimal() and n.isdecimal() and 0 <= int(k) < int(n)):
        raise ConfigError(f"--shard is K/N with 0 <= K < N (e.g. 0/2), got {text!r}")
    return int(k), int(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 5 rounds, 48 runs: ~8 minutes")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per run (default 20; --quick 5)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per cell, 42, 43, ... (default 3; --quick 1)")
    parser.add_argument("--model", default="mlp", help="the trainers' model (default mlp: see the cost above)")
    parser.add_argument("--trainers", type=int, default=20, help="trainers, in 2 validator groups")
    parser.add_argument("--validator-epochs", type=int, default=1,
                        help="epochs of the validators' reference model (mad's and trust's yardstick; the paper: 1)")
    parser.add_argument("--batch-size", type=int, default=8, help="trainers' SGD batch (as benchmarks.robustness)")
    parser.add_argument("--partitions", default=None, help=f"default {','.join(PARTITIONS)}")
    parser.add_argument("--attacks", default=None, help=f"default {','.join(ATTACKS)}")
    parser.add_argument("--strategies", default=None, help=f"default {','.join(STRATEGIES)}")
    parser.add_argument("--out", default="runs/bench-fairness")
    parser.add_argument("--figure", default=None, help="heatmap (default docs/fairness.png; --quick: in --out)")
    parser.add_argument("--cached", action="store_true",
                        help="report only the runs already in --out (train nothing): a grid measured in several "
                             "sittings, or still running elsewhere; each cell says how many seeds it has")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="run only every N-th run from the K-th (K in 0..N-1): N processes share the grid's "
                             "runs (each run's JSON is its own file); a run without --shard then reports them all")
    args = parser.parse_args(argv)
    console = Console(width=200)  # the tables are wide; a pasted report is too
    try:
        return run(args, console)
    except ConfigError as err:
        console.print(f"[red]error:[/] {err}")
        return 2


def run(args: argparse.Namespace, console: Console) -> int:
    quick = QUICK if args.quick else {}
    partitions = choose(args.partitions or quick.get("partitions", ",".join(PARTITIONS)), PARTITIONS, "partitions")
    attacks = choose(args.attacks or quick.get("attacks", ",".join(ATTACKS)), ATTACKS, "attacks")
    strategies = choose(args.strategies or quick.get("strategies", ",".join(STRATEGIES)), STRATEGIES, "strategies")
    rounds = args.rounds or (5 if args.quick else 20)
    seeds = args.seeds or (1 if args.quick else 3)
    if rounds < 1 or seeds < 1:
        raise ConfigError(f"--rounds and --seeds must be at least 1, got {rounds} and {seeds}")
    base = SimulationConfig(rounds=rounds, trainers=args.trainers, model=args.model, batch_size=args.batch_size,
                            validator_epochs=args.validator_epochs).validate()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = Path(args.figure) if args.figure else (out / "fairness.png" if args.quick else Path("docs/fairness.png"))

    cells = [(p, a, s) for p in partitions for a in attacks for s in strategies]
    cells += [(p, "none", "fedavg") for p in partitions if (p, "none", "fedavg") not in cells]  # the baselines
    # seed by seed: a grid stopped half-way has every cell measured on the first seed(s)
    jobs = [(p, a, s, 42 + i) for i in range(seeds) for p, a, s in cells]
    shard, shards = parse_shard(args.shard)
    results: dict[tuple[str, str, str], dict[str, list]] = {}
    started = time.perf_counter()
    for n, (partition, attack, strategy, seed) in enumerate(jobs, 1):
        if (n - 1) % shards != shard:
            continue
        cfg = replace(base, strategy=strategy, seed=seed, **PARTITIONS[partition], **ATTACKS[attack]).validate()
        path = run_path(out, partition, attack, strategy, seed, cfg)
        reused = path.is_file()
        if not reused and args.cached:
            continue
        if reused:
            result = json.loads(path.read_text())
        else:
            result = run_one(cfg)
            path.write_text(json.dumps(dict(partition=partition, attack=attack, strategy=strategy, seed=seed,
                                            config=cfg.as_dict(), **result), indent=1) + "\n")
        cell = results.setdefault((partition, attack, strategy), {})
        for key in ("final", "honest_rejected", "malicious_rejected", "malicious_rejected_round1"):
            cell.setdefault(key, []).append(result[key])
        rejection = (f", honest rejected {fmt(result['honest_rejected'])} %, malicious rejected "
                     f"{fmt(result['malicious_rejected'])} %" if strategy in VALIDATING else "")
        console.print(f"cell {n}/{len(jobs)}: {partition} × {attack} × {strategy}, seed {seed}: "
                      f"{fmt(result['final'])} %{rejection}, "
                      + ("reused" if reused else f"{result['seconds']:.0f} s"))

    if shards > 1:
        console.print(f"shard {shard}/{shards} done in {time.perf_counter() - started:.0f} s; run without --shard for "
                      f"the tables and the figure")
        return 0
    noted = report(console, results, partitions, attacks, strategies, base)
    plot(figure, results, partitions, attacks, strategies)
    console.print(f"{time.perf_counter() - started:.0f} s in all; one JSON per run in {out}/, figure {figure}"
                  + (f"; trust misses {noted} target(s)" if noted else ""))
    return 0


def report(console: Console, results: dict, partitions: list[str], attacks: list[str], strategies: list[str],
           base: SimulationConfig) -> int:
    """One table per partition (accuracy, and the validators' rejections), then trust's misses; returns how many."""
    noted = []
    for partition in partitions:
        clean = results.get((partition, "none", "fedavg"))
        baseline = statistics.fmean(clean["final"]) if clean else None
        seeds = sorted({len(c["final"]) for (p, _, _), c in results.items() if p == partition}) or [0]
        console.print(f"[bold]{partition}[/]: final accuracy % (mean ± sd over {seeds[0]}"
                      + (f"–{seeds[-1]}" if seeds[-1] != seeds[0] else "") + f" seed(s)) after {base.rounds} rounds, "
                      f"model {base.model}; (h honest / m malicious contributions rejected %); clean FedAvg baseline "
                      f"{fmt(baseline)} %")
        table = Table()
        table.add_column("attack (30 %)")
        for s in strategies:
            table.add_column(s, justify="right")
        for attack in attacks:
            finals = {s: statistics.fmean(results[(partition, attack, s)]["final"]) for s in strategies
                      if (partition, attack, s) in results}
            robust = [finals[s] for s in ROBUST if s in finals]
            row = []
            for s in strategies:
                cell = results.get((partition, attack, s))
                if cell is None:  # --cached, and not measured yet
                    row.append("—")
                    continue
                text = spread(cell["final"])
                if s in VALIDATING:
                    text += f" (h {fmt(mean(cell['honest_rejected']))} / m {fmt(mean(cell['malicious_rejected']))})"
                if s == "trust":
                    missed = misses(cell, attack, baseline, max(robust) if robust else None)
                    noted += [f"{partition} × {attack}: {m}" for m in missed]
                    text += " ✗" if missed else ""
                row.append(text)
            table.add_row(attack, *row)
        console.print(table)
    if noted:
        console.print("trust misses the issue's targets (✗):\n" + "\n".join(f"  {n}" for n in noted))
    return len(noted)


def plot(path: Path, results: dict, partitions: list[str], attacks: list[str], strategies: list[str]) -> None:
    """Per partition: final accuracy as a strategies × attacks heatmap (top) and, when trust ran, its honest and
    malicious rejection rates per attack (bottom)."""
    import matplotlib  # heavy: matplotlib (0.4 s), only when the figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use("Agg"): no display backend

    rows = 2 if "trust" in strategies else 1
    fig, axes = plt.subplots(rows, len(partitions), figsize=(1.1 * len(attacks) * len(partitions) + 1.5,
                                                             0.45 * len(strategies) + 1.6 + (2.2 if rows == 2 else 0)),
                             squeeze=False, gridspec_kw={"height_ratios": [len(strategies), 2][:rows]})
    for col, partition in enumerate(partitions):
        grid = np.array([[100 * statistics.fmean(results[(partition, a, s)]["final"])
                          if (partition, a, s) in results else np.nan for a in attacks] for s in strategies])
        draw(axes[0][col], grid, strategies, attacks, f"{partition}: final accuracy %", "viridis", (0, 100))
        if rows == 2:
            rates = np.array([[percent(mean(results.get((partition, a, "trust"), {}).get(key, [])))
                               for a in attacks] for key in ("honest_rejected", "malicious_rejected")])
            draw(axes[1][col], rates, ["trust: honest rej.", "trust: malicious rej."], attacks,
                 f"{partition}: trust's rejections %", "magma", (0, 100))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def percent(rate: float | None) -> float:
    """A rate as a heatmap's percent; none (no malicious contribution to reject) as NaN, drawn blank with "—"."""
    return float("nan") if rate is None else 100 * rate


def draw(ax, grid, rows: list[str], columns: list[str], title: str, cmap: str, limits: tuple[int, int]) -> None:
    """One annotated heatmap."""
    ax.imshow(grid, cmap=cmap, vmin=limits[0], vmax=limits[1], aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title(title, fontsize=9)
    for i in range(len(rows)):
        for j in range(len(columns)):
            ax.text(j, i, "—" if np.isnan(grid[i][j]) else f"{grid[i][j]:.1f}", ha="center", va="center", fontsize=7,
                    color="white" if grid[i][j] < 60 else "black")


if __name__ == "__main__":
    raise SystemExit(main())
