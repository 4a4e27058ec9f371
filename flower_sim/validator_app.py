"""The ServerApp of ONE validator in a deployment: its group's rounds on its own SuperLink, the global model
fetched from the manager before each round and the validator's model sent back after it, out of band.

Run config: `SimulationConfig.to_run_config()` plus "validator-id" (0-based group), "manager-url" (the
manager's HTTP service, `topology.manager_host`) and "out" (absolute folder for this validator's `.npz`).
Per round r: GET <manager>/global/r (an `.npz`; 404 until the manager has closed round r-1), run the
`Validator` round over this SuperLink's Grid, then POST <manager>/validator/r/v a JSON document with the
report, the model (base64 `.npz`) and timings: the Flower round's wall time, the slowest trainer's training
and ClientApp start seconds (`flower_sim.station_app`), and the seconds fetching the global model. The upload
can only be timed once it is over, so its seconds and bytes follow in a small POST <manager>/upload/r/v.
Components: `serverapp = "flower_sim.validator_app:app"`, `clientapp = "flower_sim.station_app:app"`.
"""
from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp

from flower_sim.grid import GroupGrid

app = ServerApp()


def weights_to_bytes(weights: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *weights)
    return buffer.getvalue()


def weights_from_bytes(data: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(data)) as npz:
        return [npz[f"arr_{i}"] for i in range(len(npz.files))]


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


def fetch_global(manager: str, server_round: int, timeout_s: float) -> tuple[list[np.ndarray], float]:
    """The global model for `server_round`, waiting until the manager has it; (weights, download seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{manager}/global/{server_round}", timeout=60) as answer:
                data = answer.read()
            return weights_from_bytes(data), time.perf_counter() - started
        except urllib.error.HTTPError as err:
            if err.code != 404 or time.monotonic() > deadline:
                raise RuntimeError(f"the manager did not give the global model of round {server_round}: {err}")
        except urllib.error.URLError as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the manager at {manager} is unreachable: {err}") from None
        time.sleep(0.2)


def _post_json(url: str, document: dict) -> tuple[float, int]:
    body = json.dumps(document).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        answer.read()
    return time.perf_counter() - started, len(body)


def post_result(manager: str, server_round: int, validator_id: int, document: dict) -> dict[str, float]:
    """Send the round's report and model to the manager, then tell it how long that took, as seen from here:
    {"upload_s": seconds from the request to the manager's answer, "upload_bytes": the request body}."""
    seconds, size = _post_json(f"{manager}/validator/{server_round}/{validator_id}", document)
    upload = {"upload_s": seconds, "upload_bytes": size}
    _post_json(f"{manager}/upload/{server_round}/{validator_id}", upload)
    return upload


def wait_for_nodes(grid: Grid, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(list(grid.get_node_ids())) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(list(grid.get_node_ids()))} of {count} SuperNodes connected")
        time.sleep(0.5)


@app.main()
def main(grid: Grid, context: Context) -> None:
    from flower_sim import models
    from flower_sim.attacks import malicious_trainers
    from flower_sim.config import SimulationConfig
    from flower_sim.data import make_splits
    from flower_sim.federation import trainer_nodes
    from flower_sim.validator import Validator, ValidatorJudge

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
    malicious = malicious_trainers(cfg.trainers, cfg.malicious, cfg.seed) if cfg.attack != "none" else frozenset()
    timed = TimedGrid(grid, [node_of[t] for t in group], float(config.get("reply-timeout-s", 600)))
    validator = Validator(validator_id, timed, ValidatorJudge(validator_id, splits.validators[validator_id], cfg),
                          cfg, malicious, out)
    setup = {"serverapp_setup_s": time.perf_counter() - setup_started}
    for server_round in range(1, cfg.rounds + 1):
        global_weights, fetch_s = fetch_global(manager, server_round, float(config.get("wait-global-s", 900)))
        outcome = validator.run_round(server_round, global_weights)
        timings = {**timed.last, "fetch_global_s": fetch_s, **(setup if server_round == 1 else {})}
        document = {"report": asdict(outcome.report), "timings": timings,
                    "weights": base64.b64encode(weights_to_bytes(outcome.weights)).decode()}
        post_result(manager, server_round, validator_id, document)
