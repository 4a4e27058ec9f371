"""The round loop: every validator runs its group's round, the manager closes it, observers are told.

`run_federation` is engine-agnostic: it takes any Flower `Grid` that reaches all trainers (the in-process
grid of `fedrollup simulate`, or a Flower runtime's grid under the ServerApp in `server_app.py`) and gives
each validator a view restricted to its group.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp import Grid

from flower_sim.config import SimulationConfig
from flower_sim.data import Splits
from flower_sim.grid import GroupGrid
from flower_sim.manager import Manager, RoundCloser
from flower_sim.records import RollupLink, RoundObserver, RoundRecord
from flower_sim.signatures import RollupTask
from flower_sim.validator import Validator, ValidatorJudge

Progress = Callable[[str], None]


def trainer_nodes(grid: Grid) -> dict[int, int]:
    """Trainer id -> Flower node id, asked of every node with a query message (node ids are not stable
    across deployments; a trainer's partition id is)."""
    queries = [Message(RecordDict({}), dst_node_id=node, message_type=MessageType.QUERY)
               for node in grid.get_node_ids()]
    return {int(r.content["metrics"]["trainer-id"]): r.metadata.src_node_id
            for r in grid.send_and_receive(queries) if not r.has_error()}


def build_validators(cfg: SimulationConfig, grid: Grid, splits: Splits, out_dir: Path,
                     rollup: RollupTask | None = None) -> list[Validator]:
    """One validator per group; trainer t belongs to group `cfg.group_of(t)` (contiguous blocks). With a rollup
    task, every trainer signs its updates for it and every validator checks and keeps those signatures."""
    node_of = trainer_nodes(grid)
    missing = sorted(set(range(cfg.trainers)) - set(node_of))
    if missing:
        raise RuntimeError(f"trainers {missing} did not answer ({len(node_of)} of {cfg.trainers} reached): is every "
                           f"SuperNode connected? (`flwr run .`: --federation-config "
                           f"\"num-supernodes={cfg.trainers}\")")
    validators = []
    for v in range(cfg.validators):
        nodes = [node_of[t] for t in range(cfg.trainers) if cfg.group_of(t) == v]
        judge = ValidatorJudge(v, splits.validators[v], cfg)
        validators.append(Validator(v, GroupGrid(grid, nodes), judge, cfg, cfg.malicious_trainers, out_dir,
                                    rollup=rollup))
    return validators


def run_federation(cfg: SimulationConfig, grid: Grid, splits: Splits, out_dir: Path,
                   observer: RoundObserver | None = None, progress: Progress | None = None,
                   rollup: RollupLink | None = None) -> list[RoundRecord]:
    """Run `cfg.rounds` rounds and return their records (the caller writes metrics.json)."""
    say = progress or (lambda _msg: None)
    manager = Manager(cfg.model, cfg.seed, splits, out_dir)
    closer = RoundCloser(manager, observer, rollup)
    validators = build_validators(cfg, grid, splits, out_dir, rollup.signing_task() if rollup else None)
    global_weights, global_model = manager.initial_weights(), b""
    records = []
    for rnd in range(1, cfg.rounds + 1):
        outcomes = []
        for validator in validators:
            say(f"round {rnd}: validator {validator.validator_id} sends the global model to its "
                f"{len(validator.grid.get_node_ids())} trainers, judges and aggregates their updates")
            outcome = validator.run_round(rnd, global_weights, global_model)
            outcomes.append(outcome)
            closer.report(outcome.report)
        say(f"round {rnd}: manager averages {len(outcomes)} validator models (int8, as the rollup does) and scores "
            f"them on the test set")
        closed = closer.close(rnd, outcomes)
        global_weights, global_model = closed.global_weights, closed.record.global_model
        records.append(closed.record)
    if rollup is not None:
        rollup.finish()  # the last round's close (the rollup closes each round beside the next one's training)
    return records
