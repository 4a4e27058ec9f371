"""`simulate`: one whole federated run in this process (Ray-free), with its outputs written to disk."""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Message

from flower_sim import models, trainer
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.federation import Progress, run_federation
from flower_sim.grid import InProcessGrid
from flower_sim.outputs import RunMetrics, write_outputs
from flower_sim.records import Observers, RollupLink, RoundObserver, RoundRecord


@dataclass
class RunResult:
    records: list[RoundRecord]
    out_dir: Path
    metrics_path: Path
    plot_path: Path
    elapsed_s: float


def simulate(cfg: SimulationConfig, out_dir: Path, observer: RoundObserver | None = None,
             progress: Progress | None = None, rollup: RollupLink | None = None,
             client_app: Callable[..., Message] | None = None) -> RunResult:
    """Run the federation described by `cfg` (validated) and write metrics.json, the models' .frq files and the
    plot; `rollup`: the run's rollup side, when a rollup records it; `client_app`: what answers the trainers'
    messages, when not `trainer.app` as it is (e.g. `shapley_run.UpdateTap` over `actors.ActorsApp`)."""
    say = progress or (lambda _msg: None)
    logging.getLogger("flwr").setLevel(logging.ERROR)  # Flower's INFO lines and the "evaluation skipped" warning would drown ours
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    models.configure_tensorflow(cfg.seed)
    random.seed(cfg.seed)  # Flower's node sampling uses `random`; with fraction 1 it only orders nodes
    say("splitting the data: test set, validator sets, trainer partitions")
    splits = make_splits(cfg.split_spec())
    grid = InProcessGrid(client_app or trainer.app, cfg.trainers, cfg.to_run_config())
    metrics = RunMetrics.start(cfg, splits.source)
    observers = Observers(*([observer] if observer is not None else []), metrics)
    records = run_federation(cfg, grid, splits, out_dir, observer=observers, progress=progress, rollup=rollup)
    for record in records if rollup is not None else ():
        figures = rollup.round_figures(record.round)
        if figures:
            metrics.add_to_round(record.round, rollup=figures)
    elapsed = time.perf_counter() - start
    metrics_path, plot_path = write_outputs(out_dir, metrics, records, elapsed_s=elapsed,
                                            title=f"{cfg.strategy}, attack {cfg.attack}, {cfg.trainers} trainers")
    return RunResult(records, out_dir, metrics_path, plot_path, elapsed)
