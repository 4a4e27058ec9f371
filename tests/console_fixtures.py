"""A recorded federated history on a real anvil + node + backend, for the console and audit tests.

The rounds are recorded by the real `RollupRecorder` from the roles' own keys; only the FL numbers are
written by hand (no TensorFlow here), with `.npz` stand-in files whose SHA-256 digests go on chain.
"""
from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from contracts_config.deployment import Deployment
from flower_sim.config import SimulationConfig
from flower_sim.records import Contribution, RoundRecord, ValidatorReport, ValidatorResult
from flower_sim.rollup_roles import RollupRecorder
from rollups_client.node import NodeClient

ATTACKER = 1  # trainer 1 sends a bad update in every round


@dataclass
class History:
    deployment: Deployment
    node_url: str
    node: NodeClient
    db: Path
    run_dir: Path
    recorder: RollupRecorder


def write_model(run_dir: Path, name: str, content: bytes) -> bytes:
    path = run_dir / name
    path.write_bytes(content)
    return hashlib.sha256(content).digest()


def record_history(recorder: RollupRecorder, cfg: SimulationConfig, run_dir: Path) -> None:
    """`cfg.rounds` rounds: every trainer Positive but the attacker; validator 0 closest to the global model."""
    recorder.open_task(cfg.rounds)
    for rnd in range(1, cfg.rounds + 1):
        results = []
        for v in range(cfg.validators):
            contributions = tuple(
                Contribution(trainer_id=t, validator_id=v, accuracy=0.1 if t == ATTACKER else 0.9,
                             accuracy_bps=1000 if t == ATTACKER else 9000 + t, num_examples=100 + t,
                             accepted=t != ATTACKER, malicious=t == ATTACKER, attacked=t == ATTACKER)
                for t in range(cfg.trainers) if cfg.group_of(t) == v)
            name = f"round-{rnd:03d}-validator-{v}.npz"
            digest = write_model(run_dir, name, f"validator {v} round {rnd}".encode())
            recorder.on_validator_report(ValidatorReport(
                round=rnd, validator_id=v, strategy="mad", own_accuracy=0.91, own_accuracy_bps=9100,
                contributions=contributions, model_file=name, model_sha256=digest,
                training_s=0.0, validation_s=0.0, aggregation_s=0.0))
            results.append(ValidatorResult(
                validator_id=v, own_accuracy=0.91, own_accuracy_bps=9100, aggregated_accuracy=0.9,
                aggregated_accuracy_bps=9000 + 10 * v, accepted=len(contributions),
                rejected=0, rejected_malicious=0, model_file=name, model_sha256=digest))
        name = f"round-{rnd:03d}.npz"
        digest = write_model(run_dir, name, f"global round {rnd}".encode())
        recorder.on_round_closed(RoundRecord(
            round=rnd, global_accuracy=0.9, global_accuracy_bps=9002, global_loss=0.3, global_model_file=name,
            global_sha256=digest, best_validator=0, validators=tuple(results), contributions=()))


@contextlib.contextmanager
def tampered_output(db: Path, index: int, raw: bytes) -> Iterator[None]:
    """Replace output `index`'s bytes in the node's database (an operator lying), then put them back."""
    with sqlite3.connect(db) as conn:
        (original,) = conn.execute('SELECT raw_data FROM output WHERE "index" = ?', (index,)).fetchone()
        conn.execute('UPDATE output SET raw_data = ? WHERE "index" = ?', (raw, index))
    try:
        yield
    finally:
        with sqlite3.connect(db) as conn:
            conn.execute('UPDATE output SET raw_data = ? WHERE "index" = ?', (original, index))
