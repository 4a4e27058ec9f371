"""`fedrollup demo --tasks N`: a market of N publishers' tasks running at once on one rollup (issue 15).

One dev chain, node and backend, deployed with the market's broker (`common.accounts.broker_address`, a key no role
uses) taking its fee (`--broker-fee-bps`, default FedMarket's 2 %) of every task's budget. Each publisher runs the
demo's federated task (`fedrollup.demo`'s options) in a process of its own, with keys of its own: its manager, its
validators and its trainers, the layout of `common.accounts` shifted past the previous publisher's (a key sending from
two processes would collide on nonces, so no trainer is shared between the processes; the state machine and the
on-chain test play a trainer joining two tasks). Task k's federation uses seed + k and writes to `<out>/task-k/`.
When every task finished and each publisher withdrew its refund, the auditors' console audits the whole history (every
task), then the broker's fee vouchers and the publishers' refund vouchers are executed on L1: the broker's L1
balance grows by exactly the fees.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
import traceback
from pathlib import Path

from rich.console import Console

from common import accounts
from fedrollup.stack import local_stack
from flower_sim.config import SimulationConfig


@dataclasses.dataclass(frozen=True)
class MarketTask:
    """One publisher's task in the market run: its federation, run folder and first account index."""

    number: int  # 1-based, in the order the publishers open their tasks
    simulation: SimulationConfig
    out: Path
    role_offset: int  # its roles' account indices are the layout's shifted by this (common.accounts.role_offset)


def market_tasks(cfg: SimulationConfig, tasks: int, out: Path) -> list[MarketTask]:
    """`tasks` publishers, each with the demo's federation on its own seed, folder and keys."""
    per_publisher = 1 + cfg.validators + cfg.trainers
    return [MarketTask(k, dataclasses.replace(cfg, seed=cfg.seed + k - 1), out / f"task-{k}", (k - 1) * per_publisher)
            for k in range(1, tasks + 1)]


def run_market(config, terms) -> int:
    """The market run end to end (`config`: the demo's `DemoConfig`, `terms` each task's rewards and windows); the
    audit's verdict is the last line printed. Exit code 0 when every task finished and the audit passed."""
    out, console, fee_bps = config.out, Console(), config.broker_fee_bps
    chain_dir, broker = out / "chain", accounts.broker_address()
    members = 1 + config.simulation.validators
    print(f"== starting the dev chain and the rollups node with the market's broker {broker} taking {fee_bps} bps "
          f"of every task's budget (logs in {chain_dir}/)")
    with local_stack(chain_dir, block_time=config.block_time, epoch_length=config.epoch_length,
                     l1_port=config.l1_port, node_port=config.node_port, keep=config.keep_chain,
                     consensus=config.consensus, members=members, broker=broker, broker_fee_bps=fee_bps) as stack:
        plan = market_tasks(config.simulation, config.tasks, out)
        _fund(stack.deployment, plan, console)
        results = _run_concurrently(plan, stack, terms, console)
        verdict = _settle_and_audit(stack, results, broker, console) if len(results) == len(plan) else (
            f"AUDIT NOT RUN: {len(plan) - len(results)} of {len(plan)} tasks failed (see above)")
    print(verdict)
    return 0 if verdict.startswith("AUDIT PASSED") else 1


def _fund(deployment, plan: list[MarketTask], console: Console) -> None:
    """Give every role account of every task gas from the owner, here, before the publishers' processes start (two
    processes sending from the owner's key at once would collide on its nonce)."""
    from flower_sim.rollup_roles import FUNDING, fund_accounts  # heavy: web3 (0.7 s); `fedrollup --help` loads this
    from rollups_client.l1 import L1  # heavy: web3, as above

    indices = [accounts.MANAGER_INDEX + t.role_offset + i for t in plan
               for i in range(1 + t.simulation.validators + t.simulation.trainers)]
    console.print(f"== funding the role accounts of {len(plan)} publishers with {FUNDING / 10**18:g} ETH each for gas")
    funded = fund_accounts(L1(deployment.rpc_url, deployment), list(map(accounts.address, indices)))
    console.print(f"   {funded} accounts funded (the others had gas)")


def _run_concurrently(plan: list[MarketTask], stack, terms, console: Console) -> dict[int, dict]:
    """Each task in a process of its own, all at once; the results of those that finished, by task number."""
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
    queue = context.Queue()
    console.print(f"== {len(plan)} publishers open their tasks and run their federations at once, each from its own "
                  "keys, on one rollup")
    processes = [context.Process(target=run_task, args=(t, str(stack.deployment_path), stack.node_url, terms, queue),
                                 name=f"task-{t.number}") for t in plan]
    start = time.perf_counter()
    for p in processes:
        p.start()
    results: dict[int, dict] = {}
    for _ in processes:
        result = queue.get()
        if "error" in result:
            console.print(f"[task {result['number']}] failed: {result['error']}", markup=False)
        else:
            results[result["number"]] = result
    for p in processes:
        p.join()
    console.print(f"{len(results)} of {len(plan)} tasks finished in {time.perf_counter() - start:.0f} s")
    return results


def run_task(task: MarketTask, deployment_path: str, node_url: str, terms, queue) -> None:
    """In a publisher's process: open its task, run and record its federation, withdraw its refund; put its result
    (task id, refund) or its error on `queue`."""
    try:
        os.environ[accounts.ROLE_OFFSET_ENV] = str(task.role_offset)  # this process's roles: keys of their own
        from contracts_config.deployment import load  # heavy: in the child (spawned: it imports afresh)
        from flower_sim import models  # heavy: Keras, as above
        from flower_sim.rollup_roles import RollupRecorder  # heavy: web3, as above
        from flower_sim.simulation import simulate  # heavy: Flower, as above
        from rollups_client.node import NodeClient  # heavy: eth_abi, as above

        deployment = load(deployment_path)
        node = NodeClient.at(node_url, deployment.application)
        say = (lambda text: print(f"  [task {task.number}] {text}", flush=True))
        recorder = RollupRecorder(task.simulation, deployment, node, terms=terms, say=say)
        models.configure_tensorflow(task.simulation.seed)  # Keras loads before the task opens, as in the demo
        task_id = recorder.open_task(task.simulation.rounds)
        say(f"publisher {recorder.l1.address(recorder.manager_key)} runs task {task_id}: "
            f"{task.simulation.rounds} rounds, {task.simulation.trainers} trainers, {task.simulation.validators} "
            f"validators, outputs in {task.out}/")
        result = simulate(task.simulation, task.out, observer=recorder, rollup=recorder)
        refund = recorder.withdraw_refund()
        say(f"task {task_id} finished in {result.elapsed_s:.0f} s; its publisher withdrew {refund} wei")
        queue.put({"number": task.number, "task_id": task_id, "refund": refund,
                   "publisher": recorder.l1.address(recorder.manager_key), "out": str(task.out)})
    except BaseException as err:  # the parent reports it; a child must always answer
        queue.put({"number": task.number, "error": f"{type(err).__name__}: {err}",
                   "trace": traceback.format_exc()})


def _settle_and_audit(stack, results: dict[int, dict], broker: str, console: Console) -> str:
    """The console's tables for every task, the audit, then the broker's and the publishers' vouchers executed."""
    from frontend_console.audit import AuditFailure, audit  # heavy: web3 (keeps `fedrollup --help` instant)
    from frontend_console.views import refunds_table, rounds_table, tasks_table  # heavy: eth_abi, as above
    from rollups_client.l1 import L1  # heavy: web3, as above

    deployment, node = stack.deployment, stack.node
    l1 = L1(deployment.rpc_url, deployment)
    notices = [o for o in node.notices() if o.message is not None]
    console.print(tasks_table(notices, None))
    for result in sorted(results.values(), key=lambda r: r["task_id"]):
        console.print(rounds_table(notices, result["task_id"]))
    console.print(refunds_table(notices, None))
    console.print("== the auditors' console: every task's notices re-derived from L1 inputs under the deployment's "
                  "market, proven on L1")
    try:
        folders = {r["task_id"]: Path(r["out"]) for r in results.values()}  # each task's model files in its own
        report = audit(node, l1, run_dir=folders,
                       progress=lambda text: console.print(f"  [audit] {text}", markup=False))
    except AuditFailure as failure:
        return f"AUDIT FAILED: {failure}"
    execute_vouchers(node, l1, broker, "the broker's fee", console)
    for result in sorted(results.values(), key=lambda r: r["task_id"]):
        if result["refund"]:
            execute_vouchers(node, l1, result["publisher"], f"task {result['task_id']}'s publisher's refund", console)
    console.print(f"run folders {', '.join(sorted(r['out'] for r in results.values()))} · chain logs {stack.run_dir}/")
    return report.verdict()


def execute_vouchers(node, l1, destination: str, what: str, console: Console) -> int:
    """Execute on L1 every voucher to `destination` not executed yet (their proofs are ready: the audit proved every
    output), from the owner's key; returns the wei `destination` received, and says it."""
    from dapp.state import format_wei  # heavy: eth_abi, as in _settle_and_audit
    from rollups_node.outputs import VOUCHER  # heavy: eth_abi, as above

    owner = accounts.private_key(accounts.OWNER_INDEX)
    vouchers = [o for o in node.outputs(output_type=VOUCHER) if (o.destination or "").lower() == destination.lower()
                and not l1.application.functions.wasOutputExecuted(o.index).call()]
    before = l1.balance(destination)
    gas = [l1.receipt(l1.execute_output(owner, v.raw, v.index, v.siblings))["gasUsed"] for v in vouchers]
    received = l1.balance(destination) - before
    console.print(f"{what}: {len(vouchers)} voucher(s) (outputs {', '.join(str(v.index) for v in vouchers)}; "
                  f"executeOutput gas {', '.join(f'{g:,}' for g in gas)}) executed on L1 for "
                  f"{format_wei(sum(v.value for v in vouchers))}; {destination}'s L1 balance {format_wei(before)} → "
                  f"{format_wei(l1.balance(destination))} (+{format_wei(received)})")
    return received
