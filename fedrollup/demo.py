"""`fedrollup demo`: the product's main job, end to end on one machine.

A dev L1 (anvil) with the official Cartesi contracts, the host-mode node and the backend come up; the
manager publishes a task and escrows its budget through the EtherPortal; trainers and validators register;
the federated rounds run (the FL options of `fedrollup simulate`), each recorded on the rollup from the roles'
own keys; at the end the publisher withdraws what the rollup refunded it, and the auditors' console audits
everything and the verdict is the last line. Every process the demo starts is stopped at the end, on Ctrl-C
and on failure (unless `--keep-chain`).

With `--silent-validator G` one validator goes silent mid-task: from `--silent-from-round` on it withholds its
rollup inputs (its reports and, when elected, its closes), the rollup skips its group after each report
deadline and, when it was elected producer, hands the turn to the next in the election order after its close
deadline; the console shows the skipped groups, the missed turn and the refund.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fedrollup.market import run_market
from fedrollup.stack import local_stack
from flower_sim import models
from flower_sim.cheating import CheatingValidator
from flower_sim.config import SimulationConfig
from flower_sim.console import run_with_display
from flower_sim.rollup_schedule import SilentValidator

# The report and close windows (L1 blocks) with --silent-validator, unless given: on 1 s blocks a silent round
# waits ~20 s for its report deadline (a demo round trains in ~3-4 s) and a silent producer's turn 8 s more.
SILENT_REPORT_BLOCKS = 20
SILENT_CLOSE_BLOCKS = 8
# The contest window (and the response window after it) with --cheating-validator, unless given: on 1 s blocks,
# room for the manager's close of the FL round, the reveals, and each dispute scored on the public test set and sent.
CHEAT_CONTEST_BLOCKS = 12


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
    silent: SilentValidator | None = None  # a validator that withholds its rollup inputs mid-task
    report_blocks: int | None = None  # L1 blocks a round's reports are accepted; None: the protocol's default
    close_blocks: int | None = None  # L1 blocks of each producer's turn to close; None: the protocol's default
    contest_blocks: int | None = None  # L1 blocks of a round's contest window (and of its response window)
    open_rounds: int | None = None  # rounds open on chain at once; None: what L1's block time asks (`TaskTerms`)
    cheating: CheatingValidator | None = None  # a validator that lies in its reports (the contest path)
    consensus: str = "quorum"  # who settles epochs: a Quorum of the manager and the validators, or an Authority
    tasks: int = 1  # publishers, each running this federation as a task of its own at once (fedrollup/market.py)
    broker_fee_bps: int = 200  # with tasks > 1: the market's broker's fee, basis points of every task's budget


def run_demo(config: DemoConfig) -> int:
    """The demo end to end; the audit's verdict is the last line printed. Exit code 0 when the audit passes."""
    from flower_sim.rollup_roles import TaskTerms  # heavy: web3 (0.7 s); `fedrollup --help` loads this

    cfg, out = config.simulation, config.out
    windows = {name: value for name, value in (("report_blocks", config.report_blocks),
                                               ("close_blocks", config.close_blocks),
                                               ("contest_blocks", config.contest_blocks),
                                               ("open_rounds", config.open_rounds)) if value is not None}
    # rounds open at once: what L1's block time asks, at most rounds - 1 (round r's close elects round r + K's
    # producer, so the demo shows FLPoS at work)
    terms = TaskTerms(reward_per_positive=config.reward_wei, validator_reward=config.validator_reward_wei, **windows)
    if config.tasks > 1:
        return run_market(config, terms)
    chain_dir = out / "chain"
    members = 1 + cfg.validators
    print("== starting the dev chain, the Cartesi contracts and " + (
        f"a Quorum of {members} members (the manager and each validator), each running its own rollups node"
        if config.consensus == "quorum" else "the rollups node (one Authority key settles)")
        + f" (logs in {chain_dir}/)")
    with local_stack(chain_dir, block_time=config.block_time, epoch_length=config.epoch_length,
                     l1_port=config.l1_port, node_port=config.node_port, keep=config.keep_chain,
                     consensus=config.consensus, members=members) as stack:
        verdict = _run_recorded(cfg, out, stack, terms, config.silent, config.cheating)
    print(verdict)  # the last line: the audit's verdict
    return 0 if verdict.startswith("AUDIT PASSED") else 1


def _run_recorded(cfg, out: Path, stack, terms, silent: SilentValidator | None,
                  cheating: CheatingValidator | None = None) -> str:
    """Record a federated run on `stack`, withdraw the publisher's refund and audit it; returns the audit's
    one-line verdict."""
    from flower_sim.rollup_roles import RollupRecorder  # heavy: web3 (0.7 s), as in run_demo
    from frontend_console.audit import AuditFailure, audit  # heavy: web3, as above
    from frontend_console.views import (disputes_table, member_roles, payouts_table,  # heavy: eth_abi, as above
                                        producers_table, refunds_table, rounds_table, tasks_table, votes_table)
    from rollups_client.l1 import L1  # heavy: web3, as above

    console = Console()
    deployment, node = stack.deployment, stack.node
    recorder = RollupRecorder(cfg, deployment, node, terms=terms, silent=silent, cheating=cheating,
                              say=lambda text: console.print(f"  [chain] {text}", markup=False))
    # Keras loads before the task opens: round 1's report window starts when the last validator registers.
    models.configure_tensorflow(cfg.seed)
    console.print("== the manager publishes the task on the rollup; trainers and validators register")
    recorder.open_task(cfg.rounds)
    console.print(f"== {cfg.rounds} federated rounds, each closed on the rollup while the next one trains"
                  + (f" (reports within {terms.report_blocks} L1 blocks of a round's start, each producer's turn "
                     f"{terms.close_blocks} blocks)" if silent else ""))
    if silent:
        who = "the validator the rollup elects to close it" if silent.validator is None \
            else f"validator {silent.validator}"
        console.print(f"== from round {silent.from_round} on, {who} goes silent on the rollup")
    if cheating:
        console.print(f"== from round {cheating.from_round} on, validator {cheating.validator} lies in its reports "
                      f"({cheating.kind}; disputes within {terms.contest_blocks} L1 blocks of a round's last report, "
                      f"disputed updates within {terms.contest_blocks} more)")
    start = time.perf_counter()
    run_with_display(cfg, out, observers=[recorder], rollup=recorder)
    elapsed = time.perf_counter() - start
    chain_s = sum(recorder.timings.per_round_s) + recorder.timings.final_s
    console.print(f"{cfg.rounds} rounds took {elapsed:.0f} s, of which {chain_s:.1f} s "
                  f"({100 * chain_s / max(elapsed, 1e-9):.0f}%) waiting for the rollup; opening the task took "
                  f"{recorder.timings.setup_s:.1f} s")
    console.print("== the publisher withdraws its refund (what the task did not spend)")
    refund = recorder.withdraw_refund()
    console.print("== the auditors' console: every notice re-derived from L1 inputs, proven on L1, files checked")
    l1 = L1(deployment.rpc_url, deployment)
    notices = [o for o in node.notices() if o.message is not None]
    if cfg.dp != "none":  # the privacy budget the task promised, as the rollup recorded it
        console.print(tasks_table(notices, recorder.task_id))
    console.print(rounds_table(notices, recorder.task_id))
    console.print(producers_table(notices, recorder.task_id))
    if cheating:
        console.print(disputes_table(notices, recorder.task_id))
    if cfg.payout == "shapley":  # each update's share of its group's budget beside what it was paid
        console.print(payouts_table(notices, recorder.task_id))
    console.print(refunds_table(notices, recorder.task_id))
    try:
        report = audit(node, l1, run_dir=out, progress=lambda text: console.print(f"  [audit] {text}", markup=False))
    except AuditFailure as failure:
        return f"AUDIT FAILED: {failure}"
    info = l1.consensus_info()  # every epoch is settled now: the audit waited for each output's claim
    console.print(votes_table(l1.claims(), info, member_roles(deployment, info)))
    if refund:
        _pay_refund(node, l1, recorder, console)
    console.print(f"run folder {out}/ · chain logs {stack.run_dir}/ · deployment {stack.deployment_path}")
    return report.verdict()


def _pay_refund(node, l1, recorder, console: Console) -> None:
    """Execute the publisher's Withdraw voucher on L1 (its proof is ready: the audit proved every output)."""
    from dapp.state import format_wei  # heavy: eth_abi, as in _run_recorded
    from rollups_node.outputs import VOUCHER  # heavy: eth_abi, as above

    publisher = l1.address(recorder.manager_key)
    voucher = [o for o in node.outputs(output_type=VOUCHER) if (o.destination or "").lower() == publisher][-1]
    before = l1.balance(publisher)
    tx = l1.execute_output(recorder.manager_key, voucher.raw, voucher.index, voucher.siblings)
    console.print(f"the publisher executed its voucher (output {voucher.index}) on L1: {format_wei(voucher.value)} "
                  f"paid by the Application contract (tx {tx[:12]}…; its L1 balance "
                  f"{format_wei(before)} → {format_wei(l1.balance(publisher))}, less gas)")
