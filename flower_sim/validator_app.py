"""The ServerApp of ONE validator in a deployment: its group's rounds on its own SuperLink, the global model
fetched from the manager before each round and the validator's model sent back after it, out of band.

Run config: `SimulationConfig.to_run_config()` plus "validator-id" (0-based group), "manager-url" (the
manager's HTTP service, `topology.manager_host`), "out" (absolute folder for this validator's `.npz`) and, for an
https:// manager, "manager-ca" (the CA its certificate is verified against; absent: the system's CAs).
Per round r, over the manager link (`flower_sim.manager_link`): fetch the global model of round r, run the
`Validator` round over this SuperLink's Grid, then send the report, the model and timings: the Flower round's
wall time, the slowest trainer's training and ClientApp start seconds (`flower_sim.station_app`), and the
seconds fetching the global model; the link then sends how long that upload took.
With "key-file" (`fedrollup validator --key-file`, and "deployment-file", "rpc-url", "node-url"), the validator
sends its own rollup inputs from that key (`flower_sim.validator_agent`): its Register, each round's report, its
reveal, its closes in turn; the manager holds no key of it. Without, the manager sends them (the dev mnemonic).
Components: `serverapp = "flower_sim.validator_app:app"`, `clientapp = "flower_sim.station_app:app"`.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp

from common import accounts
from contracts_config.deployment import load
from flower_sim import models
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits
from flower_sim.federation import trainer_nodes
from flower_sim.grid import GroupGrid
from flower_sim.manager_link import fetch_global, fetch_task, post_result, round_document
from flower_sim.validator import Validator, ValidatorJudge
from flower_sim.key_file import read_key_file
from flower_sim.validator_agent import ValidatorAgent
from rollups_client.l1 import L1
from rollups_client.node import NodeClient

app = ServerApp()


class TimedGrid(GroupGrid):
    """A group's Grid that keeps, for the last round, its wall time and the replies' station timings, and
    waits at most `reply_timeout_s` for the replies: a reply lost on the way (a station gone, a SuperLink
    error) leaves that station out of the round instead of stalling the run (Flower waits forever by
    default). The stations left out are simply not in the validator's report: not judged, not paid."""

    def __init__(self, grid: Grid, node_ids: Iterable[int], reply_timeout_s: float | None = None) -> None:
        super().__init__(grid, node_ids)
        self.reply_timeout_s = reply_timeout_s
        self.last: dict[str, float] = {}

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        started = time.perf_counter()
        replies = list(self.grid.send_and_receive(messages, timeout=timeout if timeout is not None
                                                  else self.reply_timeout_s))
        wall = time.perf_counter() - started
        answered = {r.metadata.src_node_id for r in replies}
        silent = sorted(m.metadata.dst_node_id for m in messages if m.metadata.dst_node_id not in answered)
        if silent:
            print(f"{len(silent)} of {len(messages)} stations did not answer within {wall:.0f} s (nodes "
                  f"{', '.join(map(str, silent))}); this round goes on without them", flush=True)
        stations = [r.content["metrics"] for r in replies if not r.has_error() and "metrics" in r.content]
        train = [float(m.get("train-s", 0.0)) for m in stations]
        startup = [float(m.get("startup-s", 0.0)) for m in stations]
        slowest = max(range(len(stations)), key=lambda i: train[i] + startup[i], default=None)
        self.last = {"flower_round_s": wall, "training_s": max(train, default=0.0),
                     "clientapp_start_s": startup[slowest] if slowest is not None else 0.0,
                     "station_transfer_s": max(0.0, wall - (train[slowest] + startup[slowest]
                                                            if slowest is not None else 0.0))}
        return replies


def own_agent(config: dict, cfg: SimulationConfig, validator_id: int, task_id: int):
    """The validator's agent holding its own key (None without "key-file": the manager sends its inputs)."""
    if not config.get("key-file"):
        return None
    deployment = load(Path(str(config["deployment-file"])))
    rpc = str(config.get("rpc-url") or deployment.rpc_url)
    return ValidatorAgent(read_key_file(Path(str(config["key-file"]))), validator_id, L1(rpc, deployment),
                          NodeClient.at(str(config["node-url"]), deployment.application), task_id,
                          say=lambda text: print(f"[own key] {text}", flush=True))


def signing_key(config: dict, validator_id: int) -> str:
    """The key the validator signs its posts to the manager with: its own (`--key-file`), else the run's mnemonic's
    account of its group (the address the task names either way)."""
    if config.get("key-file"):
        return read_key_file(Path(str(config["key-file"])))
    return accounts.private_key(accounts.validator_index(validator_id))


def wait_for_nodes(grid: Grid, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(grid.get_node_ids())) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(list(grid.get_node_ids()))} of {count} SuperNodes connected")
        time.sleep(0.5)


@app.main()
def main(grid: Grid, context: Context) -> None:
    setup_started = time.perf_counter()
    config = dict(context.run_config)
    cfg = SimulationConfig.from_run_config(config).validate()
    validator_id, manager = int(config["validator-id"]), str(config["manager-url"]).rstrip("/")
    out = Path(str(config["out"]))
    out.mkdir(parents=True, exist_ok=True)
    models.configure_tensorflow(cfg.seed)
    splits = make_splits(cfg.split_spec())
    group = [t for t in range(cfg.trainers) if cfg.group_of(t) == validator_id]
    wait_for_nodes(grid, len(group), float(config.get("wait-nodes-s", 180)))
    node_of = trainer_nodes(grid)
    if sorted(node_of) != group:
        raise RuntimeError(f"validator {validator_id} expects trainers {group}, its SuperLink has {sorted(node_of)}")
    timed = TimedGrid(grid, [node_of[t] for t in group], float(config.get("reply-timeout-s", 600)))
    validator = Validator(validator_id, timed, ValidatorJudge(validator_id, splits.validators[validator_id], cfg),
                          cfg, cfg.malicious_trainers, out)
    setup = {"serverapp_setup_s": time.perf_counter() - setup_started}
    agent, trainers = None, []
    key = signing_key(config, validator_id)  # signs its posts to the manager
    ca = Path(str(config["manager-ca"])) if config.get("manager-ca") else None  # verifies an https:// manager
    for server_round in range(1, cfg.rounds + 1):
        global_weights, global_model, fetch_s = fetch_global(manager, server_round,
                                                             float(config.get("wait-global-s", 900)), ca)
        if server_round == 1:  # the task is open once round 1's global is served: the stations sign for it
            task = fetch_task(manager, ca)
            if task is not None:
                validator.join(task, key)  # its receipts signed by the key the task names
                agent = own_agent(config, cfg, validator_id, task.task_id)
                trainers = [task.trainer_address(t, cfg.validators) for t in range(cfg.trainers)]
        outcome = validator.run_round(server_round, global_weights, global_model)
        if agent is not None:  # its report, reveal and close go out from its key while the next round trains
            agent.submit(outcome.report, trainers, global_model if server_round > 1 else b"")
        timings = {**timed.last, "fetch_global_s": fetch_s, **(setup if server_round == 1 else {})}
        post_result(manager, server_round, validator_id, round_document(outcome, timings), key, ca)
    if agent is not None:
        agent.finish()
        print(f"validator {validator_id} sent {len(agent.sent)} rollup input(s) from its own key", flush=True)
