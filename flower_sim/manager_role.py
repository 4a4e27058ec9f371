"""The manager's role in a deployment (`fedrollup manager`): its round loop behind its HTTP link, and the rollup.

`fedrollup manager` runs it on the manager's own machine (in the emulated network, on the `mgr` host). It serves the
manager link (`flower_sim.manager_link`) on its address: the run's configuration, which every `fedrollup validator`
fetches and runs its ServerApp (`flower_sim.validator_app`) with, and the global model of each round. Each round it
waits for every validator's model and report, closes the round as `simulate` does (`flower_sim.manager.RoundCloser`:
average, score, `round-NNN.frq` and `round-NNN-validator-V.frq` in the run folder), announces the close on its
standard output (one line, which the emulated network's driver `topology.federated_rounds` reads), records the round
on the rollup when given a deployment and a node (`RollupRecorder`, an observer of the close: it publishes and funds
the task, and sends every role's inputs from that role's account of the run's mnemonic), and publishes the next
global model. At the end it writes `accuracy.png` and the run's figures (`RunMetrics`: the rounds, their timings
split into training, validation, network transfer and chain, each validator's upload (seconds, bytes) per round,
the rollup) to `figures` (the driver of the emulated network completes them into `metrics.json`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from common import accounts
from contracts_config.deployment import load
from dapp.schema import RoundRecorded
from flower_sim import models
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.manager import Manager, RoundCloser, no_timings
from flower_sim.manager_link import (ClosedRoundAnnouncer, Exchange, round_from, serve, server_context,
                                     weights_to_bytes)
from flower_sim.quantize import save_frq1
from flower_sim.outputs import RunMetrics, plot_accuracy
from flower_sim.records import Observers
from flower_sim.rollup_roles import RollupRecorder, TaskTerms
from flower_sim.validator import ValidatorRound
from rollups_client.node import NodeClient


def round_timings(results: dict[int, dict], uploads: dict[int, dict], reports, averaging_s: float, scoring_s: float,
                  chain_s: float, wall_s: float) -> dict[str, float]:
    """A round's wall time split: the validators' groups run in parallel, so each share is the slowest group's.
    `network_s` is, for the slowest validator, its stations' transfers plus fetching the global model plus
    uploading its model and report. `serverapp_setup_s` (round 1 only) is the validators' ServerApps starting:
    imports, data, finding trainers."""
    t = [results[v]["timings"] for v in sorted(results)]
    up = [uploads[v]["upload_s"] for v in sorted(results)]
    return {"wall_s": wall_s,
            "training_s": max(x["training_s"] for x in t),
            "validation_s": max(r.validation_s for r in reports),
            "aggregation_s": max(r.aggregation_s for r in reports) + averaging_s,
            "network_s": max(x["station_transfer_s"] + x["fetch_global_s"] + u for x, u in zip(t, up)),
            "upload_s": max(up),
            "clientapp_start_s": max(x["clientapp_start_s"] for x in t),
            "serverapp_setup_s": max(x.get("serverapp_setup_s", 0.0) for x in t),
            "manager_scoring_s": scoring_s,
            "chain_s": chain_s}


def received_rounds(server_round: int, results: dict[int, dict], out: Path) -> list[ValidatorRound]:
    """The validators' rounds as they arrived, in validator order, each model saved in the run folder (its
    `round-NNN-validator-V.frq`) and checked against the digest its report gives."""
    rounds = [round_from(results[v]) for v in sorted(results)]
    for r in rounds:
        if save_frq1(out / r.report.model_file, r.model) != r.report.model_digest:
            raise RuntimeError(f"validator {r.report.validator_id}'s model of round {server_round} arrived altered")
    return rounds


def recorded_rounds(node, task_id: int) -> list[dict]:
    """The task's RoundRecorded notices, read back from the rollups node (what an auditor would see)."""

    found = []
    for output in node.notices():
        notice = output.message
        if isinstance(notice, RoundRecorded) and notice.task_id == task_id:
            found.append({"round": notice.round, "global_digest": notice.global_digest.hex(),
                          "global_accuracy_bps": notice.global_accuracy_bps, "output_index": hex(output.index)})
    return found


@dataclass(frozen=True)
class ManagerOptions:
    """What `fedrollup manager` runs: the federation, where it serves its link, where it writes, the rollup."""

    cfg: SimulationConfig
    out: Path
    host: str = "0.0.0.0"
    port: int = 8700
    figures: Path | None = None          # default: <out>/metrics.json
    deployment: Path | None = None       # the rollup's deployment file; None: the run records on no rollup
    node_url: str = ""                   # the rollups node the manager reads the rollup's answers from
    rpc_url: str = ""                    # L1's JSON-RPC; "": the deployment file's
    round_timeout_s: float = 1800.0      # how long a round waits for every validator
    validator_addresses: tuple[str, ...] = ()  # validators sending their own inputs (it holds no key of theirs)
    open_rounds: int | None = None       # the task's openRounds; None: what L1's block time asks (`TaskTerms`)
    contest_blocks: int | None = None    # each round's contest window; None: what carries every trainer's contest
    trainer_addresses: tuple[str, ...] = ()  # trainers registering and contesting from their own keys, by id
    tls_cert: Path | None = None         # the link's certificate and key: HTTPS (None: plain HTTP)
    tls_key: Path | None = None


def run(options: ManagerOptions) -> int:
    started_run = time.perf_counter()
    cfg, out = options.cfg, options.out
    out.mkdir(parents=True, exist_ok=True)
    posters = options.validator_addresses or tuple(accounts.address(accounts.validator_index(g))
                                                   for g in range(cfg.validators))
    exchange = Exchange(cfg, validators=posters)  # who may post each group's round: the addresses the task names
    tls = server_context(options.tls_cert, options.tls_key) if options.tls_cert else None
    server = serve(exchange, options.host, options.port, tls)  # /config first: the validators' ServerApps start
    print(f"manager serving the run's configuration on {'https' if tls else 'http'}://{options.host}:{options.port} "
          f"({cfg.rounds} rounds, {cfg.validators} validators, {cfg.trainers} trainers)", flush=True)
    models.configure_tensorflow(cfg.seed)
    splits = make_splits(cfg.split_spec())
    manager = Manager(cfg.model, cfg.seed, splits, out)
    recorder = None
    if options.deployment is not None:
        deployment = load(options.deployment)
        if options.rpc_url:
            deployment = replace(deployment, rpc_url=options.rpc_url)
        node = NodeClient.at(options.node_url, deployment.application)
        terms = TaskTerms(open_rounds=options.open_rounds, contest_blocks=options.contest_blocks)  # None: sized
        recorder = RollupRecorder(cfg, deployment, node, terms=terms,
                                  say=lambda text: print(f"[chain] {text}", flush=True),
                                  remote_validators=options.validator_addresses,
                                  remote_trainers=options.trainer_addresses)
    if recorder is not None:
        recorder.open_task(cfg.rounds)
        exchange.publish_task(recorder.signing_task())  # before round 1's global: the validators ask after it
        print(f"task {recorder.task_id} open on the rollup in {recorder.timings.setup_s:.1f} s", flush=True)
    metrics = RunMetrics.start(cfg, splits.source)
    closer = RoundCloser(manager, Observers(ClosedRoundAnnouncer(), *([recorder] if recorder else []), metrics),
                         rollup=recorder)
    exchange.publish(1, weights_to_bytes(manager.initial_weights()))
    print(f"serving the global model on http://{options.host}:{options.port}", flush=True)
    records = []
    round_started = time.perf_counter()
    for server_round in range(1, cfg.rounds + 1):
        results = exchange.wait_all(server_round, cfg.validators, options.round_timeout_s)
        received = received_rounds(server_round, results, out)
        closed = closer.close(server_round, received, timings=no_timings)
        exchange.publish(server_round + 1, weights_to_bytes(closed.global_weights, closed.record.global_model))
        now = time.perf_counter()
        uploads = exchange.wait_uploads(server_round, cfg.validators, 60.0)  # sent right after the models
        timings = round_timings(results, uploads, [r.report for r in received], closed.averaging_s,
                                closed.scoring_s, closed.observers_s, now - round_started)
        metrics.add_to_round(server_round, timings=timings,
                             upload_per_validator={str(v): uploads[v] for v in sorted(uploads)})
        round_started = now
        records.append(replace(closed.record, timings=timings))
        print(f"round {server_round} closed: global accuracy {closed.record.global_accuracy:.4f}, "
              f"{timings['wall_s']:.1f} s (training {timings['training_s']:.1f}, network "
              f"{timings['network_s']:.1f} with the slowest upload {timings['upload_s']:.2f}, "
              f"chain {timings['chain_s']:.1f})", flush=True)
    if recorder is not None:  # the last round's close (each round closes on the rollup beside the next's training)
        recorder.finish()
        for server_round in range(1, cfg.rounds + 1):
            metrics.add_to_round(server_round, rollup=recorder.round_figures(server_round))
    metrics.add(elapsed_s=time.perf_counter() - started_run)
    plot_accuracy(out / "accuracy.png", records, f"{cfg.strategy}, attack {cfg.attack}, deployment")
    if recorder is not None:
        metrics.add(rollup={"task_id": recorder.task_id, "setup_s": recorder.timings.setup_s,
                            "node_url": options.node_url, "recorded": recorded_rounds(node, recorder.task_id)})
    figures = options.figures or out / "metrics.json"
    metrics.write(figures)
    time.sleep(1.0)  # let the validators fetch the last global model before the service goes
    server.shutdown()
    print(f"the run's figures written to {figures}", flush=True)
    return 0
