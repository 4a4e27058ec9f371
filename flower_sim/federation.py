"""The round loop: every validator runs its group's round, the manager closes it, observers are told.

`run_federation` is engine-agnostic: it takes any Flower `Grid` that reaches all trainers (the in-process
grid of `fedrollup simulate`, or a Flower runtime's grid under the ServerApp in `server_app.py`) and gives
each validator a view restricted to its group.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flwr.app import Message, MessageType, RecordDict
from flwr.serverapp import Grid

from flower_sim.attacks import malicious_trainers
from flower_sim.config import SimulationConfig
from flower_sim.data import Splits
from flower_sim.grid import GroupGrid
from flower_sim.manager import Manager, average, closest_validator
from flower_sim.records import RoundObserver, RoundRecord, ValidatorResult
from flower_sim.validator import Validator, ValidatorJudge

Progress = Callable[[str], None]


def trainer_nodes(grid: Grid) -> dict[int, int]:
    """Trainer id -> Flower node id, asked of every node with a query message (node ids are not stable
    across deployments; a trainer's partition id is)."""
    queries = [Message(RecordDict({}), dst_node_id=node, message_type=MessageType.QUERY)
               for node in grid.get_node_ids()]
    return {int(r.content["metrics"]["trainer-id"]): r.metadata.src_node_id
            for r in grid.send_and_receive(queries) if not r.has_error()}


def build_validators(cfg: SimulationConfig, grid: Grid, splits: Splits, out_dir: Path) -> list[Validator]:
    """One validator per group; trainer t belongs to group `cfg.group_of(t)` (contiguous blocks)."""
    malicious = malicious_trainers(cfg.trainers, cfg.malicious, cfg.seed) if cfg.attack != "none" else frozenset()
    node_of = trainer_nodes(grid)
    missing = sorted(set(range(cfg.trainers)) - set(node_of))
    if missing:
        raise RuntimeError(f"trainers {missing} did not answer: is every SuperNode connected?")
    validators = []
    for v in range(cfg.validators):
        nodes = [node_of[t] for t in range(cfg.trainers) if cfg.group_of(t) == v]
        judge = ValidatorJudge(v, splits.validators[v], cfg)
        validators.append(Validator(v, GroupGrid(grid, nodes), judge, cfg, malicious, out_dir))
    return validators


def run_federation(cfg: SimulationConfig, grid: Grid, splits: Splits, out_dir: Path,
                   observer: RoundObserver | None = None, progress: Progress | None = None) -> list[RoundRecord]:
    """Run `cfg.rounds` rounds and return their records (the caller writes metrics.json)."""
    say = progress or (lambda _msg: None)
    manager = Manager(cfg.model, cfg.seed, splits.test, out_dir)
    validators = build_validators(cfg, grid, splits, out_dir)
    global_weights = manager.initial_weights()
    records = []
    for rnd in range(1, cfg.rounds + 1):
        outcomes = []
        for validator in validators:
            say(f"round {rnd}: validator {validator.validator_id} sends the global model to its "
                f"{len(validator.grid.get_node_ids())} trainers, judges and aggregates their updates")
            outcome = validator.run_round(rnd, global_weights)
            outcomes.append(outcome)
            if observer is not None:
                observer.on_validator_report(outcome.report)
        say(f"round {rnd}: manager averages {len(outcomes)} validator models and scores them on the test set")
        start = time.perf_counter()
        global_weights = average([o.weights for o in outcomes])
        averaging_s = time.perf_counter() - start
        global_score = manager.evaluate(global_weights)
        scores = [manager.evaluate(o.weights) for o in outcomes]
        file_name, digest = manager.save_global(rnd, global_weights)
        results = tuple(ValidatorResult(
            validator_id=o.report.validator_id, own_accuracy=o.report.own_accuracy,
            own_accuracy_bps=o.report.own_accuracy_bps, aggregated_accuracy=s.accuracy,
            aggregated_accuracy_bps=s.bps, accepted=o.report.accepted, rejected=o.report.rejected,
            rejected_malicious=o.report.rejected_malicious, model_file=o.report.model_file,
            model_sha256=o.report.model_sha256) for o, s in zip(outcomes, scores))
        record = RoundRecord(
            round=rnd, global_accuracy=global_score.accuracy, global_accuracy_bps=global_score.bps,
            global_loss=global_score.loss, global_model_file=file_name, global_sha256=digest,
            best_validator=closest_validator([s.bps for s in scores], global_score.bps),
            validators=results,
            contributions=tuple(c for o in outcomes for c in o.report.contributions),
            timings={"training_s": sum(o.report.training_s for o in outcomes),
                     "validation_s": sum(o.report.validation_s for o in outcomes),
                     "aggregation_s": sum(o.report.aggregation_s for o in outcomes) + averaging_s})
        records.append(record)
        if observer is not None:
            observer.on_round_closed(record)
    return records
