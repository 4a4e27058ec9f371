"""`fedrollup demo`: the product's main job, end to end on one machine.

A dev L1 (anvil) with the official Cartesi contracts, the host-mode node and the backend come up; the
manager publishes a task and escrows its budget through the EtherPortal; trainers and validators register;
the federated rounds run (the FL options of `fedrollup simulate`), each recorded on the rollup from the roles'
own keys; then the auditors' console audits everything and the verdict is the last line. Every process the
demo starts is stopped at the end, on Ctrl-C and on failure (unless `--keep-chain`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fedrollup.stack import local_stack
from flower_sim.config import SimulationConfig
from flower_sim.console import run_with_display


@dataclass(frozen=True)
class DemoConfig:
    """The demo's run: the federation, its run folder, the dev chain and the task's rewards."""

    simulation: SimulationConfig
    out: Path                   # the run folder; the chain's logs go to <out>/chain
    block_time: float           # seconds per L1 block
    epoch_length: int           # L1 blocks per rollup epoch
    l1_port: int                # 0: a free one
    node_port: int              # 0: a free one
    reward_wei: int             # per Positive contribution
    validator_reward_wei: int   # per round, to the validator closest to the global model
    keep_chain: bool            # leave anvil and the node running afterwards


def run_demo(config: DemoConfig) -> int:
    """The demo end to end; the audit's verdict is the last line printed. Exit code 0 when the audit passes."""
    from flower_sim.rollup_roles import TaskTerms  # heavy: web3 (0.7 s); `fedrollup --help` loads this module

    cfg, out = config.simulation, config.out
    terms = TaskTerms(reward_per_positive=config.reward_wei, validator_reward=config.validator_reward_wei)
    chain_dir = out / "chain"
    print(f"== starting the dev chain, the Cartesi contracts and the rollups node (logs in {chain_dir}/)")
    with local_stack(chain_dir, block_time=config.block_time, epoch_length=config.epoch_length,
                     l1_port=config.l1_port, node_port=config.node_port, keep=config.keep_chain) as stack:
        verdict = _run_recorded(cfg, out, stack, terms)
    print(verdict)  # the last line: the audit's verdict
    return 0 if verdict.startswith("AUDIT PASSED") else 1


def _run_recorded(cfg, out: Path, stack, terms) -> str:
    """Record a federated run on `stack` and audit it; returns the audit's one-line verdict."""
    from flower_sim.rollup_roles import RollupRecorder  # heavy: web3 (0.7 s), as in run_demo
    from frontend_console.audit import AuditFailure, audit  # heavy: web3, as above
    from frontend_console.views import rounds_table  # heavy: eth_abi, as above
    from rollups_client.l1 import L1  # heavy: web3, as above

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
