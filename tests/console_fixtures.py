"""A recorded federated history on a real anvil + node + backend, for the console and audit tests.

The rounds are recorded by the real `RollupRecorder` from the roles' own keys; only the FL numbers are
written by hand (no TensorFlow here), with hand-made int8 `logreg` models (FRQ1, `.frq` files) whose digests go
on chain: validator 0's model detects something, validator 1's is all zeros (it answers class 0 for every image),
so the global model, their mean, predicts as validator 0's does and validator 0 is the closest to it. Each
trainer signs its (stand-in) update with its own key, as the trainer ClientApp does.
"""
from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from eth_utils import keccak

from common import accounts
from contracts_config.deployment import Deployment
from dapp.qmodel import Q_MAX, QLayer, QModel, arch_named, encode
from flower_sim.config import SimulationConfig
from flower_sim.manager import global_model
from flower_sim.quantize import save_frq1
from flower_sim.records import Contribution, RoundRecord, ValidatorReport, ValidatorResult
from flower_sim.rollup_roles import RollupRecorder, TaskTerms
from flower_sim.signatures import sign
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


def logreg_model(round_: int, validator: int) -> bytes:
    """Validator 0's model of a round: int8 weights drawn from the round, zero biases; any other validator's: all
    zeros, its biases set to the round (so that every round's model has a digest of its own)."""
    if validator == 0:
        q = np.random.default_rng(round_).integers(-Q_MAX, Q_MAX + 1, (784, 10)).astype(np.int64)
        biases = (0,) * 10
    else:
        q, biases = np.zeros((784, 10), dtype=np.int64), (round_ + 100 * validator,) * 10
    return encode(QModel(arch_named("logreg").id, (QLayer("dense", q, (1 << 24,), biases, False),)))


def signed(recorder: RollupRecorder, cfg: SimulationConfig, rnd: int, t: int, samples: int) -> tuple[bytes, bytes]:
    """Trainer t's stand-in update digest for round `rnd` and its `Update` signature from its own key."""
    update = keccak(text=f"trainer {t} update of round {rnd}")
    task = recorder.signing_task()
    key = accounts.private_key(accounts.trainer_index(t, cfg.validators))
    return update, sign(key, task.domain, task.update(rnd, cfg.group_of(t), update, samples))


def record_history(recorder: RollupRecorder, cfg: SimulationConfig, run_dir: Path,
                   agents_for: Callable[[int], list] | None = None) -> None:
    """`cfg.rounds` rounds of a `logreg` run: every trainer Positive but the attacker; validator 0 closest to the
    global model. A `shapley` run's accepted trainer t reports a share of (t + 1) x 1,000 bps. ``agents_for``:
    the validators send their own inputs, each from its `ValidatorAgent` (made with the task's id) that holds its
    key; the recorder holds none."""
    recorder.open_task(cfg.rounds)
    agents = agents_for(recorder.task_id) if agents_for is not None else []
    for rnd in range(1, cfg.rounds + 1):
        results, models = [], []
        for v in range(cfg.validators):
            contributions = tuple(
                Contribution(trainer_id=t, validator_id=v, accuracy=0.1 if t == ATTACKER else 0.9,
                             accuracy_bps=1000 if t == ATTACKER else 9000 + t, num_examples=100 + t,
                             accepted=t != ATTACKER, malicious=t == ATTACKER, attacked=t == ATTACKER,
                             share_bps=(t + 1) * 1000 if cfg.payout == "shapley" and t != ATTACKER else 0,
                             **dict(zip(("update_digest", "signature"), signed(recorder, cfg, rnd, t, 100 + t))))
                for t in range(cfg.trainers) if cfg.group_of(t) == v)
            name = f"round-{rnd:03d}-validator-{v}.frq"
            models.append(logreg_model(rnd, v))
            model_digest = save_frq1(run_dir / name, models[-1])
            report = ValidatorReport(
                round=rnd, validator_id=v, strategy="mad", own_accuracy=0.91, own_accuracy_bps=9100,
                contributions=contributions, model_file=name, model_digest=model_digest,
                training_s=0.0, validation_s=0.0, aggregation_s=0.0, model=models[-1])
            recorder.on_validator_report(report)
            if agents:
                agents[v].submit(report, recorder.trainer_addresses, b"")
            results.append(ValidatorResult(
                validator_id=v, own_accuracy=0.91, own_accuracy_bps=9100, aggregated_accuracy=0.9,
                aggregated_accuracy_bps=9000 + 10 * v, accepted=len(contributions),
                rejected=0, rejected_malicious=0, model_file=name, model_digest=model_digest))
        name = f"round-{rnd:03d}.frq"
        glob = global_model([models[v] for v in recorder.averaged(rnd, range(cfg.validators))])
        recorder.on_round_closed(RoundRecord(
            round=rnd, global_accuracy=0.9, global_accuracy_bps=9002, global_loss=0.3, global_model_file=name,
            global_digest=save_frq1(run_dir / name, glob), best_validator=0, validators=tuple(results),
            contributions=(), global_model=glob))
    for agent in agents:
        agent.finish(timeout_s=300)
    recorder.finish()  # the last round's close, handed to the recorder's worker


HISTORY_CFG = SimulationConfig(trainers=4, validators=2, rounds=2, model="logreg")


@contextlib.contextmanager
def recorded_history(folder: Path, cfg: SimulationConfig = HISTORY_CFG) -> Iterator[History]:
    """A fresh anvil with an Authority deployment, the node with the real backend, and `cfg`'s rounds recorded
    on it (`record_history`); its model files in `folder/run`."""
    from node_fixtures import DAPP_BACKEND, fresh_deployment, node_process, running_anvil

    run_dir = folder / "run"
    run_dir.mkdir()
    with running_anvil() as rpc_url:
        deployment = fresh_deployment(rpc_url, epoch_length=4)
        with node_process(deployment, folder, backend=DAPP_BACKEND) as (url, _process):
            node = NodeClient.at(url, deployment.application)
            # at most rounds - 1 rounds open, as the demo: round 1's close then elects a producer (round 1 + K's)
            recorder = RollupRecorder(cfg, deployment, node, terms=TaskTerms(open_rounds=max(1, cfg.rounds - 1)))
            record_history(recorder, cfg, run_dir)
            yield History(deployment, url, node, folder / "node.sqlite", run_dir, recorder)


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
