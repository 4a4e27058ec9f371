"""The paper's emulated edge network, end to end: `sudo .venv/bin/python topology/paper_topology.py [options]`
(or `sudo fedrollup topology [options]`).

Builds the network (Mininet-WiFi where the machine has it, else the wired fallback), starts the chain host
and the Flower SuperLinks (validators) and SuperNodes (stations) over TLS, checks connectivity across the
emulated links, prints a summary, writes `<out>/topology-summary.json`, hands the network to
`run_federation` (the seam where the federated rounds plug in), and opens the Mininet CLI unless --no-cli.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.errors import ConfigError  # noqa: E402
from topology.topo import EdgeTopology, Rates, paper_topology  # noqa: E402
from topology.traffic import bytes_since, station_bytes  # noqa: E402


@dataclass
class TopologyServices:
    """Handles of everything running on the network, for whoever drives the federated rounds."""

    processes: object                       # topology.processes.HostProcesses
    flower: object                          # topology.flower_services.FlowerServices
    chain: object | None                    # topology.chain_host.ChainEndpoints, None with --no-chain
    checks: dict = field(default_factory=dict)


def run_federation(network, services: TopologyServices, options: argparse.Namespace) -> dict | None:
    """The federated rounds over the running network (`topology.federated_rounds`): a ServerApp per validator
    SuperLink, the manager host averaging between rounds and recording each round on the chain host's rollup;
    returns the run's figures (metrics.json is in the run folder)."""
    from topology.federated_rounds import run_rounds, simulation_config

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("network")
    net.add_argument("--stations", type=int, default=20, help="trainer stations, split evenly across validators")
    net.add_argument("--validators", type=int, default=2, help="validators, one access point (group) each")
    d = Rates()
    net.add_argument("--radio-mbps", type=float, default=d.radio_mbps, help="station-AP link rate, Mbit/s")
    net.add_argument("--ap-mbps", type=float, default=d.ap_mbps, help="AP-validator link rate, Mbit/s")
    net.add_argument("--backbone-mbps", type=float, default=d.backbone_mbps,
                     help="validator-manager and manager-chain link rate, Mbit/s")
    net.add_argument("--radio-delay-ms", type=float, default=0.0, help="radio link delay (needs netem)")
    net.add_argument("--radio-loss", type=float, default=0.0, help="radio link loss in %% (needs netem)")
    net.add_argument("--topo", type=Path, default=None, metavar="FILE",
                     help="a topology file (JSON, see `fedrollup topology describe`); overrides the options above")
    net.add_argument("--wired", action="store_true", help="use the wired Mininet network even where WiFi runs")
    run = parser.add_argument_group("run")
    run.add_argument("--rounds", type=int, default=1, help="federated rounds")
    run.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="run folder (default runs/<time>-topology)")
    run.add_argument("--echo-rounds", type=int, default=1,
                     help="Flower rounds that only move a model-sized payload to every station and back, "
                          "to measure the network before training (0: none)")
    run.add_argument("--echo-bytes", type=int, default=400_000, help="payload of an echo round, bytes")
    fl = parser.add_argument_group("federation (as `fedrollup simulate`)")
    from flower_sim.config import STRATEGIES, SimulationConfig
    from flower_sim.models import MODELS
    from flower_sim.attacks import ATTACKS
    d_fl = SimulationConfig()
    fl.add_argument("--strategy", choices=STRATEGIES, default=d_fl.strategy, help="validator strategy")
    fl.add_argument("--model", choices=MODELS, default=d_fl.model, help="model trained by the stations")
    fl.add_argument("--local-epochs", type=int, default=d_fl.local_epochs, help="trainer epochs per round")
    fl.add_argument("--attack", choices=ATTACKS, default=d_fl.attack, help="behaviour of malicious trainers")
    fl.add_argument("--malicious", type=float, default=d_fl.malicious, metavar="FRACTION",
                    help="fraction of trainers that are malicious")
    fl.add_argument("--seed", type=int, default=d_fl.seed, help="seed of splits, attackers, training")
    run.add_argument("--no-chain", action="store_true", help="do not start the chain host's rollup stack")
    run.add_argument("--insecure", action="store_true", help="Flower without TLS (default: TLS with run certs)")
    from topology.flower_services import CLIENTAPP_ISOLATION, DEFAULT_CLIENTAPP_ISOLATION
    run.add_argument("--clientapp-isolation", choices=CLIENTAPP_ISOLATION, default=DEFAULT_CLIENTAPP_ISOLATION,
                     help="warm: fork each station's ClientApps from a process with TensorFlow loaded; "
                          "subprocess: Flower's default fresh process per message")
    run.add_argument("--no-cli", action="store_true", help="do not open the Mininet CLI at the end")
    run.add_argument("--verbose", action="store_true", help="Mininet's own log lines too")


def topology_from(options: argparse.Namespace) -> EdgeTopology:
    if options.topo:
        return EdgeTopology.load(options.topo)
    rates = Rates(options.radio_mbps, options.ap_mbps, options.backbone_mbps, options.radio_delay_ms,
                  options.radio_loss)
    return paper_topology(options.stations, options.validators, rates)


def bring_up(network, options: argparse.Namespace) -> TopologyServices:
    """Start the chain host and the Flower services on a built network, checking each step across the links."""
    from topology import chain_host, flower_services
    from topology.processes import HostProcesses

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
        print("starting the chain host: anvil, the Cartesi contracts, the rollups node and backend ...")
        chain = chain_host.start_chain(processes)
        probe_host = next(iter(first.values()))
        checks["chain_id_seen_from_" + probe_host] = chain_host.chain_id_from(processes, probe_host, chain)
        checks["node_alive_from_" + probe_host] = chain_host.node_alive_from(processes, probe_host, chain)
        checks["chain_up_s"] = round(time.monotonic() - started, 2)
        print(f"chain host up in {checks['chain_up_s']} s: L1 {chain.l1_rpc_url} (chain id "
              f"{checks['chain_id_seen_from_' + probe_host]} seen from {probe_host}), node {chain.node_url}")
    started = time.monotonic()
    flower = flower_services.start_superlinks(processes, topo, tls=not options.insecure)
    print("SuperLinks listening: " + ", ".join(f"{v} on {a}" for v, a in flower.addresses.items())
          + (" (TLS, run CA)" if not options.insecure else " (insecure)"))
    flower_services.start_supernodes(processes, topo, flower, clientapp_isolation=options.clientapp_isolation)
    flower_services.wait_registered(topo, flower)
    checks["supernodes_registered_s"] = round(time.monotonic() - started, 2)
    checks["clientapp_isolation"] = flower.clientapp_isolation
    print(f"{len(flower.supernodes)} SuperNodes registered with their validator's SuperLink in "
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
    from topology.echo_round import run_echo_rounds

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


def run(options: argparse.Namespace) -> int:
    from topology.emulator import EmulatorUnavailable, choose_emulator
    from topology.net import EmulatedNetwork

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
                from mininet.cli import CLI
                from mininet.log import setLogLevel
                setLogLevel("output")  # the CLI prints its answers at this level
                print("Mininet CLI: try `sta1 ping -c1 val1`, `val1 ss -tn`, `exit` to tear everything down")
                CLI(network.net)
        from topology.clean import leftovers
        rest = leftovers(network.run_id)
        print(f"network torn down in {network.stop_s:.1f} s; left behind: {rest.describe()}")
    except RuntimeError as err:
        print(f"topology run failed: {err}", file=sys.stderr)
        return 1
    audit = (summary["federation"] or {}).get("audit")
    return 1 if audit and not audit["passed"] else 0


def main(argv: list[str] | None = None) -> int:
    from fedrollup.cli import dispatch, quiet_third_parties

    quiet_third_parties()
    parser = argparse.ArgumentParser(prog="paper_topology.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.set_defaults(func=run)
    return dispatch(parser.parse_args(argv), "paper_topology.py")


if __name__ == "__main__":
    sys.exit(main())
