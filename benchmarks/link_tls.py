"""Benchmark: what TLS costs a round's traffic on the manager link (issue 16).

A validator's round on the link is one GET of the global model (`fetch_global`: the float weights as `.npz` and
their FRQ1 bytes) and its signed POSTs of its model and report, then of its upload figures (`post_result`). Both run
here against the real service (`manager_link.serve`) on loopback, once over plain HTTP and once over HTTPS (a
throwaway EC P-256 CA and certificate, `topology.tls`, as the emulated network's), interleaved in the same run, with
seeded weights of the real architectures (`benchmarks.model_posts.seeded_weights`). Each request opens its own
connection (urllib keeps none alive), so every HTTPS request pays a full handshake, as a validator's does.
Loopback has no bandwidth limit: the figures are the CPU's share (handshake, encryption), which a real link's
transfer time adds to.
Run: .venv/bin/python -m benchmarks.link_tls [--repeats 20] [--arch cnn --arch cnn10]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from common import accounts
from dapp.qmodel import digest
from flower_sim.manager_link import (Exchange, fetch_global, post_result, round_document, serve, server_context,
                                     weights_to_bytes)
from flower_sim.quantize import to_frq1
from flower_sim.records import ValidatorReport
from flower_sim.validator import ValidatorRound
from benchmarks.model_posts import seeded_weights
from topology.tls import make_certificates

KEY = accounts.private_key(accounts.validator_index(0))


def document(model: bytes) -> dict:
    """Validator 0's round 1 with `model` (its report as the link carries it, the contributions left empty)."""
    report = ValidatorReport(round=1, validator_id=0, strategy="mad", own_accuracy=0.9, own_accuracy_bps=9000,
                             contributions=(), model_file="m.frq", model_digest=digest(model), training_s=1.0,
                             validation_s=0.5, aggregation_s=0.1)
    return round_document(ValidatorRound(model, report), {"train_s": 1.0})


def measure(arch: str, repeats: int, certs: Path) -> list[tuple]:
    weights = seeded_weights(arch, 42)
    frq1 = to_frq1(weights)
    npz = weights_to_bytes(weights, frq1)
    mgr = make_certificates(certs / arch, {"mgr": ["127.0.0.1"]})["mgr"]
    links = {}
    for scheme, tls in (("http", None), ("https", server_context(mgr.cert, mgr.key))):
        exchange = Exchange(validators=(accounts.address(accounts.validator_index(0)),))
        exchange.publish(1, npz)
        server = serve(exchange, "127.0.0.1", 0, tls)
        links[scheme] = (server, f"{scheme}://127.0.0.1:{server.server_address[1]}", mgr.ca if tls else None)
    doc = document(frq1)
    seconds = {(scheme, step): [] for scheme in links for step in ("fetch", "post")}
    try:
        for _ in range(repeats):  # interleaved: both schemes see the same machine load
            for scheme, (_, url, ca) in links.items():
                started = time.perf_counter()
                fetch_global(url, 1, 10, ca)
                seconds[scheme, "fetch"].append(time.perf_counter() - started)
                started = time.perf_counter()
                post_result(url, 1, 0, doc, KEY, ca)  # the same post again: a retry the manager takes
                seconds[scheme, "post"].append(time.perf_counter() - started)
    finally:
        for server, _, _ in links.values():
            server.shutdown()
            server.server_close()
    rows = []
    for step, size in (("GET global model (.npz)", len(npz)), ("POST model + report, POST upload", None)):
        key = "fetch" if step.startswith("GET") else "post"
        http, https = (statistics.median(seconds[s, key]) * 1000 for s in ("http", "https"))
        size = size if size is not None else len(json.dumps(doc).encode())
        rows.append((arch, step, size, http, https, https - http, (https / http - 1) * 100))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--arch", action="append", default=None, help="cnn (the demo's), cnn10; default both")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as certs:
        for arch in args.arch or ["cnn", "cnn10"]:
            rows += measure(arch, args.repeats, Path(certs))
    print(f"median of {args.repeats}, loopback, a new connection per request")
    print("| model | step | bytes | http (ms) | https (ms) | TLS adds (ms) | TLS adds (%) |")
    print("|---|---|---|---|---|---|---|")
    for arch, step, size, http, https, extra, share in rows:
        print(f"| {arch} | {step} | {size:,} | {http:.2f} | {https:.2f} | {extra:+.2f} | {share:+.0f}% |")


if __name__ == "__main__":
    main()
