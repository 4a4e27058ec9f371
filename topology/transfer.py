"""Moving a model-sized payload over the emulated links: a validator serves it over HTTP, stations fetch it.

Used by the tests (the configured rates really shape traffic) and by `benchmarks/topology.py` (seconds and
bytes for a model broadcast to N stations at once).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from topology.processes import HostProcess, HostProcesses, wait_until

PAYLOAD_PORT = 8800
FETCH = ("import sys, time, urllib.request; t, start = time.monotonic(), time.time(); "
         "data = urllib.request.urlopen(sys.argv[1], timeout=120).read(); "
         "print(len(data), time.monotonic() - t, start, time.time())")


@dataclass(frozen=True)
class Fetch:
    """One station's download: bytes of payload, seconds, wall-clock start and end, bytes on its interface."""

    station: str
    payload_bytes: int
    seconds: float
    link_bytes: int
    started: float
    ended: float


def serve_payload(processes: HostProcesses, host: str, size_bytes: int, port: int = PAYLOAD_PORT) -> str:
    """Write `size_bytes` random bytes on `host` and serve them over HTTP; return the URL."""
    network = processes.network
    folder = processes.host_dir(host) / "payload"
    folder.mkdir(exist_ok=True)
    (folder / "model.bin").write_bytes(os.urandom(size_bytes))
    address = network.topo.address(host)
    server = processes.start(host, "payload-server", [sys.executable, "-m", "http.server", str(port), "--bind",
                                                      address, "--directory", str(folder)])
    wait_until(lambda: network.reachable(host, address, port), 20, f"payload server on {host}", server)
    return f"http://{address}:{port}/model.bin"


def fetch_all(processes: HostProcesses, stations: list[str], url: str, timeout_s: float = 300.0) -> list[Fetch]:
    """All `stations` download `url` at once; each reports its own bytes and seconds."""
    network = processes.network
    before = {s: sum(rx + tx for rx, tx in network.interface_bytes(s).values()) for s in stations}
    running: list[HostProcess] = [processes.start(s, "fetch", [sys.executable, "-c", FETCH, url]) for s in stations]
    for process in running:
        wait_until(lambda: not process.alive, timeout_s, f"download on {process.host}", interval_s=0.05)
        if process.popen.returncode != 0:
            raise RuntimeError(f"download on {process.host} failed: {process.log_tail(2)}")
    results = []
    for process in running:
        size, seconds, started, ended = process.log_tail(1).split()
        after = sum(rx + tx for rx, tx in network.interface_bytes(process.host).values())
        results.append(Fetch(process.host, int(size), float(seconds), after - before[process.host], float(started),
                             float(ended)))
    return results


def aggregate_mbps(results: list[Fetch]) -> float:
    """Payload Mbit/s delivered to all stations together, from the first start to the last end."""
    span = max(r.ended for r in results) - min(r.started for r in results)
    return sum(r.payload_bytes for r in results) * 8 / span / 1e6
