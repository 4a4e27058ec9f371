"""The validator: Flower server logic for one group of trainers (MAD or a baseline strategy).

A validator owns a private data set, a Grid that reaches only its group (in-process here, its own
SuperLink in a deployment), and one Flower strategy. A round is the strategy's own
`configure_train` -> `send_and_receive` -> `aggregate_train`; around it the validator scores every reply on
its data for the record, computes every update's digest (keccak256 of its FRQ1 bytes) and checks the trainer's
`Update` signature when the run records on a rollup, writes its aggregated model as FRQ1 (`dapp.qmodel`: the bits
it commits to and reveals on the rollup, `round-NNN-validator-V.frq`) and reports the round. When the run records
on a rollup it signs each trainer's `Receipt` for the update it received (`receipt`; it rides in the contribution,
for the trainer to keep: what a trainer left out contests with) and keeps each update's FRQ1 bytes in the report
(`updates`: what a disputed update is posted with).

Strategies (`--strategy`): `mad` (MadFedAvg), `trust` (TrustFedAvg, the project's own rule), and Flower's own
`fedavg` (no validation), `krum`, `median` (FedMedian) and `trimmed` (FedTrimmedAvg), all applied to the group's
replies only.
"""
from __future__ import annotations

import random
import time
from logging import INFO, WARNING
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedMedian, FedTrimmedAvg, Krum

from common import accounts
from common.errors import FedrollupError
from dapp.eip712 import SignatureError, signer
from dapp.qmodel import digest
from flower_sim import models
from flower_sim.config import SimulationConfig
from flower_sim.data import Dataset
from flower_sim.judging import JudgingFedAvg
from flower_sim.mad_strategy import MadFedAvg
from flower_sim.models import Score
from flower_sim.quantize import save_frq1, to_frq1
from flower_sim.records import Contribution, ValidatorReport
from flower_sim.shapley import shares_bps
from flower_sim.shapley_run import round_seed, value_accepted
from flower_sim.signatures import RollupTask, sign
from flower_sim.trust_strategy import TrustFedAvg


class ValidatorJudge:
    """The validator's private data and models: trains its reference model and scores received ones. The last
    reference's weights stay in `reference_weights` (`trust` measures updates against them: trained once a round)."""

    def __init__(self, validator_id: int, data: Dataset, cfg: SimulationConfig) -> None:
        self.validator_id = validator_id
        self.data = data
        self.cfg = cfg
        self.round = 0
        self.reference_weights: list[np.ndarray] = []

    def reference(self, global_arrays: ArrayRecord) -> Score:
        self.round += 1
        model = models.shared_model(self.cfg.model, self.cfg.lr, "validator")
        seed = int(np.random.SeedSequence([self.cfg.seed, self.round, self.validator_id, 2]).generate_state(1)[0])
        weights, _ = models.train(model, global_arrays.to_numpy_ndarrays(), self.data.x, self.data.y,
                                  epochs=self.cfg.validator_epochs, batch_size=self.cfg.batch_size, seed=seed)
        self.reference_weights = weights
        return models.score(model, weights, self.data.x, self.data.y)

    def score(self, arrays: ArrayRecord) -> Score:
        model = models.shared_model(self.cfg.model, self.cfg.lr, "evaluator")
        return models.score(model, arrays.to_numpy_ndarrays(), self.data.x, self.data.y)


def make_strategy(cfg: SimulationConfig, judge: ValidatorJudge, group_size: int, lag: int = 1) -> FedAvg:
    """The group's strategy; each round it samples `cfg.sampled(group_size)` of the group's trainers (Flower's
    `fraction_train`, drawn with Python's `random`, seeded per round by `run_round`), once all are connected.
    ``lag``: the rollup task's openRounds (trust: round r is judged by the standings after round r - lag)."""
    sampled = cfg.sampled(group_size)
    common = dict(fraction_train=cfg.fraction_train, fraction_evaluate=0.0, min_train_nodes=sampled,
                  min_available_nodes=group_size)
    if cfg.strategy == "mad":
        return MadFedAvg(judge, mad_bps=cfg.mad_bps, **common)
    if cfg.strategy == "trust":
        return TrustFedAvg(judge, lag=lag, **common)
    if cfg.strategy == "fedavg":
        return FedAvg(**common)
    if cfg.strategy == "krum":
        # Krum needs n > 2f + 2: assume the malicious share of the run, capped at what n allows.
        expected = -(-cfg.malicious_count // cfg.validators)
        return Krum(num_malicious_nodes=max(0, min(expected, (sampled - 3) // 2)), **common)
    if cfg.strategy == "median":
        return FedMedian(**common)
    if cfg.strategy == "trimmed":
        return FedTrimmedAvg(beta=cfg.trim_beta, **common)
    raise ValueError(f"unknown strategy {cfg.strategy!r}")


@dataclass
class ValidatorRound:
    """What the manager receives from a validator: its aggregated model (FRQ1 bytes) and its report."""

    model: bytes
    report: ValidatorReport


class EvidenceError(FedrollupError):
    """A trainer's update came with evidence that does not match it (another digest, another signer)."""


@dataclass(frozen=True)
class Evidence:
    """What a validator keeps of one update it received: its digest, samples and the trainer's signature."""

    update_digest: bytes
    samples: int
    signature: bytes  # empty when the run records on no rollup
    update: bytes = field(default=b"", repr=False, compare=False)  # the update's FRQ1 bytes


class Validator:
    """One validator group: a Grid view, a strategy, a judge over private data."""

    def __init__(self, validator_id: int, grid: Grid, judge: ValidatorJudge, cfg: SimulationConfig,
                 malicious: frozenset[int], out_dir: Path, rollup: RollupTask | None = None) -> None:
        self.validator_id = validator_id
        self.rollup = rollup
        self.key = accounts.private_key(accounts.validator_index(validator_id))  # signs its receipts (`join`)
        self.evidence: dict[int, dict[int, Evidence]] = {}  # round -> trainer id -> its update's evidence
        self.grid = grid
        self.judge = judge
        self.cfg = cfg
        self.malicious = malicious
        self.out_dir = out_dir
        self.strategy = make_strategy(cfg, judge, len(list(grid.get_node_ids())),
                                      rollup.open_rounds if rollup is not None else 1)
        # mad and trust judge every reply themselves (scores, verdicts); the baselines' replies are scored here
        self.judging = isinstance(self.strategy, JudgingFedAvg)

    def join(self, task: RollupTask, key: str | None = None) -> None:
        """Record for `task` from the next round on, signing receipts with `key` (its own `--key-file`; None: its
        account of the run's mnemonic): a validator on its own host learns the task only once round 1's global model
        is served. Before round 1, a trust strategy takes the task's openRounds as its lag (round r judged by the
        standings after r - K, as the rollup judges it)."""
        self.rollup = task
        if key is not None:
            self.key = key
        if isinstance(self.strategy, TrustFedAvg):
            self.strategy.lag = task.open_rounds

    def train_config(self) -> ConfigRecord:
        rollup = self.rollup.train_config(self.validator_id) if self.rollup is not None else {}
        return ConfigRecord({"local-epochs": self.cfg.local_epochs, "batch-size": self.cfg.batch_size,
                             "lr": self.cfg.lr, **rollup})

    def run_round(self, server_round: int, global_weights: list[np.ndarray],
                  global_model: bytes = b"") -> ValidatorRound:
        """Send the global model to the group, judge and aggregate the replies, save and report. `global_model`: the
        FRQ1 bytes `global_weights` came from, committed as they are when the validator keeps the global model
        (re-quantizing an averaged model does not give its bytes back, and the rollup lets several validators commit
        the round's starting model, never another one twice)."""
        global_arrays = ArrayRecord(global_weights)
        t0 = time.perf_counter()
        if self.cfg.fraction_train < 1:
            # Flower samples the round's trainers with Python's `random`: seeded per run, round and validator, the
            # sample is the same whatever else drew from `random` before (imports, other validators)
            seed = np.random.SeedSequence([self.cfg.seed, server_round, self.validator_id, 3]).generate_state(1)[0]
            random.seed(int(seed))
        messages = list(self.strategy.configure_train(server_round, global_arrays, self.train_config(),
                                                      self.grid))
        t1 = time.perf_counter()
        # in trainer order: a runtime's grid answers in arrival order, and the aggregate's float sums follow it
        shapes = [w.shape for w in global_weights]
        answered = list(self.grid.send_and_receive(messages))
        failed = [r.error.reason for r in answered if r.has_error()]
        if answered and len(failed) == len(answered):  # a bug or a broken setup, not one faulty trainer: say it
            raise FedrollupError(f"validator {self.validator_id}: every trainer's ClientApp failed in round "
                                 f"{server_round}, e.g. {failed[0]}")
        replies = sorted((r for r in answered if self._judgeable(server_round, r, shapes)),
                         key=lambda r: int(r.content["metrics"]["trainer-id"]))
        t2 = time.perf_counter()
        evidence = self.evidence[server_round] = self._evidence(server_round, replies)
        # Baselines do not judge; score their replies for the record before aggregating, because some
        # Flower strategies (FedMedian) consume the replies' arrays while aggregating.
        scored, scoring_s = ([], 0.0) if self.judging else self._score_replies(replies)
        received = ({int(r.content["metrics"]["trainer-id"]): r.content["arrays"].to_numpy_ndarrays() for r in replies}
                    if self.cfg.payout == "shapley" else {})
        t3 = time.perf_counter()
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        t4 = time.perf_counter()
        for d in self.strategy.decisions if self.judging else ():
            if not d.positive:
                log(INFO, "validator %d, round %d: trainer %d rejected: %s", self.validator_id, server_round,
                    d.trainer_id, d.reason)
        weights = arrays.to_numpy_ndarrays() if arrays is not None else global_weights
        contributions = [replace(c, update_digest=evidence[c.trainer_id].update_digest,
                                 signature=evidence[c.trainer_id].signature,
                                 receipt=self.receipt(server_round, c.trainer_id) if self.rollup else b"")
                         for c in self._contributions(replies, scored, metrics)]
        shapley_s = 0.0
        if self.cfg.payout == "shapley":
            t5 = time.perf_counter()
            contributions = self._with_shares(server_round, global_weights, contributions, received)
            shapley_s = time.perf_counter() - t5
        validation_s = getattr(self.strategy, "validation_s", scoring_s)
        reference = getattr(self.strategy, "reference_score", None)
        kept = all(np.array_equal(w, g) for w, g in zip(weights, global_weights))
        model = global_model if kept and global_model else to_frq1(weights)
        path = self.out_dir / f"round-{server_round:03d}-validator-{self.validator_id}.frq"
        model_digest = save_frq1(path, model)
        report = ValidatorReport(
            round=server_round, validator_id=self.validator_id, strategy=self.cfg.strategy,
            own_accuracy=reference.accuracy if reference else None,
            own_accuracy_bps=reference.bps if reference else None,
            contributions=tuple(contributions), model_file=path.name, model_digest=model_digest, model=model,
            updates={t: e.update for t, e in evidence.items()} if self.rollup else {},
            training_s=t2 - t1, validation_s=validation_s + shapley_s,
            aggregation_s=(t4 - t3) + (t1 - t0) - (validation_s if self.judging else 0.0))
        return ValidatorRound(model=model, report=report)

    def _with_shares(self, server_round: int, global_weights: list[np.ndarray], contributions: list[Contribution],
                     received: dict[int, list[np.ndarray]]) -> list[Contribution]:
        """--payout shapley: each accepted update's share of the group's budget (bps), by its Shapley value on this
        validator's data among the group's accepted updates (game [G], copies merged: `shapley_run.value_accepted`;
        exact up to 10, seeded from the run seed); a rejected update's share is 0 (the rollup refuses one)."""
        accepted = sorted((c for c in contributions if c.accepted), key=lambda c: c.trainer_id)
        if not accepted:
            return contributions
        model = models.shared_model(self.cfg.model, self.cfg.lr, "evaluator")
        _, _, values, _ = value_accepted(self.cfg.model, model, global_weights,
                                         [received[c.trainer_id] for c in accepted], [c.num_examples for c in accepted],
                                         [c.update_digest for c in accepted], self.judge.data,
                                         round_seed(self.cfg.seed, server_round, self.validator_id))
        share = dict(zip((c.trainer_id for c in accepted), shares_bps(values)))
        return [replace(c, share_bps=share.get(c.trainer_id, 0)) for c in contributions]

    def _judgeable(self, server_round: int, reply: Message, shapes: list[tuple[int, ...]]) -> bool:
        """An update of the global model's shapes with every weight finite; any other is dropped from the round (not
        judged, not reported, not paid): one diverged or malicious trainer's NaN would stop the round for all."""
        if reply.has_error():  # the trainer's ClientApp failed (Flower's runtimes, and our grid, reply with why)
            log(WARNING, "validator %d, round %d: a trainer's ClientApp failed (%s); no update from it",
                self.validator_id, server_round, reply.error.reason)
            return False
        weights = reply.content["arrays"].to_numpy_ndarrays()
        if [w.shape for w in weights] == shapes and all(np.isfinite(w).all() for w in weights):
            return True
        log(WARNING, "validator %d, round %d: trainer %s sent an update that is no finite model of the task's "
            "shape; dropped", self.validator_id, server_round, reply.content["metrics"]["trainer-id"])
        return False

    def _evidence(self, server_round: int, replies: list[Message]) -> dict[int, Evidence]:
        """Each update's digest as this validator computes it from the arrays it received, and, when the run records
        on a rollup, the trainer's signature, checked to be the trainer's over exactly that digest and samples."""
        kept = {}
        for reply in replies:
            m = reply.content["metrics"]
            trainer_id, samples = int(m["trainer-id"]), int(m["num-examples"])
            update = to_frq1(reply.content["arrays"].to_numpy_ndarrays())
            update_digest, signature = digest(update), b""
            if self.rollup is not None:
                signature = self._checked_signature(server_round, trainer_id, reply, update_digest, samples)
            kept[trainer_id] = Evidence(update_digest, samples, signature, update if self.rollup else b"")
        return kept

    def _checked_signature(self, server_round: int, trainer_id: int, reply: Message, update_digest: bytes,
                           samples: int) -> bytes:
        if "evidence" not in reply.content:
            raise EvidenceError(f"trainer {trainer_id}'s update of round {server_round} came without its signature")
        evidence = reply.content["evidence"]
        signature = bytes(evidence["signature"])
        if bytes(evidence["update-digest"]) != update_digest:
            raise EvidenceError(f"trainer {trainer_id} signed update {bytes(evidence['update-digest']).hex()[:16]}…, "
                                f"its validator received {update_digest.hex()[:16]}…")
        expected = self.rollup.trainer_address(trainer_id, self.cfg.validators)
        message = self.rollup.update(server_round, self.validator_id, update_digest, samples)
        try:
            found = signer(self.rollup.domain, message, signature)
        except SignatureError as err:
            raise EvidenceError(f"trainer {trainer_id}'s signature of round {server_round}: {err}") from None
        if found != expected:
            raise EvidenceError(f"trainer {trainer_id}'s signature of round {server_round} recovers to {found}, "
                                f"not its address {expected}")
        return signature

    def receipt(self, server_round: int, trainer_id: int) -> bytes:
        """This validator's EIP-712 `Receipt` for trainer `trainer_id`'s update of `server_round`, signed with its
        own key: the trainer's evidence that its update arrived (a dropped trainer contests with it)."""
        if self.rollup is None:
            raise EvidenceError("a receipt is about a rollup task: this run records on none")
        got = self.evidence.get(server_round, {}).get(trainer_id)
        if got is None:
            raise EvidenceError(f"validator {self.validator_id} received no update from trainer {trainer_id} "
                                f"in round {server_round}")
        trainer = self.rollup.trainer_address(trainer_id, self.cfg.validators)
        return sign(self.key, self.rollup.domain, self.rollup.receipt(server_round, trainer, got.update_digest,
                                                                  got.samples))

    def _score_replies(self, replies: list[Message]) -> tuple[list[tuple[int, Score, int, bool]], float]:
        """(trainer id, score on the validator's data, samples, attacked) of every reply, and the time taken."""
        start = time.perf_counter()
        scored = []
        for reply in replies:
            m = reply.content["metrics"]
            scored.append((int(m["trainer-id"]), self.judge.score(reply.content["arrays"]),
                           int(m["num-examples"]), bool(m["attacked"])))
        return scored, time.perf_counter() - start

    def _contributions(self, replies: list[Message], scored, metrics) -> list[Contribution]:
        """Every reply with its accuracy on the validator's data and whether the strategy used it."""
        if self.judging:
            attacked = {int(r.content["metrics"]["trainer-id"]): bool(r.content["metrics"]["attacked"])
                        for r in replies}
            return [replace(self._contribution(d.trainer_id, d.score, d.num_examples, d.positive,
                                               attacked[d.trainer_id]),
                            cosine_bps=d.cosine_bps, norm_centi=d.norm_centi, reason=d.reason)
                    for d in self.strategy.decisions]
        krum_pick = None
        if isinstance(self.strategy, Krum) and metrics is not None:
            krum_pick = round(float(metrics["trainer-id"]))  # Krum keeps one reply: its id survives averaging
        return [self._contribution(t, score, n, krum_pick is None or t == krum_pick, attacked)
                for t, score, n, attacked in scored]

    def _contribution(self, trainer_id: int, score: Score, n: int, accepted: bool, attacked: bool) -> Contribution:
        return Contribution(trainer_id=trainer_id, validator_id=self.validator_id, accuracy=score.accuracy,
                            accuracy_bps=score.bps, num_examples=n, accepted=accepted,
                            malicious=trainer_id in self.malicious, attacked=attacked)
