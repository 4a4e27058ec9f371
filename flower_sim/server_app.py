"""The Flower ServerApp of a deployment: the same round loop as `fedrollup simulate`, on a runtime's Grid.

Run config keys are `SimulationConfig.to_run_config()` ("rounds", "strategy", "local-epochs", ...) plus
"out" (absolute path of the output folder: a ServerApp's working directory is the SuperLink's; empty:
runs/flwr-<UTC time> there), and, to record the run on a rollup, "deployment" (absolute path of the deployment
file `fedrollup chain up` wrote) and "node-url" (its rollups node; empty: http://127.0.0.1:6751, `chain up`'s): the
manager publishes and funds the task, every role registers and reports from its own key, each round is closed on
the rollup beside the next one's training, as in `fedrollup demo` (empty "deployment": nothing is recorded). The trainers are found by asking every connected node for its trainer id
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

from common.errors import ConfigError
from flower_sim import models
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.federation import run_federation
from flower_sim.outputs import RunMetrics, write_outputs
from flower_sim.records import Observers, RollupLink

app = ServerApp()


def open_rollup(cfg: SimulationConfig, deployment_path: str, node_url: str) -> RollupLink:
    """The run's recorder on the rollup the deployment file names, with its task opened and funded."""
    from contracts_config.deployment import load  # a recorded run only: not in the app's FAB, fedrollup's install
    from flower_sim.rollup_roles import RollupRecorder  # a recorded run only (web3), as above
    from rollups_client.node import NodeClient  # a recorded run only, as above
    from rollups_node.config import DEFAULT_HTTP_PORT  # `fedrollup chain up`'s node port, as above

    if not Path(deployment_path).is_absolute():
        raise ConfigError(f"deployment {deployment_path!r}: give an absolute path (a ServerApp runs in the "
                          f"SuperLink's folder)")
    deployment = load(Path(deployment_path))
    node = NodeClient.at(node_url or f"http://127.0.0.1:{DEFAULT_HTTP_PORT}", deployment.application)
    recorder = RollupRecorder(cfg, deployment, node, say=lambda text: log(INFO, "fedrollup: [chain] %s", text))
    recorder.open_task(cfg.rounds)
    log(INFO, "fedrollup: task %d open on the rollup (application %s) in %.1f s", recorder.task_id,
        deployment.application, recorder.timings.setup_s)
    return recorder


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
    deployment = str(context.run_config.get("deployment", ""))
    rollup = open_rollup(cfg, deployment, str(context.run_config.get("node-url", ""))) if deployment else None
    observer = Observers(rollup, metrics) if rollup is not None else metrics
    records = run_federation(cfg, grid, splits, out, observer=observer, rollup=rollup)
    for record in records if rollup is not None else ():
        metrics.add_to_round(record.round, rollup=rollup.round_figures(record.round))
    if rollup is not None:
        metrics.add(rollup={"task_id": rollup.task_id, "deployment": deployment})
    write_outputs(out, metrics, records, elapsed_s=time.perf_counter() - start,
                  title=f"{cfg.strategy}, attack {cfg.attack}, Flower deployment")
    log(INFO, "fedrollup: %d rounds in %.0f s, global accuracy %.2f%%; metrics.json in %s", len(records),
        time.perf_counter() - start, 100 * records[-1].global_accuracy if records else 0.0, out.resolve())
