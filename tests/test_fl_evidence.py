"""The trainers' evidence: each trainer signs its update's `Update` from its own key when the run records on a
rollup, the rollup's own recovery (`dapp.eip712.signer`) gives back the trainer's address, the validator keeps
digest and signature per contribution and signs a `Receipt` the rollup recovers to the validator; a signature
over another update stops the validator with a one-line error."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from eth_account import Account
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from common import accounts
from common.errors import FedrollupError
from dapp.eip712 import Domain, signer
from dapp.qmodel import digest
from flower_sim.config import SimulationConfig
from flower_sim.grid import GroupGrid, InProcessGrid
from flower_sim.models import Score
from flower_sim.manager import global_model
from flower_sim.quantize import from_frq1, to_frq1
from flower_sim.signatures import RollupTask
from flower_sim.trainer import signed_update
from flower_sim.validator import EvidenceError, Validator

CFG = SimulationConfig(trainers=4, validators=2, rounds=1, model="logreg", attack="none")
TASK = RollupTask(3, Domain(31337, "0x" + "ab" * 20))


def weights_of(t: int) -> list[np.ndarray]:
    """Trainer t's logreg update: every weight t / 100 (t readable back from the arrays)."""
    return [np.full((784, 10), t / 100, dtype=np.float32), np.zeros(10, dtype=np.float32)]


def address(t: int) -> str:
    return accounts.address(accounts.trainer_index(t, CFG.validators)).lower()


def test_a_trainers_signature_recovers_to_its_own_address_with_the_rollups_recovery():
    weights = weights_of(2)
    evidence = signed_update((TASK, 1), server_round=4, trainer_id=2, validators=CFG.validators, weights=weights,
                             samples=175)
    update_digest = bytes(evidence["update-digest"])
    assert update_digest == digest(to_frq1(weights))
    update = TASK.update(4, 1, update_digest, 175)
    assert signer(TASK.domain, update, bytes(evidence["signature"])) == address(2)
    # The same signature says nothing about another round, group or sample count.
    assert signer(TASK.domain, TASK.update(5, 1, update_digest, 175), bytes(evidence["signature"])) != address(2)


def test_the_train_config_carries_the_task_to_the_trainer_and_nothing_without_a_rollup():
    assert RollupTask.from_train_config(TASK.train_config(group=1)) == (TASK, 1)
    assert RollupTask.from_train_config({"local-epochs": 1}) is None


def signing_app(forged: frozenset[int] = frozenset()) -> ClientApp:
    """Trainers that reply `weights_of(t)` with their signed evidence; a trainer in `forged` signs another update."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        t = int(context.node_config["partition-id"])
        rollup = RollupTask.from_train_config(msg.content["config"])
        signed = weights_of(t + 50) if t in forged else weights_of(t)
        evidence = signed_update(rollup, int(msg.content["config"]["server-round"]), t, CFG.validators, signed, 100)
        metrics = MetricRecord({"num-examples": 100, "trainer-id": t, "attacked": 0})
        return Message(RecordDict({"arrays": ArrayRecord(weights_of(t)), "metrics": metrics,
                                   "evidence": ConfigRecord(dict(evidence))}), reply_to=msg)

    return app


class ReadingJudge:
    """Every update scores 9,000 + its trainer id bps on the validator's data; the reference 9,000."""

    def reference(self, global_arrays: ArrayRecord) -> Score:
        return Score(correct=9_000, total=10_000, loss=0.0)

    def score(self, arrays: ArrayRecord) -> Score:
        return Score(correct=9_000 + round(float(arrays.to_numpy_ndarrays()[0].flat[0]) * 100), total=10_000, loss=0.0)


def validator_1(app: ClientApp, tmp_path) -> Validator:
    grid = InProcessGrid(app, CFG.trainers, CFG.to_run_config())
    nodes = sorted(grid.get_node_ids())[2:]  # trainers 2 and 3: group 1
    return Validator(1, GroupGrid(grid, nodes), ReadingJudge(), CFG, frozenset(), tmp_path, rollup=TASK)


def test_the_validator_keeps_each_trainers_signed_digest_and_signs_receipts_from_its_own_key(tmp_path):
    validator = validator_1(signing_app(), tmp_path)
    outcome = validator.run_round(1, weights_of(0))
    contributions = {c.trainer_id: c for c in outcome.report.contributions}
    assert sorted(contributions) == [2, 3]
    for t, c in contributions.items():
        assert c.update_digest == digest(to_frq1(weights_of(t)))
        assert signer(TASK.domain, TASK.update(1, 1, c.update_digest, 100), c.signature) == address(t)
    receipt = validator.receipt(1, 3)
    expected = TASK.receipt(1, address(3), contributions[3].update_digest, 100)
    assert signer(TASK.domain, expected, receipt) == accounts.address(accounts.validator_index(1)).lower()
    assert outcome.report.model_digest == digest(outcome.model)
    assert (tmp_path / outcome.report.model_file).read_bytes() == outcome.model
    with pytest.raises(EvidenceError, match="received no update from trainer 0 in round 1"):
        validator.receipt(1, 0)


def test_a_signature_over_another_update_stops_the_validator_in_one_line(tmp_path):
    validator = validator_1(signing_app(forged=frozenset({3})), tmp_path)
    with pytest.raises(EvidenceError, match=r"^trainer 3 signed update [0-9a-f]{16}…, its validator received "):
        validator.run_round(1, weights_of(0))


class RejectingJudge(ReadingJudge):
    """Every update scores 0 bps: MAD rejects them all and the validator keeps the global model."""

    def score(self, arrays: ArrayRecord) -> Score:
        return Score(correct=0, total=10_000, loss=0.0)


def test_a_validator_that_accepts_nothing_commits_the_global_models_own_bytes(tmp_path):
    """The rollup lets several validators commit the round's starting model, identified by its digest; re-quantizing
    an averaged model does not give its bytes back, so the validator commits the bytes it was given."""
    rng = np.random.default_rng(5)
    models = [to_frq1([rng.normal(0, 0.1, (784, 10)).astype(np.float32), np.zeros(10, np.float32)]) for _ in "ab"]
    global_bytes = global_model(models)
    assert to_frq1(from_frq1(global_bytes)) != global_bytes  # what a re-quantizing validator would have committed
    grid = InProcessGrid(signing_app(), CFG.trainers, CFG.to_run_config())
    validator = Validator(1, GroupGrid(grid, sorted(grid.get_node_ids())[2:]), RejectingJudge(), CFG, frozenset(),
                          tmp_path, rollup=TASK)
    outcome = validator.run_round(2, from_frq1(global_bytes), global_bytes)
    assert not any(c.accepted for c in outcome.report.contributions)
    assert outcome.model == global_bytes and outcome.report.model_digest == digest(global_bytes)


def test_a_trainer_whose_update_is_not_a_finite_model_is_dropped_not_the_round(tmp_path):
    """A diverged trainer (NaN after strong DP noise) or a malicious one (NaN, wrong shapes) once stopped the whole
    run in the validator's digest of its update; now only that update is dropped (not judged, reported or paid)."""
    app = signing_app()
    broken = ClientApp()

    @broken.train()
    def train(msg: Message, context: Context) -> Message:
        reply = app(msg, context)
        if int(context.node_config["partition-id"]) == 3:
            weights = reply.content["arrays"].to_numpy_ndarrays()
            weights[0][0, 0] = np.nan
            reply.content["arrays"] = ArrayRecord(weights)
        return reply
    grid = InProcessGrid(broken, CFG.trainers, CFG.to_run_config())
    validator = Validator(1, GroupGrid(grid, sorted(grid.get_node_ids())[2:]), ReadingJudge(), CFG, frozenset(),
                          tmp_path, rollup=TASK)
    outcome = validator.run_round(1, weights_of(0))
    assert [c.trainer_id for c in outcome.report.contributions] == [2]


def test_a_trainer_whose_clientapp_fails_costs_only_its_own_update(tmp_path):
    """In process as on Flower's runtimes: a ClientApp that raises (e.g. signing a diverged update) is its error
    reply; the validator judges the others."""
    app = signing_app()
    failing = ClientApp()

    @failing.train()
    def train(msg: Message, context: Context) -> Message:
        if int(context.node_config["partition-id"]) == 2:
            raise ValueError("weights must be finite")
        return app(msg, context)
    grid = InProcessGrid(failing, CFG.trainers, CFG.to_run_config())
    validator = Validator(1, GroupGrid(grid, sorted(grid.get_node_ids())[2:]), ReadingJudge(), CFG, frozenset(),
                          tmp_path, rollup=TASK)
    assert [c.trainer_id for c in validator.run_round(1, weights_of(0)).report.contributions] == [3]


def test_when_every_trainers_clientapp_fails_the_run_stops_saying_why(tmp_path):
    """Not one faulty trainer but a bug or a broken setup: stopping beats a run of empty rounds."""
    failing = ClientApp()

    @failing.train()
    def train(msg: Message, context: Context) -> Message:
        raise ValueError("no partition here")
    grid = InProcessGrid(failing, CFG.trainers, CFG.to_run_config())
    validator = Validator(1, GroupGrid(grid, sorted(grid.get_node_ids())[2:]), ReadingJudge(), CFG, frozenset(),
                          tmp_path, rollup=TASK)
    with pytest.raises(FedrollupError, match="every trainer's ClientApp failed in round 1, e.g. ValueError: no part"):
        validator.run_round(1, weights_of(0))


def test_a_validator_learning_its_task_at_round_1_judges_trust_by_the_tasks_lag(tmp_path):
    """On its own host a validator learns the task once round 1's global is served; a trust task with K rounds open
    judges round r by the standings after r - K, as the rollup does (with lag 1 its verdicts would differ)."""
    grid = InProcessGrid(signing_app(), CFG.trainers, CFG.to_run_config())
    validator = Validator(1, GroupGrid(grid, sorted(grid.get_node_ids())[2:]), ReadingJudge(),
                          replace(CFG, strategy="trust"), frozenset(), tmp_path)
    assert (validator.rollup, validator.strategy.lag) == (None, 1)
    validator.join(replace(TASK, open_rounds=3))
    assert (validator.rollup.open_rounds, validator.strategy.lag) == (3, 3)


def test_a_validator_holding_its_own_key_signs_its_receipts_with_it(tmp_path):
    """`fedrollup validator --key-file`: the task names that key's address, so the receipts a dropped trainer contests
    with must recover to it, not to the validator's account of the run's mnemonic (the rollup would refuse them)."""
    own = "0x" + "7a" * 32
    grid = InProcessGrid(signing_app(), CFG.trainers, CFG.to_run_config())
    validator = Validator(1, GroupGrid(grid, sorted(grid.get_node_ids())[2:]), ReadingJudge(), CFG, frozenset(),
                          tmp_path)
    validator.join(TASK, own)
    outcome = validator.run_round(1, weights_of(0))
    update_digest = next(c.update_digest for c in outcome.report.contributions if c.trainer_id == 3)
    expected = TASK.receipt(1, address(3), update_digest, 100)
    assert signer(TASK.domain, expected, validator.receipt(1, 3)) == Account.from_key(own).address.lower()
