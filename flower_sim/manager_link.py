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
  * GET /run: {"run_id"}, the random id of this manager's run, which every POST's signature covers;
  * POST /validator/<r>/<v>: validator v's round r as JSON: {"report": ValidatorReport fields, "timings": the
    validator's seconds, "model": its model's FRQ1 bytes as base64};
  * POST /upload/<r>/<v>: {"upload_s", "upload_bytes"}, how long the POST above took as the validator timed it
    (an upload can only be timed once it is over, so its figures follow in a request of their own).
Given a certificate (`server_context`, `fedrollup manager --tls-cert --tls-key`) the service speaks HTTPS only, and a
validator's client (`client_context`, `--manager-ca`) verifies the manager's certificate against its CA and the
address it dials before it sends or takes anything: a certificate that does not verify is a one-line ConfigError,
never a fall-back to plain HTTP. TLS says who the manager is; the signature below still says who the validator is.
Every POST is signed by validator v's own key (`link_auth`) and checked before anything is kept: a POST that is
unsigned, signed by another key, for a validator the run does not have, malformed (not JSON, not a report of that
round and validator, a model that is not the report's digest), too large, or that changes what the validator already
posted is refused with one line saying why, and changes nothing; the manager's round loop only sees checked posts.
The manager announces each round's close on its standard output (`ClosedRoundAnnouncer`, one line) for
whoever drives the run to read (`closed_round`): the global model of that round is saved at that moment.
"""
from __future__ import annotations

import base64
import io
import binascii
import functools
import json
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from common.errors import ConfigError
from dapp.eip712 import Domain
from dapp.qmodel import digest
from flower_sim.config import SimulationConfig
from flower_sim.link_auth import HEADER, request_signer, sign_request
from flower_sim.records import RoundRecord, ValidatorReport
from flower_sim.signatures import RollupTask
from flower_sim.validator import ValidatorRound

CLOSED = "manager closed round"  # the announcement's words: "manager closed round 3"
MAX_POST_BYTES = 64 * 2**20  # a validator's round: the MLP's model is 0.1 MB, 10,000 trainers' report entries ~6 MB
HANDSHAKE_TIMEOUT_S = 30.0  # a client that connects and says nothing holds its own thread this long, no one else's


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
def client_context(manager: str, ca: Path | None = None) -> ssl.SSLContext | None:
    """How a validator opens the manager link at `manager`: None for http:// (no TLS), for https:// a context that
    verifies the manager's certificate and its name or address against `ca` (None: the system's trusted CAs).
    ConfigError for a CA that is missing or not a certificate, or a CA given for plain HTTP."""
    if not manager.startswith("https://"):
        if ca is not None:
            raise ConfigError(f"--manager-ca {ca}: the manager link {manager} is not https://, no certificate to "
                              f"verify (give the manager's https:// URL)")
        return None
    if ca is not None and not Path(ca).is_file():
        raise ConfigError(f"--manager-ca {ca}: no such file")
    try:
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    except (ssl.SSLError, OSError) as err:
        raise ConfigError(f"--manager-ca {ca}: not a PEM CA certificate ({err})") from None


def _open(manager: str, target: str | urllib.request.Request, timeout: float, ca: Path | None):
    """urlopen on the manager link, over TLS that verifies the manager for https:// (`client_context`). A
    certificate that does not verify (or a manager that speaks no TLS) is a ConfigError saying which and how to fix
    it: retrying would not help, and the link never falls back to plain HTTP."""
    try:
        return urllib.request.urlopen(target, timeout=timeout, context=client_context(manager, ca))
    except urllib.error.URLError as err:
        reason = getattr(err, "reason", None)
        if isinstance(reason, ssl.SSLCertVerificationError):
            trusted = f"the CA in --manager-ca {ca}" if ca is not None else "the system's CAs (no --manager-ca)"
            raise ConfigError(f"the manager's certificate at {manager} did not verify against {trusted}: "
                              f"{reason.verify_message}; give --manager-ca FILE, the CA that signed the manager's "
                              f"certificate (its SAN must name the host in --manager)") from None
        if isinstance(reason, ssl.SSLError):
            raise ConfigError(f"no TLS with the manager at {manager} ({reason.reason or reason}): is it serving "
                              f"HTTPS (fedrollup manager --tls-cert/--tls-key)? Otherwise give its http:// URL") \
                from None
        raise


def fetch_global(manager: str, server_round: int, timeout_s: float,
                 ca: Path | None = None) -> tuple[list[np.ndarray], bytes, float]:
    """The global model for `server_round`, waiting until the manager has it; (weights, its FRQ1 bytes or b"",
    download seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        started = time.perf_counter()
        try:
            with _open(manager, f"{manager}/global/{server_round}", 60, ca) as answer:
                data = answer.read()
            return (*weights_from_bytes(data), time.perf_counter() - started)
        except urllib.error.HTTPError as err:
            if err.code != 404 or time.monotonic() > deadline:
                raise RuntimeError(f"the manager did not give the global model of round {server_round}: {err}")
        except urllib.error.URLError as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the manager at {manager} is unreachable: {err}") from None
        time.sleep(0.2)


def fetch_config(manager: str, timeout_s: float, ca: Path | None = None) -> SimulationConfig:
    """The run's configuration, waiting (up to `timeout_s`) until the manager's service answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with _open(manager, f"{manager}/config", 10, ca) as answer:
                return SimulationConfig(**json.loads(answer.read())).validate()
        except OSError as err:  # not up yet (refused, reset, timed out), or an error page
            if time.monotonic() > deadline:
                raise ConfigError(f"the manager at {manager} did not answer within {timeout_s:g} s: "
                                  f"{getattr(err, 'reason', err)}") from None
        time.sleep(1.0)


def fetch_task(manager: str, ca: Path | None = None) -> RollupTask | None:
    """The rollup task the manager's run records on, None when it records on none (ask once round 1's global
    model has been served)."""
    try:
        with _open(manager, f"{manager}/task", 60, ca) as answer:
            task = json.loads(answer.read())
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise RuntimeError(f"the manager did not say which rollup task the run records on: {err}") from None
    return RollupTask(int(task["task_id"]), Domain(int(task["chain_id"]), str(task["application"])),
                      trainers=tuple(str(a) for a in task.get("trainers", ())))


@functools.lru_cache(maxsize=None)
def fetch_run_id(manager: str, ca: Path | None = None) -> str:
    """The manager's run id, which the validator's signatures cover (a post of another run is refused); asked once
    per manager (a manager's run keeps its id, and a manager restarted mid-run is not supported)."""
    with _open(manager, f"{manager}/run", 60, ca) as answer:
        return str(json.loads(answer.read())["run_id"])


def _post_json(manager: str, path: str, document: dict, key: str, run_id: str,
               ca: Path | None = None) -> tuple[float, int]:
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/json", HEADER: sign_request(key, run_id, "POST", path, body)}
    request = urllib.request.Request(manager + path, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with _open(manager, request, 120, ca) as answer:
            answer.read()
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"the manager refused POST {path} ({err.code}): "
                           f"{err.read().decode(errors='replace').strip()}") from None
    return time.perf_counter() - started, len(body)


def post_result(manager: str, server_round: int, validator_id: int, document: dict, key: str,
                ca: Path | None = None) -> dict[str, float]:
    """Send the round's report and model to the manager, signed with the validator's `key`, then tell it how long
    that took, as seen from here: {"upload_s": seconds from the request to the manager's answer, "upload_bytes":
    the request body}."""
    run_id = fetch_run_id(manager, ca)
    seconds, size = _post_json(manager, f"/validator/{server_round}/{validator_id}", document, key, run_id, ca)
    upload = {"upload_s": seconds, "upload_bytes": size}
    _post_json(manager, f"/upload/{server_round}/{validator_id}", upload, key, run_id, ca)
    return upload


# ---------------------------------------------------------------------------------------------- the server
class Refused(Exception):
    """A POST the manager does not take: the HTTP status and one line saying why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Exchange:
    """What the HTTP service and the manager's round loop share: published global models, received rounds."""

    def __init__(self, config: SimulationConfig | None = None, validators: tuple[str, ...] = ()) -> None:
        self.config = config  # the run's, served at /config
        self.validators = tuple(a.lower() for a in validators)  # group v's validator address: who may post as v
        self.run_id = secrets.token_hex(16)  # what this run's signatures cover
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
        """Keep a checked round; the same post again is a no-op (a retry), another one is refused."""
        with self.lock:
            kept = self.results.setdefault(server_round, {}).setdefault(validator_id, document)
            if kept != document:
                raise Refused(409, f"validator {validator_id} already posted its round {server_round}: it cannot "
                                   f"change it")
            self.lock.notify_all()

    def receive_upload(self, server_round: int, validator_id: int, figures: dict) -> None:
        with self.lock:  # a retried upload is timed again: the last figures stand (they pay or decide nothing)
            self.uploads.setdefault(server_round, {})[validator_id] = figures
            self.lock.notify_all()

    def check_post(self, kind: str, server_round: int, validator_id: int, path: str, body: bytes,
                   signature: str) -> dict:
        """The document of a POST that validator `validator_id` signed and that holds what `kind` needs (Refused
        otherwise, saying why)."""
        if not validator_id < len(self.validators):
            raise Refused(404, f"this run has {len(self.validators)} validators: no validator {validator_id}")
        if not signature:
            raise Refused(401, f"unsigned: a validator signs its posts with its key (header {HEADER})")
        try:
            signer = request_signer(signature, self.run_id, "POST", path, body)
        except ValueError as err:
            raise Refused(401, f"header {HEADER}: {err}") from None
        if signer != self.validators[validator_id]:
            raise Refused(403, f"signed by {signer}, not by validator {validator_id} ({self.validators[validator_id]})"
                               f" for this run")
        try:
            document = json.loads(body)
        except ValueError:
            raise Refused(400, "the body is not JSON") from None
        problem = (_round_problem if kind == "validator" else _upload_problem)(document, server_round, validator_id)
        if problem:
            raise Refused(400, problem)
        return document

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


def _round_problem(document, server_round: int, validator_id: int) -> str:
    """What is wrong with a POST /validator document ("" if nothing)."""
    try:
        outcome = round_from(document)
        timings = document["timings"]
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as err:
        return f"not a validator's round ({type(err).__name__}: {err})"
    report = outcome.report
    if (report.round, report.validator_id) != (server_round, validator_id):
        return (f"the report is validator {report.validator_id!r}'s of round {report.round!r}, posted as validator "
                f"{validator_id}'s of round {server_round}")
    if digest(outcome.model) != report.model_digest:
        return "the model is not the one whose digest the report commits to"
    if not isinstance(timings, dict) or not all(isinstance(t, (int, float)) for t in timings.values()):
        return "timings must map names to seconds"
    return ""


def _upload_problem(document, server_round: int, validator_id: int) -> str:
    """What is wrong with a POST /upload document ("" if nothing)."""
    if not isinstance(document, dict) or set(document) != {"upload_s", "upload_bytes"} \
            or not all(isinstance(v, (int, float)) and v >= 0 for v in document.values()):
        return 'an upload\'s figures are {"upload_s": seconds, "upload_bytes": bytes}, both ≥ 0'
    return ""


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
            if parts == ["run"]:
                return self._answer(200, json.dumps({"run_id": exchange.run_id}).encode(), "application/json")
            if parts == ["config"] and exchange.config is not None:
                return self._answer(200, json.dumps(exchange.config.as_dict()).encode(), "application/json")
            if parts == ["task"]:
                with exchange.lock:
                    task = exchange.task
                if task is None:
                    return self._answer(404, b"this run records on no rollup\n", "text/plain")
                body = {"task_id": task.task_id, "chain_id": task.domain.chain_id,
                        "application": task.domain.verifying_contract, "trainers": list(task.trainers)}
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
            length = self.headers.get("Content-Length", "")
            try:
                if len(parts) != 3 or take is None or not (parts[1].isdigit() and parts[2].isdigit()):
                    raise Refused(404, "POST /validator/<round>/<validator> or /upload/<round>/<validator>")
                if not length.isdigit() or int(length) > MAX_POST_BYTES:
                    self.close_connection = True  # the body is not read: the connection cannot carry another request
                    raise Refused(413, f"a post carries a Content-Length of at most {MAX_POST_BYTES:,} bytes")
                body = self.rfile.read(int(length))
                round_, validator = int(parts[1]), int(parts[2])
                take(round_, validator, exchange.check_post(parts[0], round_, validator, self.path, body,
                                                            self.headers.get(HEADER, "")))
            except Refused as refused:
                return self._answer(refused.status, f"{refused}\n".encode(), "text/plain")
            self._answer(200, b"ok\n", "text/plain")

    return Handler


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The manager link's TLS: its certificate (the names or addresses the validators dial as SANs) and its key;
    ConfigError (one line) for a missing file, a key that cannot be read or does not match the certificate."""
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{option} {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert), str(key), password=lambda: b"")  # no prompt for an encrypted key
    except (ssl.SSLError, OSError) as err:
        raise ConfigError(f"--tls-cert {cert} --tls-key {key}: not a PEM certificate and its unencrypted private "
                          f"key ({getattr(err, 'reason', None) or err})") from None
    return context


class LinkServer(ThreadingHTTPServer):
    """The manager link's server; with a TLS context it shakes hands in each connection's own thread (the accept
    loop never waits on a client), and a failed handshake (a plain-HTTP client, a client that does not trust the
    certificate, one that says nothing for `HANDSHAKE_TIMEOUT_S`) is one line on stderr and closes that
    connection only."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__(address, handler)
        self.tls = tls

    def finish_request(self, request, client_address) -> None:
        if self.tls is not None:
            try:
                request.settimeout(HANDSHAKE_TIMEOUT_S)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as err:  # a timeout is an OSError
                reason = getattr(err, "reason", None) or err
                hint = "; a plain-HTTP client: it should dial https://" if reason == "HTTP_REQUEST" else ""
                print(f"manager link: refused a connection from {client_address[0]}: TLS handshake failed "
                      f"({reason}){hint}", file=sys.stderr, flush=True)
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if self.tls is not None:  # the TLS socket took the connection over: close it (the plain one is empty)
                try:
                    request.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                request.close()


def serve(exchange: Exchange, host: str, port: int, tls: ssl.SSLContext | None = None) -> LinkServer:
    """The manager's HTTP service on (host, port), HTTPS with `tls` (`server_context`), answering from a thread
    of its own; `.shutdown()` stops it."""
    server = LinkServer((host, port), make_handler(exchange), tls)
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
