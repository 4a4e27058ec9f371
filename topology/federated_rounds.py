"""The federated rounds across the emulated network: a ServerApp per validator SuperLink, the manager between.

Design (the manager<->validator exchange is out of band, over the emulated backbone):
  * the manager host runs `fedrollup manager` (`flower_sim.manager_role`), the manager link's HTTP service
    (`flower_sim.manager_link`) on its own address that hands out the run's configuration and the global model of
    each round and takes the validators' models and reports; it closes each round as `simulate` does
    (`flower_sim.manager.RoundCloser`), writes the `.frq` files, records every round on the chain host's rollup,
    and hands its figures over at the end;
  * each validator host already runs `fedrollup validator` (started with its SuperLink by
    `flower_services.start_superlinks`): once the manager's link answers, it runs ONE `flwr run` for the whole
    run on its own SuperLink, whose ServerApp (`flower_sim.validator_app`) loops over the rounds: fetch the
    global model from the manager, run its group's round with the SuperNodes on its stations, send its model
    back. One ServerApp process per validator for the whole run, so TensorFlow and the validator's data load
    once, not once per round;
  * the stations' `fedrollup trainer` SuperNodes run `flower_sim.station_app` (the trainer, timed).
These are the commands an operator runs on a machine of a real deployment (docs/deployment.md).
While it runs, this module reads the manager's output and snapshots each station's radio-link byte counters
whenever the manager announces a round closed, and samples the memory (PSS) of every process the run started,
for the bytes per station per round and peak memory; it writes `metrics.json` once, at the end.
When the rounds end and the run was recorded on the chain host's rollup, the manager host runs the auditors'
console audit (`fedrollup console audit`, as `fedrollup demo` ends) against the chain host's node and L1
across the emulated network, with the run folder's `.frq` files; its verdict goes into `metrics.json`.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import fields
from pathlib import Path

from flower_sim.config import SimulationConfig
from flower_sim.manager_link import closed_round
from flower_sim.outputs import RunMetrics
from topology.clean import netns_of, root_netns
from topology.flower_services import MANAGER_PORT, manager_link, manager_tls
from topology.processes import VENV_BIN, HostProcesses, OutputLines, wait_until
from topology.traffic import bytes_since, station_bytes


def pss_bytes(pids: set[int]) -> int:
    """Proportional set size of `pids` together: shared pages (TensorFlow's libraries, mapped by every
    Python process) counted once across them, unlike a sum of RSS."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
    return total


def host_namespaces(network) -> dict[str, str]:
    """{network namespace: host name} of the emulated hosts (fixed for the run's life)."""
    host_of = {netns_of(network.host(n.name).pid): n.name for n in network.topo.nodes
               if getattr(network.host(n.name), "pid", None)}
    host_of.pop(root_netns(), None)  # switches (access points) live in the root namespace: not a host's
    return host_of


def host_memory(host_of: dict[str, str]) -> dict[str, int]:
    """PSS bytes of every process in each emulated host's network namespace (`host_namespaces`), now
    (Mininet's own shells included; the chain host's daemons too, which no tracked process parents)."""
    pids: dict[str, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (host := host_of.get(netns_of(int(entry.name)))):
            pids.setdefault(host, set()).add(int(entry.name))
    return {host: pss_bytes(found) for host, found in pids.items()}


def memory_estimate(peak_by_host: dict[str, int], stations: int) -> dict[str, int]:
    """Peak memory of a run with `stations` stations, scaled from this run's per-host peaks: the other hosts
    as measured, plus the median station's peak per station."""
    per_station = sorted(b for h, b in peak_by_host.items() if h.startswith("sta"))
    station = per_station[len(per_station) // 2] if per_station else 0
    fixed = sum(b for h, b in peak_by_host.items() if not h.startswith("sta"))
    return {"stations": stations, "per_station_bytes": station, "other_hosts_bytes": fixed,
            "estimated_bytes": fixed + station * stations}


def manager_argv(cfg: SimulationConfig, flower, out: Path, address: str, figures: Path, timeout_s: float,
                 chain_options: list[str]) -> list[str]:
    """`fedrollup manager` on the manager host: the run's options, its link on `address` (HTTPS with the manager
    host's certificate when the run has TLS, `flower_services.manager_tls`), the rollup's `chain_options`."""
    return [str(VENV_BIN / "fedrollup"), "manager", *option_argv(cfg), "--out", str(out), "--host", address,
            "--port", str(MANAGER_PORT), *manager_tls(flower), "--figures", str(figures),
            "--round-timeout", f"{timeout_s:g}", *chain_options]


def run_rounds(network, processes: HostProcesses, flower, chain, cfg: SimulationConfig, timeout_s: float = 1800.0,
               say=print) -> dict:
    """Run `cfg.rounds` rounds over the running network; returns the figures (and metrics.json's path)."""
    topo = network.topo
    out = network.run_dir
    manager_address = topo.address("mgr")
    figures = processes.host_dir("mgr") / "manager-figures.json"
    figures.unlink(missing_ok=True)
    chain_options = ["--deployment", str(chain.deployment), "--node", chain.node_url] if chain else []
    for address in flower.validator_addresses:  # each validator sends its own inputs: the manager gets no key
        chain_options += ["--validator-address", address]
    if chain and flower.trainer_addresses:  # each trainer registers and contests from its own key: addresses only
        roster = processes.host_dir("mgr") / "trainer-addresses"
        roster.write_text("".join(a + "\n" for a in flower.trainer_addresses))
        chain_options += ["--trainer-addresses", str(roster)]
    started = time.monotonic()
    announcements = OutputLines(processes.log_path("mgr", "manager"))
    manager = processes.start("mgr", "manager", manager_argv(cfg, flower, out, manager_address, figures, timeout_s,
                                                             chain_options),
                              env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    runs = flower.superlinks  # each validator host's `fedrollup validator`: it runs the rounds once the manager answers
    say(f"`fedrollup manager` on mgr; `fedrollup validator` on {', '.join(runs)} runs its ServerApp: "
        f"{cfg.rounds} round(s), {cfg.trainers // cfg.validators} stations each")
    wait_until(lambda: network.reachable(topo.validators[0].name, manager_address, MANAGER_PORT), 300,
               f"the manager's model service on {manager_address}:{MANAGER_PORT}", manager)
    say(f"manager host serving the global model on {manager_link(flower, manager_address)[0]}"
        + (f" (task open on the rollup at {chain.node_url})" if chain else ""))
    peak, peak_by_host, per_round_bytes, runs_ended = 0, {}, [], None
    last, host_of = station_bytes(network), host_namespaces(network)
    radio, moving_since = [network.radio_links(0.0)], time.monotonic()  # each round's radio links (mobility)

    def take_announcements() -> None:
        """The manager's "closed round N" lines: each closes a round of station bytes."""
        nonlocal last
        for line in announcements.read():
            if closed_round(line) == len(per_round_bytes) + 1:
                now = station_bytes(network)
                per_round_bytes.append(bytes_since(last, now))
                last = now
                say(f"round {len(per_round_bytes)} closed by the manager")
                if len(per_round_bytes) < cfg.rounds:
                    radio.append(network.radio_links(time.monotonic() - moving_since))
                    for name in topo.mobility:
                        say(f"{name} moved: {describe_radio(name, radio[-1][name])} for round {len(radio)}")

    while manager.alive:
        if time.monotonic() - started > timeout_s * max(1, cfg.rounds):
            raise RuntimeError(f"the federated rounds did not finish (manager log {manager.log})")
        by_host = host_memory(host_of)
        peak = max(peak, sum(by_host.values()))
        peak_by_host = {h: max(b, peak_by_host.get(h, 0)) for h, b in by_host.items()}
        take_announcements()
        for name, run in runs.items():
            if not run.alive and run.popen.returncode != 0:
                raise RuntimeError(f"`fedrollup validator` on {name} failed: {run.log_tail(5)}")
        if any(r.alive for r in runs.values()):
            runs_ended = None
        elif (runs_ended := runs_ended or time.monotonic()) < time.monotonic() - 120:
            raise RuntimeError("the validators' runs ended but the manager never closed the rounds: "
                               + " | ".join(f"{n}: {r.log_tail(3)}" for n, r in runs.items()))
        time.sleep(0.5)
    take_announcements()  # a round announced between the last look and the manager's end
    if manager.popen.returncode != 0 or not figures.exists() or len(per_round_bytes) < cfg.rounds:
        raise RuntimeError(f"the manager failed (code {manager.popen.returncode}): {manager.log_tail(8)}")
    for name, run in runs.items():
        wait_until(lambda: not run.alive, 120, f"`fedrollup validator` on {name} to end", interval_s=0.2)
        if run.popen.returncode != 0:
            raise RuntimeError(f"`fedrollup validator` on {name} failed: {run.log_tail(5)}")
    metrics = RunMetrics(json.loads(figures.read_text()))  # the manager's: rounds, timings, uploads, rollup
    for number, (sent, links) in enumerate(zip(per_round_bytes, radio), 1):
        metrics.add_to_round(number, bytes_per_station=sent, radio_per_station=links)
    metrics.add(topology={"stations": len(topo.stations), "validators": len(topo.validators),
                          "peak_pss_bytes": peak, "peak_pss_bytes_by_host": peak_by_host,
                          "memory_estimate_20_stations": memory_estimate(peak_by_host, 20),
                          "seconds": round(time.monotonic() - started, 2)})
    if chain:
        say("the auditors' console audits the run from the manager host: every notice re-derived from the L1 "
            "inputs, proven on L1, the .frq model files checked against the digests on chain")
    metrics.add(audit=audit_run(processes, chain, out) if chain else None)
    metrics.write(out / "metrics.json")
    document = metrics.document
    return {"metrics": str(out / "metrics.json"), "rounds": [r["timings"] for r in document["rounds"]],
            "bytes_per_station_per_round": per_round_bytes, "peak_pss_bytes": peak,
            "upload_per_validator": [r["upload_per_validator"] for r in document["rounds"]],
            "global_accuracy": [r["global_accuracy"] for r in document["rounds"]],
            "memory_estimate_20_stations": document["topology"]["memory_estimate_20_stations"],
            "rollup": document.get("rollup"), "audit": document["audit"]}


def option_argv(cfg: SimulationConfig) -> list[str]:
    """`cfg` as the federation options of `fedrollup manager` (those of `fedrollup simulate`)."""
    argv = []
    for name, value in cfg.as_dict().items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def describe_radio(station: str, link: dict) -> str:
    """One station's radio link in words: where, how far from its AP, signal and rate."""
    if "rssi_dbm" not in link:
        return f"{link['mbps']:g} Mbit/s"
    return (f"at {','.join(f'{c:g}' for c in link['position'])}, {link['distance_m']:g} m from "
            f"{link['access_point']}, {link['rssi_dbm']} dBm, {link['phy_mbps']:g} Mb/s PHY -> "
            f"{link['mbps']:g} Mbit/s")


def audit_run(processes: HostProcesses, chain, out: Path, host: str = "mgr", timeout_s: float = 300.0) -> dict:
    """`fedrollup console audit` of the run on `host`, against the chain host's node and L1 over the emulated
    network; {"passed", "verdict" (its one line: AUDIT PASSED: ... or AUDIT FAILED: ...), "seconds", "log"}."""
    argv = [str(VENV_BIN / "fedrollup"), "console", "audit", "--node", chain.node_url, "--rpc", chain.l1_rpc_url,
            "--deployment", str(chain.deployment), "--run-dir", str(out)]
    started = time.monotonic()
    process = processes.start(host, "audit", argv)
    try:
        code = process.popen.wait(timeout=timeout_s)
        last = process.log_tail(1).strip()
    except subprocess.TimeoutExpired:
        processes.stop(process)
        code, last = None, f"the audit did not finish within {timeout_s:g} s"
    if code in (0, 1) and last.startswith("AUDIT "):
        verdict = last
    else:  # it could not run (unreachable node, bad file, timeout): never a pass
        verdict = f"AUDIT FAILED: the audit could not run ({last or f'exit code {code}'})"
    return {"passed": code == 0 and verdict.startswith("AUDIT PASSED"), "verdict": verdict,
            "seconds": round(time.monotonic() - started, 2), "log": str(process.log)}


def simulation_config(topo, options) -> SimulationConfig:
    """The FL configuration of a topology run: `simulate`'s defaults, the network's trainers and validators,
    and whichever FL options the run gave (`options`: a `paper_topology.TopologyOptions`)."""
    given = {f.name: getattr(options, f.name) for f in fields(SimulationConfig) if hasattr(options, f.name)}
    given.update(trainers=len(topo.stations), validators=len(topo.validators), rounds=options.rounds)
    return SimulationConfig(**given).validate()
