"""`fedrollup demo`: the product's main job, end to end on one machine.

A dev L1 (anvil) with the official Cartesi contracts, the host-mode node and the backend come up; the
manager publishes a task and escrows its budget through the EtherPortal; trainers and validators register;
the federated rounds run (the FL options of `fedrollup simulate`), each recorded on the rollup from the roles'
own keys; then the auditors' console audits everything and the verdict is the last line. Every process the
demo starts is stopped at the end, on Ctrl-C and on failure (unless `--keep-chain`).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from common.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from flower_sim.cli import add_simulation_options

    p = subparsers.add_parser(
        "demo", help="the paper's scenario end to end: chain, node, FL rounds recorded on the rollup, audit",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_simulation_options(p)
    chain = p.add_argument_group("rollup")
    chain.add_argument("--block-time", type=float, default=1.0, help="seconds per L1 block on the dev chain")
    chain.add_argument("--epoch-length", type=int, default=10, help="L1 blocks per rollup epoch (claims)")
    chain.add_argument("--l1-port", type=int, default=0, help="anvil's port; 0 picks a free one")
    chain.add_argument("--node-port", type=int, default=0, help="the node's /rpc and /inspect port; 0 picks a free one")
    chain.add_argument("--reward", type=float, default=0.001, help="ETH paid per Positive contribution")
    chain.add_argument("--validator-reward", type=float, default=0.005,
                       help="ETH per round to the validator closest to the global model")
    chain.add_argument("--keep-chain", action="store_true",
                       help="leave anvil and the node running afterwards, for the console")
    p.set_defaults(func=run)


def _wei(eth: float, what: str) -> int:
    if eth < 0:
        raise ConfigError(f"{what} must be >= 0 ETH, got {eth}")
    return round(eth * 10**18)


def run(args: argparse.Namespace) -> int:
    from flower_sim.cli import config_from_args, output_folder

    cfg = config_from_args(args)
    if args.block_time <= 0 or args.epoch_length <= 0:
        raise ConfigError("--block-time and --epoch-length must be positive")
    out = output_folder(args, cfg, kind="demo")
    from flower_sim.rollup_roles import TaskTerms

    terms = TaskTerms(reward_per_positive=_wei(args.reward, "--reward"),
                      validator_reward=_wei(args.validator_reward, "--validator-reward"))
    chain_dir = out / "chain"
    from fedrollup.stack import local_stack

    print(f"== starting the dev chain, the Cartesi contracts and the rollups node (logs in {chain_dir}/)")
    with local_stack(chain_dir, block_time=args.block_time, epoch_length=args.epoch_length, l1_port=args.l1_port,
                     node_port=args.node_port, keep=args.keep_chain) as stack:
        verdict = _run_recorded(cfg, out, stack, terms)
    print(verdict)  # the last line: the audit's verdict
    return 0 if verdict.startswith("AUDIT PASSED") else 1


def _run_recorded(cfg, out: Path, stack, terms) -> str:
    """Record a federated run on `stack` and audit it; returns the audit's one-line verdict."""
    from flower_sim.console import run_with_display
    from flower_sim.rollup_roles import RollupRecorder
    from frontend_console.audit import AuditFailure, audit
    from frontend_console.views import rounds_table
    from rich.console import Console
    from rollups_client.l1 import L1

    console = Console()
    deployment, node = stack.deployment, stack.node
    recorder = RollupRecorder(cfg, deployment, node, terms=terms, say=lambda text: console.print(f"  [chain] {text}"))
    console.print("== the manager publishes the task on the rollup; trainers and validators register")
    recorder.open_task(cfg.rounds)
    console.print(f"== {cfg.rounds} federated rounds, each recorded on the rollup before the next starts")
    start = time.perf_counter()
    run_with_display(cfg, out, observers=[recorder])
    elapsed = time.perf_counter() - start
    chain_s = sum(recorder.timings.per_round_s)
    console.print(f"{cfg.rounds} rounds took {elapsed:.0f} s, of which {chain_s:.1f} s "
                  f"({100 * chain_s / max(elapsed, 1e-9):.0f}%) waiting for the rollup; opening the task took "
                  f"{recorder.timings.setup_s:.1f} s")
    console.print("== the auditors' console: every notice re-derived from L1 inputs, proven on L1, files checked")
    l1 = L1(deployment.rpc_url, deployment)
    notices = [o for o in node.notices() if o.message is not None]
    console.print(rounds_table(notices, recorder.task_id))
    try:
        report = audit(node, l1, run_dir=out, progress=lambda text: console.print(f"  [audit] {text}"))
    except AuditFailure as failure:
        return f"AUDIT FAILED: {failure}"
    console.print(f"run folder {out}/ · chain logs {stack.run_dir}/ · deployment {stack.deployment_path}")
    return report.verdict()
