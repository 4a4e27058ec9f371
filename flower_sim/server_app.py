"""The Flower ServerApp of a deployment: the same round loop as `fedrollup simulate`, on a runtime's Grid.

Run config keys are `SimulationConfig.to_run_config()` ("rounds", "strategy", "local-epochs", ...) plus
"out" (absolute path of the output folder: a ServerApp's working directory is the SuperLink's; empty:
runs/flwr-<UTC time> there). The trainers are found by asking every connected node for its trainer id
(`trainer.identify`), so Flower's random node ids do not matter. Components (pyproject.toml's
`[tool.flwr.app.components]`, so `flwr run .` runs it on Flower's Simulation Engine):
`serverapp = "flower_sim.server_app:app"`, `clientapp = "flower_sim.trainer:app"`.
"""
from __future__ import annotations

import time
from pathlib import Path

from logging import INFO

from flwr.app import Context
from flwr.common.logger import log
from flwr.serverapp import Grid, ServerApp

from flower_sim import models
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.federation import run_federation
from flower_sim.outputs import RunMetrics, write_outputs

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    start = time.perf_counter()
    cfg = SimulationConfig.from_run_config(dict(context.run_config)).validate()
    out = Path(str(context.run_config.get("out", "")) or f"runs/flwr-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    out.mkdir(parents=True, exist_ok=True)
    log(INFO, "fedrollup: %s, %d trainers in %d groups, %d rounds; outputs in %s", cfg.strategy, cfg.trainers,
        cfg.validators, cfg.rounds, out.resolve())
    models.configure_tensorflow(cfg.seed)
    splits = make_splits(cfg.split_spec())
    metrics = RunMetrics.start(cfg, splits.source)
    records = run_federation(cfg, grid, splits, out, observer=metrics)
    write_outputs(out, metrics, records, elapsed_s=time.perf_counter() - start,
                  title=f"{cfg.strategy}, attack {cfg.attack}, Flower deployment")
    log(INFO, "fedrollup: %d rounds in %.0f s, global accuracy %.2f%%; metrics.json in %s", len(records),
        time.perf_counter() - start, 100 * records[-1].global_accuracy if records else 0.0, out.resolve())
