"""The paper's emulated edge network, end to end: `sudo fedrollup topology [options]`.

Builds the network (Mininet-WiFi where the machine has it, else the wired fallback), starts the chain host
and the role commands a deployment runs: `fedrollup validator` (a SuperLink per validator) and `fedrollup
trainer` (a SuperNode per station) over TLS with SuperNode authentication, checks connectivity across the
emulated links, prints a summary, writes `<out>/topology-summary.json`, hands the network to
`run_federation` (the seam where the federated rounds plug in), and opens the Mininet CLI unless --no-cli.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.errors import ConfigError
from flower_sim.config import SimulationConfig
from topology import chain_host, flower_services
from topology.clean import leftovers
from topology.echo_round import run_echo_rounds
from topology.emulator import MININET_WIFI, EmulatorUnavailable, choose_emulator
from flower_sim.deployment import DEFAULT_CLIENTAPP_ISOLATION
from topology.net import EmulatedNetwork
from topology.processes import HostProcesses
from topology.radio import describe_rates
from topology.script import load_script
from topology.topo import EdgeTopology, Rates, paper_topology
from topology.traffic import bytes_since, station_bytes

_RATES, _FL = Rates(), SimulationConfig()


@dataclass(frozen=True)
class TopologyOptions:
    """A topology run: the network, what runs on it, and the federation's options (as `fedrollup simulate`)."""

    stations: int = 20                      # trainer stations, split evenly across validators
    validators: int = 2                     # one access point (group) each
    radio_mbps: float = _RATES.radio_mbps
    ap_mbps: float = _RATES.ap_mbps
    backbone_mbps: float = _RATES.backbone_mbps
    radio_delay_ms: float = 0.0
    radio_loss: float = 0.0                 # percent
    topo: Path | None = None                # a topology file; overrides the network options above
    script: Path | None = None              # a topology script (topology/scripts/*.py); overrides them too
    wired: bool = False                     # the wired Mininet network even where WiFi runs
    rounds: int = 1                         # federated rounds (0: none)
    out: Path | None = None                 # None: runs/<time>-topology
    echo_rounds: int = 1                    # Flower rounds that only move a payload, to measure the network
    echo_bytes: int = 400_000
    strategy: str = _FL.strategy
    task: str = _FL.task                    # mnist, or qos (each station forecasts its own SLA violations)
    model: str = ""                         # "": the task's model
    local_epochs: int = _FL.local_epochs
    attack: str = _FL.attack
    malicious: float = _FL.malicious
    seed: int = _FL.seed
    no_chain: bool = False
    insecure: bool = False                  # Flower without TLS
    clientapp_isolation: str = DEFAULT_CLIENTAPP_ISOLATION
    trainer_rollup_keys: str = "own"        # own: each station holds its rollup key; mnemonic: the manager's (before)
    no_cli: bool = False
    verbose: bool = False                   # Mininet's own log lines too
    measure_qos: Path | None = None         # a CSV: measure QoS per station and window instead of the run
    windows: int = 40                       # QoS measurement windows
    window_s: float = 1.0                   # seconds of one window


@dataclass
class TopologyServices:
    """Handles of everything running on the network, for whoever drives the federated rounds."""

    processes: object                       # topology.processes.HostProcesses
    flower: object                          # topology.flower_services.FlowerServices
    chain: object | None                    # topology.chain_host.ChainEndpoints, None with --no-chain
    checks: dict = field(default_factory=dict)


def run_federation(network, services: TopologyServices, options: TopologyOptions) -> dict | None:
    """The federated rounds over the running network (`topology.federated_rounds`): a ServerApp per validator
    SuperLink, the manager host averaging between rounds and recording each round on the chain host's rollup;
    returns the run's figures (metrics.json is in the run folder)."""
    from topology.federated_rounds import (  # heavy: Flower (0.3 s); `fedrollup --help` loads this module
        run_rounds, simulation_config)

    if options.rounds == 0:
        print("no federated rounds asked (--rounds 0)")
        return None
    cfg = simulation_config(network.topo, options)
    figures = run_rounds(network, services.processes, services.flower, services.chain, cfg)
    for number, (timings, sent, uploads) in enumerate(zip(figures["rounds"], figures["bytes_per_station_per_round"],
                                                          figures["upload_per_validator"]), 1):
        upload = max(uploads.values(), key=lambda u: u["upload_s"])
        print(f"round {number}: {timings['wall_s']:.1f} s = training {timings['training_s']:.1f} + validation "
              f"{timings['validation_s']:.1f} + network {timings['network_s']:.1f} (of which the slowest "
              f"validator's upload to the manager {upload['upload_s']:.2f} s for {upload['upload_bytes']:,} bytes) "
              f"+ ClientApp start {timings['clientapp_start_s']:.1f} + ServerApp setup "
              f"{timings['serverapp_setup_s']:.1f} + chain {timings['chain_s']:.1f} (+ the rest); bytes per station "
              f"median {sorted(sent.values())[len(sent) // 2]:,}")
    print(f"global accuracy per round {[round(a, 4) for a in figures['global_accuracy']]}; peak memory (PSS) of "
          f"the run's processes {figures['peak_pss_bytes'] / 2**20:.0f} MiB, "
          f"which scales to {figures['memory_estimate_20_stations']['estimated_bytes'] / 2**30:.1f} GiB for 20 "
          f"stations; "
          f"metrics in {figures['metrics']}")
    audit = figures["audit"]
    if audit is None:
        print("no audit: the run was not recorded on a rollup (--no-chain)")
    else:  # the last line of the summary: the audit's verdict
        print(audit["verdict"] if audit["passed"] else f"{audit['verdict']} (audit log {audit['log']})")
    return figures


def open_cli(net, wifi: bool) -> None:
    """Mininet-WiFi's own CLI where it runs (it knows stations' positions, `sta1 iw dev` …), else Mininet's."""
    from mininet.log import setLogLevel  # optional: Mininet, only with `make topology-deps`

    if wifi:
        from mn_wifi.cli import CLI  # optional: Mininet-WiFi, where the machine has it
    else:
        from mininet.cli import CLI  # optional: Mininet, only with `make topology-deps`
    setLogLevel("output")  # the CLI prints its answers at this level
    print(f"{'Mininet-WiFi' if wifi else 'Mininet'} CLI: try `sta1 ping -c1 val1`, `val1 ss -tn`, `exit` to tear "
          "everything down")
    CLI(net)


def topology_from(options: TopologyOptions) -> EdgeTopology:
    if options.topo and options.script:
        raise ConfigError("give either --topo or --script, not both")
    if options.script:
        return load_script(options.script)
    if options.topo:
        return EdgeTopology.load(options.topo)
    rates = Rates(options.radio_mbps, options.ap_mbps, options.backbone_mbps, options.radio_delay_ms,
                  options.radio_loss)
    return paper_topology(options.stations, options.validators, rates)


def bring_up(network, options: TopologyOptions) -> TopologyServices:
    """Start the chain host and the Flower services on a built network, checking each step across the links."""
    topo = network.topo
    processes = HostProcesses(network)
    checks: dict = {}
    first = {v.name: topo.group(v.group)[0].name for v in topo.validators}
    pairs = [(s, v) for v, s in first.items()] + [(v.name, "mgr") for v in topo.validators]
    pairs += [(s, "chain") for s in first.values()]
    checks["ping"] = {f"{a}->{b}": network.ping(a, b) for a, b in pairs}
    print("ping across the links: " + ", ".join(f"{k} {'ok' if ok else 'FAILED'}" for k, ok in checks["ping"].items()))
    if not all(checks["ping"].values()):
        raise RuntimeError("some hosts cannot reach each other (see above)")
    chain = None
    if not options.no_chain:
        started = time.monotonic()
        print("starting the chain host (anvil, the Cartesi contracts, a Quorum of the manager and the validators), "
              "then each member's rollups node and backend on its own host ...")
        chain = chain_host.start_chain(processes)
        probe_host = next(iter(first.values()))
        checks["chain_id_seen_from_" + probe_host] = chain_host.chain_id_from(processes, probe_host, chain)
        checks["node_alive_from_" + probe_host] = chain_host.node_alive_from(processes, probe_host, chain)
        checks["chain_up_s"] = round(time.monotonic() - started, 2)
        print(f"chain host up in {checks['chain_up_s']} s: L1 {chain.l1_rpc_url} (chain id "
              f"{checks['chain_id_seen_from_' + probe_host]} seen from {probe_host}); members' nodes: "
              + ", ".join(f"{h} {u}" for h, u in chain.members))
    started = time.monotonic()
    flower = flower_services.start_superlinks(processes, topo, tls=not options.insecure, chain=chain)
    print("`fedrollup validator` on each validator host, its SuperLink ready: "
          + ", ".join(f"{v} on {a}" for v, a in flower.addresses.items())
          + (" (TLS with the run CA, admitting only its group's registered SuperNode keys)" if not options.insecure
             else " (insecure)"))
    flower_services.start_supernodes(processes, topo, flower, clientapp_isolation=options.clientapp_isolation,
                                     chain=chain if options.trainer_rollup_keys == "own" else None)
    flower_services.wait_registered(topo, flower)
    checks["supernodes_registered_s"] = round(time.monotonic() - started, 2)
    checks["clientapp_isolation"] = flower.clientapp_isolation
    print(f"{len(flower.supernodes)} `fedrollup trainer` SuperNodes registered with their validator's SuperLink in "
          f"{checks['supernodes_registered_s']} s; {flower.describe_clientapps()}")
    if not options.insecure:
        checks["tls"] = {s: flower_services.tls_handshake(processes, s, flower.addresses[v], str(flower.certificates[v].ca))
                         for v, s in first.items()}
        print("TLS handshakes (CA and IP SAN verified): " + ", ".join(f"{s} {t}" for s, t in checks["tls"].items()))
    flower_services.write_connections(processes, topo, flower, hosts=["mgr"])
    checks["flwr_ls_from_mgr"] = {v: flower_services.runs_listed(processes, "mgr", v) for v in flower.addresses}
    print("`flwr ls` from the manager reaches every SuperLink's Control API: "
          + ", ".join(f"{v} {'ok' if ok else 'FAILED'}" for v, ok in checks["flwr_ls_from_mgr"].items()))
    if options.echo_rounds > 0:
        checks["echo"] = echo_rounds(network, processes, flower, options.echo_bytes, options.echo_rounds)
    return TopologyServices(processes, flower, chain, checks)


def echo_rounds(network, processes, flower, payload_bytes: int, rounds: int) -> dict:
    """Flower rounds moving `payload_bytes` to every station and back; seconds per round and bytes per station."""
    before = station_bytes(network)
    results = run_echo_rounds(processes, flower, payload_bytes, rounds)
    after = station_bytes(network)
    per_station = {s: moved // rounds for s, moved in bytes_since(before, after).items()}
    broken = [r for r in results if r.intact != r.nodes]
    if broken:
        raise RuntimeError(f"echo round payloads came back altered or missing: {broken}")
    seconds = sorted(r.seconds for r in results)
    print(f"{rounds} Flower echo round(s) of {payload_bytes:,} bytes per validator group over TLS: median "
          f"{seconds[len(seconds) // 2]:.2f} s per round; bytes per station per round (rx+tx) median "
          f"{sorted(per_station.values())[len(per_station) // 2]:,}")
    return {"payload_bytes": payload_bytes, "rounds": [asdict(r) for r in results],
            "bytes_per_station_per_round": per_station}


def run(options: TopologyOptions) -> int:
    topo = topology_from(options)
    if options.rounds < 0:
        raise ConfigError("--rounds must be >= 0")
    try:
        choice = choose_emulator(want_wired=options.wired)
    except EmulatorUnavailable as err:
        raise ConfigError(str(err)) from None
    out = (options.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-topology").resolve()
    out.mkdir(parents=True, exist_ok=True)
    topo.save(out / "topology.json")
    print(choice.describe())
    print(f"network: {len(topo.stations)} stations in {len(topo.validators)} groups, validators "
          f"{', '.join(f'{v.name} {topo.address(v.name)}' for v in topo.validators)}, manager "
          f"{topo.address('mgr')}, chain {topo.address('chain')}; run folder {out}")
    print(describe_rates(topo))
    summary: dict = {"emulator": choice.name, "reason": choice.reason, "cannot_emulate": list(choice.limitations),
                     "stations": len(topo.stations), "validators": len(topo.validators)}
    try:
        with EmulatedNetwork(topo, choice, out, verbose=options.verbose) as network:
            summary["build_s"] = round(network.build_s, 2)
            print(f"network built in {network.build_s:.1f} s")
            services = bring_up(network, options)
            summary["checks"] = services.checks
            summary["station_bytes_after_registration"] = station_bytes(network)
            per_station = [b["rx_bytes"] + b["tx_bytes"] for b in summary["station_bytes_after_registration"].values()]
            print(f"bytes per station so far (rx+tx on its radio link): median "
                  f"{sorted(per_station)[len(per_station) // 2]:,}")
            summary["federation"] = run_federation(network, services, options)
            (out / "topology-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            print(f"summary written to {out / 'topology-summary.json'}")
            if not options.no_cli:
                open_cli(network.net, wifi=choice.name == MININET_WIFI)
        rest = leftovers(network.run_id)
        print(f"network torn down in {network.stop_s:.1f} s; left behind: {rest.describe()}")
    except RuntimeError as err:
        print(f"topology run failed: {err}", file=sys.stderr)
        return 1
    audit = (summary["federation"] or {}).get("audit")
    return 1 if audit and not audit["passed"] else 0

