"""Run `topology.echo_app` with `flwr run` on each validator: real Flower rounds over TLS across the emulated
links, moving a model-sized payload to every station of the group and back, with no learning in them.

The app folder holds only a pyproject.toml whose components point at `topology.echo_app` (importable from
the venv, so runtime dependency installation stays off); it is written into the run folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flower_sim.deployment import write_app
from topology.flower_services import FlowerServices
from topology.processes import VENV_BIN, HostProcesses, wait_until


@dataclass(frozen=True)
class EchoRound:
    """One round of one validator group: seconds for all its stations to get the payload and send it back."""

    validator: str
    round: int
    seconds: float
    nodes: int
    intact: int
    payload_bytes: int


def write_echo_app(folder: Path) -> Path:
    return write_app(folder, "fedrollup-echo", "Moves a model-sized ArrayRecord to every SuperNode and back",
                     "topology.echo_app:serverapp", "topology.echo_app:clientapp",
                     {"nodes": 1, "payload-bytes": 400000, "rounds": 1, "wait-nodes-s": 120, "out": ""})


def run_echo_rounds(processes: HostProcesses, services: FlowerServices, payload_bytes: int, rounds: int,
                    timeout_s: float = 600.0) -> list[EchoRound]:
    """`flwr run` the echo app on every validator at once (each drives its own group, as in the paper);
    needs `write_connections` done on the validators."""
    network = processes.network
    topo = network.topo
    app = write_echo_app(network.run_dir / "echo-app")
    running = []
    for validator in topo.validators:
        nodes = sum(1 for s in services.supernodes if topo.node(s).group == validator.group)
        out = processes.host_dir(validator.name) / "echo-rounds.json"
        out.unlink(missing_ok=True)
        run_config = f'nodes={nodes} payload-bytes={payload_bytes} rounds={rounds} out="{out}"'
        argv = [str(VENV_BIN / "flwr"), "run", str(app), validator.name, "--run-config", run_config, "--stream"]
        running.append((validator.name, out, processes.start(validator.name, "flwr-run-echo", argv)))
    results = []
    for validator, out, run in running:
        wait_until(lambda: not run.alive, timeout_s, f"echo rounds on {validator}", interval_s=0.2)
        if not out.exists():
            raise RuntimeError(f"the echo rounds on {validator} wrote no results: {run.log_tail(5)}")
        for r in json.loads(out.read_text())["rounds"]:
            results.append(EchoRound(validator, r["round"], r["seconds"], r["nodes"], r["intact"],
                                     r["payload_bytes"]))
    return results
