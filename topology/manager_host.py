"""The manager host of the emulated network: the global model, the validators' models out of band, the rollup.

Run on the `mgr` host as `python -m topology.manager_host SPEC.json`. It serves a small HTTP service on the
manager's address, which the validators' ServerApps (`flower_sim.validator_app`) reach across the emulated
backbone: GET /global/<r> gives the global model of round r as `.npz` (404 until round r-1 is closed), POST
/validator/<r>/<v> takes validator v's report and model of round r, and POST /upload/<r>/<v> how long that
upload took as the validator measured it. Between rounds it averages the validators' models, scores them on
the test set, writes `round-NNN.npz` and `round-NNN-validator-V.npz` into the run
folder, and, when the spec names a deployment, records the round on the chain host's rollup from each role's
key (`RollupRecorder`). At the end it writes `metrics.json` as `simulate` does, each round's timings split into
training, validation, network transfer and chain, and each validator's upload (seconds, bytes) per round.
SPEC keys: config (SimulationConfig fields), host, port, out, deployment (a deployment file or null),
node_url, round_timeout_s.
"""
from __future__ import annotations

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Exchange:
    """What the HTTP service and the round loop share: published global models, received validator results."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.globals: dict[int, bytes] = {}
        self.results: dict[int, dict[int, dict]] = {}
        self.uploads: dict[int, dict[int, dict]] = {}

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


def make_handler(exchange: Exchange):
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


def report_from(document: dict):
    from flower_sim.records import Contribution, ValidatorReport

    fields = dict(document)
    fields["contributions"] = tuple(Contribution(**c) for c in fields["contributions"])
    return ValidatorReport(**fields)


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


def close_round(manager, server_round: int, results: dict[int, dict], out: Path):
    """Average, score and save the validators' models of a round; (record without timings, global weights,
    averaging seconds, scoring seconds)."""
    from flower_sim.manager import average, closest_validator
    from flower_sim.npz import save_weights
    from flower_sim.records import RoundRecord, ValidatorResult
    from flower_sim.validator_app import weights_from_bytes

    reports = [report_from(results[v]["report"]) for v in sorted(results)]
    weights = [weights_from_bytes(base64.b64decode(results[v]["weights"])) for v in sorted(results)]
    for report, w in zip(reports, weights):
        if save_weights(out / report.model_file, w) != report.model_sha256:
            raise RuntimeError(f"validator {report.validator_id}'s model of round {server_round} arrived altered")
    started = time.perf_counter()
    global_weights = average(weights)
    averaging_s = time.perf_counter() - started
    started = time.perf_counter()
    global_score = manager.evaluate(global_weights)
    scores = [manager.evaluate(w) for w in weights]
    scoring_s = time.perf_counter() - started
    file_name, digest = manager.save_global(server_round, global_weights)
    results_ = tuple(ValidatorResult(
        validator_id=r.validator_id, own_accuracy=r.own_accuracy, own_accuracy_bps=r.own_accuracy_bps,
        aggregated_accuracy=s.accuracy, aggregated_accuracy_bps=s.bps, accepted=r.accepted, rejected=r.rejected,
        rejected_malicious=r.rejected_malicious, model_file=r.model_file, model_sha256=r.model_sha256)
        for r, s in zip(reports, scores))
    record = RoundRecord(
        round=server_round, global_accuracy=global_score.accuracy, global_accuracy_bps=global_score.bps,
        global_loss=global_score.loss, global_model_file=file_name, global_sha256=digest,
        best_validator=closest_validator([s.bps for s in scores], global_score.bps), validators=results_,
        contributions=tuple(c for r in reports for c in r.contributions))
    return record, reports, global_weights, averaging_s, scoring_s


def recorded_rounds(node, task_id: int) -> list[dict]:
    """The task's RoundRecorded notices, read back from the rollups node (what an auditor would see)."""
    from dapp.schema import RoundRecorded

    found = []
    for output in node.notices():
        notice = output.message
        if isinstance(notice, RoundRecorded) and notice.task_id == task_id:
            found.append({"round": notice.round, "global_digest": notice.global_digest.hex(),
                          "global_accuracy_bps": notice.global_accuracy_bps, "output_index": hex(output.index)})
    return found


def run(spec: dict) -> int:
    from dataclasses import replace

    from flower_sim import models
    from flower_sim.config import SimulationConfig
    from flower_sim.data import make_splits
    from flower_sim.manager import Manager
    from flower_sim.outputs import write_outputs
    from flower_sim.validator_app import weights_to_bytes

    started_run = time.perf_counter()
    cfg = SimulationConfig(**spec["config"]).validate()
    out = Path(spec["out"])
    models.configure_tensorflow(cfg.seed)
    splits = make_splits(cfg.split_spec())
    manager = Manager(cfg.model, cfg.seed, splits.test, out)
    exchange = Exchange()
    server = ThreadingHTTPServer((spec["host"], int(spec["port"])), make_handler(exchange))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recorder = None
    if spec.get("deployment"):
        from contracts_config.deployment import load
        from flower_sim.rollup_roles import RollupRecorder
        from rollups_client.node import NodeClient

        deployment = load(Path(spec["deployment"]))
        node_url = spec["node_url"]
        node = NodeClient(node_url + "/rpc", f"{node_url}/inspect/{deployment.application}", deployment.application)
        recorder = RollupRecorder(cfg, deployment, node, say=lambda text: print(f"[chain] {text}", flush=True))
        recorder.open_task(cfg.rounds)
        print(f"task {recorder.task_id} open on the rollup in {recorder.timings.setup_s:.1f} s", flush=True)
    exchange.publish(1, weights_to_bytes(manager.initial_weights()))
    print(f"serving the global model on http://{spec['host']}:{spec['port']}", flush=True)
    records, upload_per_validator = [], {}
    round_started = time.perf_counter()
    for server_round in range(1, cfg.rounds + 1):
        results = exchange.wait_all(server_round, cfg.validators, float(spec.get("round_timeout_s", 1800)))
        record, reports, global_weights, averaging_s, scoring_s = close_round(manager, server_round, results, out)
        chain_started = time.perf_counter()
        if recorder is not None:
            for report in reports:
                recorder.on_validator_report(report)
            recorder.on_round_closed(record)
        chain_s = time.perf_counter() - chain_started
        exchange.publish(server_round + 1, weights_to_bytes(global_weights))
        now = time.perf_counter()
        uploads = exchange.wait_uploads(server_round, cfg.validators, 60.0)  # sent right after the models
        upload_per_validator[server_round] = {str(v): uploads[v] for v in sorted(uploads)}
        record = replace(record, timings=round_timings(results, uploads, reports, averaging_s, scoring_s, chain_s,
                                                        now - round_started))
        round_started = now
        records.append(record)
        print(f"round {server_round} closed: global accuracy {record.global_accuracy:.4f}, "
              f"{record.timings['wall_s']:.1f} s (training {record.timings['training_s']:.1f}, network "
              f"{record.timings['network_s']:.1f} with the slowest upload {record.timings['upload_s']:.2f}, "
              f"chain {chain_s:.1f})", flush=True)
    write_outputs(out, cfg, records, data_source=splits.source, elapsed_s=time.perf_counter() - started_run,
                  title=f"{cfg.strategy}, attack {cfg.attack}, emulated edge network")
    document = json.loads((out / "metrics.json").read_text())
    for round_document in document["rounds"]:
        round_document["upload_per_validator"] = upload_per_validator[round_document["round"]]
    if recorder is not None:
        document["rollup"] = {"task_id": recorder.task_id, "setup_s": recorder.timings.setup_s,
                              "node_url": spec["node_url"], "recorded": recorded_rounds(node, recorder.task_id)}
    (out / "metrics.json").write_text(json.dumps(document, indent=2) + "\n")
    time.sleep(1.0)  # let the validators fetch the last global model before the service goes
    server.shutdown()
    print("metrics.json written", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text())))
