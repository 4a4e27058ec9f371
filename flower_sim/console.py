"""What a researcher sees while `fedrollup simulate` runs: a progress bar, one line per closed round,
the per-round table, and where the outputs went."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from flower_sim.config import SimulationConfig
from flower_sim.privacy import Budget
from flower_sim.records import Observers, RollupLink, RoundObserver, RoundRecord, ValidatorReport


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def violations(record: RoundRecord) -> str:
    """The QoS task's round figures in words ("" for MNIST)."""
    if record.global_violation_recall is None:
        return ""
    return (f"; it predicts {pct(record.global_violation_recall)} of the next-window SLA violations (recall), "
            f"{pct(record.global_violation_precision)} of its alarms are real (precision); "
            f"{pct(record.test_violation_rate)} of the test windows are violations")


def round_table(records: list[RoundRecord], cfg: SimulationConfig) -> Table:
    table = Table(title=f"{cfg.strategy} · attack {cfg.attack} · {cfg.trainers} trainers / "
                        f"{cfg.validators} validators", title_justify="left")
    table.add_column("round", justify="right")
    table.add_column("global acc", justify="right")
    qos = cfg.task == "qos"
    if qos:
        table.add_column("violation recall / precision", justify="right")
    for v in range(cfg.validators):
        table.add_column(f"V{v} own / model", justify="right")
    table.add_column("accepted", justify="right")
    table.add_column("rejected", justify="right")
    table.add_column("rejected & malicious", justify="right")
    table.add_column("best", justify="right")
    table.add_column("seconds (train/valid/aggr)", justify="right")
    for r in records:
        t = r.timings
        table.add_row(
            str(r.round), pct(r.global_accuracy),
            *([f"{pct(r.global_violation_recall)} / {pct(r.global_violation_precision)}"] if qos else []),
            *[f"{pct(v.own_accuracy)} / {pct(v.aggregated_accuracy)}" for v in r.validators],
            str(sum(v.accepted for v in r.validators)), str(sum(v.rejected for v in r.validators)),
            str(sum(v.rejected_malicious for v in r.validators)), f"V{r.best_validator}",
            f"{t['training_s']:.1f} / {t['validation_s']:.1f} / {t['aggregation_s']:.2f}")
    return table


class ProgressObserver:
    """Moves the progress bar as validators report and prints a line when a round closes."""

    def __init__(self, console: Console, progress: Progress, task) -> None:
        self.console, self.progress, self.task = console, progress, task

    def on_validator_report(self, report: ValidatorReport) -> None:
        self.progress.advance(self.task)

    def on_round_closed(self, record: RoundRecord) -> None:
        self.progress.advance(self.task)
        self.console.print(
            f"round {record.round}: global accuracy {pct(record.global_accuracy)}"
            + (f" ({record.global_integer_bps / 100:.2f}% by the rollup's integer inference on the public test set)"
               if record.global_integer_bps is not None else "") + ", "
            f"{sum(v.accepted for v in record.validators)} accepted, "
            f"{sum(v.rejected for v in record.validators)} rejected "
            f"({sum(v.rejected_malicious for v in record.validators)} of them malicious)" + violations(record))
        for c in record.contributions:
            if c.reason:
                self.console.print(f"  trainer {c.trainer_id} (validator {c.validator_id}) rejected: {c.reason}")


def run_with_display(cfg: SimulationConfig, out: Path, observers: Sequence[RoundObserver] = (),
                     rollup: RollupLink | None = None) -> int:
    """Run `simulate` with a progress display; `observers` (e.g. the rollup recorder) see every round first;
    `rollup` (the recorder too) gives the task the roles sign for."""
    from flower_sim.simulation import simulate  # heavy: Flower (0.3 s); `fedrollup --help` loads this module

    console = Console(stderr=False)
    console.print(f"[bold]fedrollup simulate[/]: {cfg.trainers} trainers in {cfg.validators} groups, "
                  f"strategy {cfg.strategy}" + (f" (MAD {cfg.mad:g})" if cfg.strategy == "mad" else "")
                  + f", attack {cfg.attack} on {cfg.malicious_count} trainers, {cfg.rounds} rounds, task {cfg.task}, "
                  f"model {cfg.model}, seed {cfg.seed}"
                  + (f", SLA: at least {cfg.sla_mbps:g} Mbit/s, RTT at most {cfg.sla_rtt_ms:g} ms, loss at most "
                     f"{cfg.sla_loss_pct:g} %" if cfg.task == "qos" else ""))
    if cfg.dp != "none":
        console.print(Budget.account(cfg.dp_params(), cfg.rounds, cfg.dp_delta).describe())
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("loading TensorFlow and the data", total=cfg.rounds * (cfg.validators + 1))
        observer = Observers(*observers, ProgressObserver(console, progress, task))
        result = simulate(cfg, out, observer=observer,
                          progress=lambda msg: progress.update(task, description=msg), rollup=rollup)
    console.print(round_table(result.records, cfg))
    console.print(f"finished in {result.elapsed_s:.0f} s. Outputs in {out}/: metrics.json, accuracy.png, "
                  f"round-NNN.frq (global model, FRQ1 int8) and round-NNN-validator-V.frq")
    return 0
