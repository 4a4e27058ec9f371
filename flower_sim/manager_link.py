"""The link between the validators and the manager across a network: both ends of its HTTP protocol.

In one process (`fedrollup simulate`, `flower_sim.server_app`) the round loop hands each validator's
`ValidatorRound` to the manager directly (`flower_sim.federation`). In a deployment each validator's ServerApp
(`flower_sim.validator_app`) reaches the manager's HTTP service (`serve`, run by `fedrollup manager`):
  * GET /config: the run's configuration (`SimulationConfig` fields as JSON), which `fedrollup validator` runs its
    ServerApp with, so that every validator runs the manager's federation;
  * GET /global/<r>: the global model of round r as `.npz` bytes (404 until round r-1 is closed);
  * GET /task: the rollup task the run records on, {"task_id", "chain_id", "application"}, or 404 when it records
    on none (final once round 1's global model is served: the manager opens the task first). The validators pass
    it to their stations in the train config, so that every trainer signs its updates for it;
  * POST /validator/<r>/<v>: validator v's round r as JSON: {"report": ValidatorReport fields, "timings": the
    validator's seconds, "model": its model's FRQ1 bytes as base64};
  * POST /upload/<r>/<v>: {"upload_s", "upload_bytes"}, how long the POST above took as the validator timed it
    (an upload can only be timed once it is over, so its figures follow in a request of their own).
The manager announces each round's close on its standard output (`ClosedRoundAnnouncer`, one line) for
whoever drives the run to read (`closed_round`): the global model of that round is saved at that moment.
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from common.errors import ConfigError
from dapp.eip712 import Domain
from flower_sim.config import SimulationConfig
from flower_sim.records import RoundRecord, ValidatorReport
from flower_sim.signatures import RollupTask
from flower_sim.validator import ValidatorRound

CLOSED = "manager closed round"  # the announcement's words: "manager closed round 3"


def weights_to_bytes(weights: list[np.ndarray], frq1: bytes = b"") -> bytes:
    """The global model as `.npz`: its float weights, and `frq1`, the FRQ1 bytes they came from (a closed round's
    global), which a validator that keeps the global commits as they are (re-quantizing changes them)."""
    buffer = io.BytesIO()
    np.savez(buffer, *weights, frq1=np.frombuffer(frq1, dtype=np.uint8))
    return buffer.getvalue()


def weights_from_bytes(data: bytes) -> tuple[list[np.ndarray], bytes]:
    """(weights, FRQ1 bytes or b"") of `weights_to_bytes`' output."""
    with np.load(io.BytesIO(data)) as npz:
        weights = [npz[f"arr_{i}"] for i in range(len(npz.files)) if f"arr_{i}" in npz.files]
        return weights, npz["frq1"].tobytes() if "frq1" in npz.files else b""


def round_document(outcome: ValidatorRound, timings: dict[str, float]) -> dict:
    """What POST /validator/<r>/<v> carries."""
    return {"report": outcome.report.as_dict(), "timings": timings,
            "model": base64.b64encode(outcome.model).decode()}


def round_from(document: dict) -> ValidatorRound:
    """The validator's round out of a POST /validator/<r>/<v> document."""
    model = base64.b64decode(document["model"])
    return ValidatorRound(model, replace(ValidatorReport.from_dict(document["report"]), model=model))


# ---------------------------------------------------------------------------------------------- the client
def fetch_global(manager: str, server_round: int, timeout_s: float) -> tuple[list[np.ndarray], bytes, float]:
    """The global model for `server_round`, waiting until the manager has it; (weights, its FRQ1 bytes or b"",
    download seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{manager}/global/{server_round}", timeout=60) as answer:
                data = answer.read()
            return (*weights_from_bytes(data), time.perf_counter() - started)
        except urllib.error.HTTPError as err:
            if err.code != 404 or time.monotonic() > deadline:
                raise RuntimeError(f"the manager did not give the global model of round {server_round}: {err}")
        except urllib.error.URLError as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the manager at {manager} is unreachable: {err}") from None
        time.sleep(0.2)


def fetch_config(manager: str, timeout_s: float) -> SimulationConfig:
    """The run's configuration, waiting (up to `timeout_s`) until the manager's service answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{manager}/config", timeout=10) as answer:
                return SimulationConfig(**json.loads(answer.read())).validate()
        except OSError as err:  # not up yet (refused, reset, timed out), or an error page
            if time.monotonic() > deadline:
                raise ConfigError(f"the manager at {manager} did not answer within {timeout_s:g} s: "
                                  f"{getattr(err, 'reason', err)}") from None
        time.sleep(1.0)


def fetch_task(manager: str) -> RollupTask | None:
    """The rollup task the manager's run records on, None when it records on none (ask once round 1's global
    model has been served)."""
    try:
        with urllib.request.urlopen(f"{manager}/task", timeout=60) as answer:
            task = json.loads(answer.read())
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise RuntimeError(f"the manager did not say which rollup task the run records on: {err}") from None
    return RollupTask(int(task["task_id"]), Domain(int(task["chain_id"]), str(task["application"])))


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


# ---------------------------------------------------------------------------------------------- the server
class Exchange:
    """What the HTTP service and the manager's round loop share: published global models, received rounds."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config  # the run's, served at /config
        self.lock = threading.Condition()
        self.globals: dict[int, bytes] = {}
        self.results: dict[int, dict[int, dict]] = {}
        self.uploads: dict[int, dict[int, dict]] = {}
        self.task: RollupTask | None = None

    def publish_task(self, task: RollupTask) -> None:
        with self.lock:
            self.task = task

    def publish(self, server_round: int, npz: bytes) -> None:
        with self.lock:
            self.globals[server_round] = npz

    def receive(self, server_round: int, validator_id: int, document: dict) -> None:
        with self.lock:
            self.results.setdefault(server_round, {})[validator_id] = document
            self.lock.notify_all()

    def receive_upload(self, server_round: int, validator_id: int, figures: dict) -> None:
        with self.lock:
            self.uploads.setdefault(server_round, {})[validator_id] = figures
            self.lock.notify_all()

    def wait_all(self, server_round: int, validators: int, timeout_s: float) -> dict[int, dict]:
        """Every validator's report and model of `server_round`."""
        return self._wait(self.results, "reported", server_round, validators, timeout_s)

    def wait_uploads(self, server_round: int, validators: int, timeout_s: float) -> dict[int, dict]:
        """Every validator's upload figures of `server_round` (sent right after its model)."""
        return self._wait(self.uploads, "timed their upload", server_round, validators, timeout_s)

    def _wait(self, store: dict[int, dict[int, dict]], what: str, server_round: int, validators: int,
              timeout_s: float) -> dict[int, dict]:
        with self.lock:
            if not self.lock.wait_for(lambda: len(store.get(server_round, {})) >= validators, timeout_s):
                have = sorted(store.get(server_round, {}))
                raise RuntimeError(f"round {server_round}: only validators {have} {what} within {timeout_s:g} s")
            return dict(store[server_round])


def make_handler(exchange: Exchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # the run's log says what matters
            pass

        def _answer(self, code: int, body: bytes, kind: str = "application/octet-stream") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts == ["config"] and exchange.config is not None:
                return self._answer(200, json.dumps(exchange.config.as_dict()).encode(), "application/json")
            if parts == ["task"]:
                with exchange.lock:
                    task = exchange.task
                if task is None:
                    return self._answer(404, b"this run records on no rollup\n", "text/plain")
                body = {"task_id": task.task_id, "chain_id": task.domain.chain_id,
                        "application": task.domain.verifying_contract}
                return self._answer(200, json.dumps(body).encode(), "application/json")
            if len(parts) == 2 and parts[0] == "global" and parts[1].isdigit():
                with exchange.lock:
                    npz = exchange.globals.get(int(parts[1]))
                if npz is not None:
                    return self._answer(200, npz)
            self._answer(404, b"not yet\n", "text/plain")

        def do_POST(self) -> None:
            parts = self.path.strip("/").split("/")
            take = {"validator": exchange.receive, "upload": exchange.receive_upload}.get(parts[0])
            if len(parts) != 3 or take is None or not (parts[1].isdigit() and parts[2].isdigit()):
                return self._answer(404, b"unknown\n", "text/plain")
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            take(int(parts[1]), int(parts[2]), json.loads(body))
            self._answer(200, b"ok\n", "text/plain")

    return Handler


def serve(exchange: Exchange, host: str, port: int) -> ThreadingHTTPServer:
    """The manager's HTTP service on (host, port), answering from a thread of its own; `.shutdown()` stops it."""
    server = ThreadingHTTPServer((host, port), make_handler(exchange))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---------------------------------------------------------------------------------------------- the close
class ClosedRoundAnnouncer:
    """A RoundObserver printing "manager closed round N" as soon as the manager has closed round N."""

    def on_validator_report(self, report: ValidatorReport) -> None:
        pass

    def on_round_closed(self, record: RoundRecord) -> None:
        print(f"{CLOSED} {record.round}", flush=True)


def closed_round(line: str) -> int | None:
    """The round a manager's output line announces as closed, or None for any other line."""
    words = line.strip()
    if words.startswith(CLOSED + " ") and words[len(CLOSED) + 1:].isdigit():
        return int(words[len(CLOSED) + 1:])
    return None
