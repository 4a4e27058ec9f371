"""Benchmark: the emulated edge network (needs root and Mininet: `make topology-deps`).

Measured in one run, against baselines from the same run:
  1. build and teardown of the full paper topology (20 stations, 2 APs, 2 validators, manager, chain host),
     median of --repeats, with the memory the network holds (processes' RSS and the machine's MemAvailable
     drop); baseline: the smallest topology (1 validator, 1 station) built the same way;
  2. a model-sized payload (--sizes, MB) sent by a validator to 1 and to 10 of its stations at once over the
     shaped links: seconds and bytes on each station's radio interface; baselines: the same download on the
     validator's own loopback (no emulated link) and the line-rate ideal of the configured rates;
  3. (--flower) Flower's Deployment Engine on the full topology: 2 SuperLinks + 20 SuperNodes over TLS,
     registration time and memory (RSS of every process on the hosts), then one echo round per size (the
     payload to every station and an update of the same size back, `topology.echo_app`); baseline: a 1 kB
     round in the same network (Flower's fixed cost per round), and the line-rate transfer time.
  4. (--federated N) federated rounds on a network of N stations (`fedrollup topology --rounds R`: validator
     ServerApps on their SuperLinks, the manager averaging, every round recorded on the rollup): seconds per
     round and its split, bytes per station, peak memory and the 20-station estimate; baseline: the same
     run in process (`fedrollup simulate`, same seed, rounds and model), accuracy side by side; with
     `--clientapp-isolation warm subprocess`, one network run per way of starting ClientApps, back to back,
     compared side by side (steady state = the last round).
Run: sudo .venv/bin/python -m benchmarks.topology [--repeats 3] [--sizes 0.4 2] [--radio-mbps 20] [--flower]
     [--federated 4 --fl-rounds 2 --model cnn] [--clientapp-isolation warm subprocess] [--only-federated]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from topology import clean, flower_services
from topology.emulator import EmulatorUnavailable, choose_emulator
from flower_sim.deployment import CLIENTAPP_ISOLATION, DEFAULT_CLIENTAPP_ISOLATION
from topology.net import EmulatedNetwork
from topology.paper_topology import echo_rounds
from topology.processes import HostProcesses
from topology.topo import EdgeTopology, Rates, paper_topology
from topology.transfer import aggregate_mbps, fetch_all, serve_payload


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def build_teardown(topo: EdgeTopology, repeats: int, folder: Path) -> dict:
    builds, stops, rss, drop = [], [], [], []
    for i in range(repeats):
        free_before = mem_available_mb()
        with EmulatedNetwork(topo, choose_emulator(), folder / f"build{i}") as network:
            builds.append(network.build_s)
            rss.append(rss_mb(clean.run_processes(network.run_id)))
            drop.append(free_before - mem_available_mb())
        stops.append(network.stop_s)
    return {"build_s": statistics.median(builds), "stop_s": statistics.median(stops),
            "rss_mb": statistics.median(rss), "mem_drop_mb": statistics.median(drop)}


def transfers(rates: Rates, sizes_mb: list[float], folder: Path) -> list[dict]:
    topo = paper_topology(20, 2, rates)
    group = [s.name for s in topo.group(1)]
    rows = []
    with EmulatedNetwork(topo, choose_emulator(), folder / "transfer") as network:
        processes = HostProcesses(network)
        for size_mb in sizes_mb:
            size = int(size_mb * 1_000_000)
            url = serve_payload(processes, "val1", size, port=8800 + len(rows))
            (local,) = fetch_all(processes, ["val1"], url)  # its own address: the kernel's loopback path
            for count in (1, len(group)):
                results = fetch_all(processes, group[:count], url)
                # line rate: each station's radio rate, capped together by the AP link they share
                line_mbps = min(count * rates.radio_mbps, rates.ap_mbps)
                seconds = [r.seconds for r in results]
                rows.append({"size_mb": size_mb, "stations": count, "median_s": statistics.median(seconds),
                             "max_s": max(seconds), "ideal_s": count * size * 8 / (line_mbps * 1e6),
                             "aggregate_mbps": aggregate_mbps(results), "line_mbps": line_mbps,
                             "loopback_s": local.seconds,
                             "link_bytes": statistics.median(r.link_bytes for r in results)})
    return rows


def flower_rounds(rates: Rates, sizes_mb: list[float], folder: Path, label: str) -> dict:
    """2 SuperLinks + 20 SuperNodes over TLS: time to register, memory, then one echo round per payload size."""
    topo = paper_topology(20, 2, rates)
    with EmulatedNetwork(topo, choose_emulator(), folder / f"flower-{label}") as network:
        processes = HostProcesses(network)
        started = time.monotonic()
        services = flower_services.start_superlinks(processes, topo)
        flower_services.start_supernodes(processes, topo, services, clientapp_isolation="subprocess")
        flower_services.wait_registered(topo, services, timeout_s=300)
        registered_s = time.monotonic() - started
        time.sleep(2)
        pids = [p for p in clean.run_processes(network.run_id) if p not in network.shell_pids()]
        memory = rss_mb(pids)
        flower_services.write_connections(processes, topo, services)
        rounds = {}
        for size_mb in sizes_mb:
            echo = echo_rounds(network, processes, services, int(size_mb * 1_000_000), 1)
            rounds[size_mb] = {"seconds": statistics.median(r["seconds"] for r in echo["rounds"]),
                               "bytes": statistics.median(echo["bytes_per_station_per_round"].values())}
    return {"registered_s": registered_s, "rss_mb": memory, "processes": len(pids), "rounds": rounds}


def federated(stations: int, rounds: int, model: str, folder: Path, isolations: list[str]) -> dict:
    """The same federated run over the emulated network (once per ClientApp isolation) and in process; each
    run's wall seconds and metrics.json, keyed "network-<isolation>" and "in-process"."""
    fedrollup = str(Path(sys.executable).parent / "fedrollup")
    common = ["--rounds", str(rounds), "--model", model]
    network = ["topology", "--stations", str(stations), "--validators", "2", "--no-cli", "--echo-rounds", "0"]
    plan = [(f"network-{mode}", network + ["--clientapp-isolation", mode]) for mode in isolations]
    plan.append(("in-process", ["simulate", "--trainers", str(stations), "--validators", "2"]))
    runs = {}
    for name, argv in plan:
        out = folder / f"federated-{name}"
        started = time.monotonic()
        print(f"  [{name}] fedrollup {' '.join(argv + common)}", flush=True)
        with subprocess.Popen([fedrollup, *argv, *common, "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) as process:
            lines = []
            for line in process.stdout:  # the run's own progress, as it happens
                lines.append(line)
                print(f"  [{name}] {line}", end="", flush=True)
        if process.returncode != 0:
            raise RuntimeError(f"{name} run failed: {''.join(lines[-30:])}")
        runs[name] = {"seconds": time.monotonic() - started, "metrics": json.loads((out / "metrics.json").read_text())}
    return runs


def print_federated(runs: dict, stations: int) -> None:
    local = runs["in-process"]["metrics"]
    networks = {name.removeprefix("network-"): run["metrics"] for name, run in runs.items() if name != "in-process"}
    for isolation, net in networks.items():
        print(f"\n4. federated rounds, {stations} stations in 2 groups, model {net['config']['model']}, "
              f"{len(net['rounds'])} rounds, ClientApps: {isolation}; baseline: `fedrollup simulate` in process")
        print(f"{'round':>5}{'wall s':>8}{'train':>7}{'valid':>7}{'network':>9}{'clientapp':>11}{'chain':>7}"
              f"{'bytes/station':>15}{'acc net':>9}{'acc local':>11}")
        for r, base in zip(net["rounds"], local["rounds"]):
            t = r["timings"]
            sent = sorted(r["bytes_per_station"].values())[len(r["bytes_per_station"]) // 2]
            print(f"{r['round']:>5}{t['wall_s']:>8.1f}{t['training_s']:>7.1f}{t['validation_s']:>7.1f}"
                  f"{t['network_s']:>9.1f}{t['clientapp_start_s']:>11.1f}{t['chain_s']:>7.1f}{sent:>15,}"
                  f"{r['global_accuracy']:>9.4f}{base['global_accuracy']:>11.4f}")
        topo = net["topology"]
        print(f"whole run: {net['elapsed_s']:.0f} s over the network vs {local['elapsed_s']:.0f} s in process "
              f"(x{net['elapsed_s'] / max(local['elapsed_s'], 1e-9):.1f}); peak PSS "
              f"{topo['peak_pss_bytes'] / 2**30:.2f} GiB, estimated "
              f"{topo['memory_estimate_20_stations']['estimated_bytes'] / 2**30:.1f} GiB for 20 stations")
    if len(networks) > 1:
        print(f"\nClientApp isolation side by side (steady state: round {len(local['rounds'])}; same seed, run "
              f"back to back)")
        print(f"{'isolation':<12}{'s/round':>9}{'clientapp s':>13}{'round 1 s':>11}{'peak PSS GiB':>14}"
              f"{'20-sta GiB':>12}{'final acc':>11}")
        for isolation, net in networks.items():
            last, first, topo = net["rounds"][-1], net["rounds"][0], net["topology"]
            print(f"{isolation:<12}{last['timings']['wall_s']:>9.1f}{last['timings']['clientapp_start_s']:>13.1f}"
                  f"{first['timings']['wall_s']:>11.1f}{topo['peak_pss_bytes'] / 2**30:>14.2f}"
                  f"{topo['memory_estimate_20_stations']['estimated_bytes'] / 2**30:>12.1f}"
                  f"{last['global_accuracy']:>11.4f}")
        print(f"{'in process':<12}{'':>9}{'':>13}{'':>11}{'':>14}{'':>12}{local['rounds'][-1]['global_accuracy']:>11.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build/teardown, memory and payload transfer of the emulated network.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.4, 2.0], help="payload sizes, MB")
    parser.add_argument("--radio-mbps", type=float, default=Rates().radio_mbps)
    parser.add_argument("--ap-mbps", type=float, default=Rates().ap_mbps)
    parser.add_argument("--flower", action="store_true", help="also measure 2 SuperLinks + 20 SuperNodes")
    parser.add_argument("--federated", type=int, default=0, metavar="N",
                        help="also run federated rounds on N stations, against the same run in process")
    parser.add_argument("--fl-rounds", type=int, default=2, help="rounds of --federated")
    parser.add_argument("--model", default="cnn", help="model of --federated")
    parser.add_argument("--clientapp-isolation", nargs="+", choices=CLIENTAPP_ISOLATION,
                        default=[DEFAULT_CLIENTAPP_ISOLATION],
                        help="how stations start ClientApps in --federated (several: one run each, compared)")
    parser.add_argument("--only-federated", action="store_true", help="skip sections 1-3")
    args = parser.parse_args(argv)
    try:
        choice = choose_emulator()
    except EmulatorUnavailable as err:
        print(f"benchmarks.topology: {err}", file=sys.stderr)
        return 2
    rates = Rates(radio_mbps=args.radio_mbps, ap_mbps=args.ap_mbps)
    print(choice.describe())
    with tempfile.TemporaryDirectory(prefix="fedrollup-topology-bench-") as tmp:
        folder = Path(tmp)
        if args.only_federated:
            print_federated(federated(args.federated or 4, args.fl_rounds, args.model, folder,
                                      args.clientapp_isolation), args.federated or 4)
            return 0
        full = build_teardown(paper_topology(20, 2, rates), args.repeats, folder)
        small = build_teardown(paper_topology(1, 1, rates), args.repeats, folder)
        print(f"\n1. build and teardown, median of {args.repeats} (baseline: 1 validator, 1 station)")
        print(f"{'topology':<34}{'build s':>9}{'teardown s':>12}{'RSS MB':>9}{'MemAvail drop MB':>18}")
        for name, row in (("paper: 20 sta, 2 AP, 5 hosts", full), ("baseline: 1 sta, 1 AP, 4 hosts", small)):
            print(f"{name:<34}{row['build_s']:>9.2f}{row['stop_s']:>12.2f}{row['rss_mb']:>9.1f}"
                  f"{row['mem_drop_mb']:>18.1f}")
        print(f"ratio paper/baseline: build x{full['build_s'] / small['build_s']:.1f}, "
              f"teardown x{full['stop_s'] / small['stop_s']:.1f}")
        rows = transfers(rates, args.sizes, folder)
        print(f"\n2. validator -> stations of its group (radio {rates.radio_mbps:g} Mbit/s each, AP link "
              f"{rates.ap_mbps:g} Mbit/s shared); baselines: loopback on the validator, line-rate ideal")
        print(f"{'MB':>5}{'stations':>9}{'median s':>10}{'max s':>8}{'all Mbit/s':>12}{'line Mbit/s':>13}"
              f"{'of line':>9}{'ideal s':>9}{'loopback s':>12}{'bytes/station':>15}")
        for r in rows:
            print(f"{r['size_mb']:>5g}{r['stations']:>9}{r['median_s']:>10.3f}{r['max_s']:>8.3f}"
                  f"{r['aggregate_mbps']:>12.1f}{r['line_mbps']:>13.0f}{r['aggregate_mbps'] / r['line_mbps']:>9.0%}"
                  f"{r['ideal_s']:>9.3f}{r['loopback_s']:>12.4f}{r['link_bytes']:>15,.0f}")
        print("(all Mbit/s: payload delivered to all stations from the first start to the last end; "
              "line: the configured rates; ideal s: all payloads at line rate)")
        if args.flower:
            sizes = [0.001] + list(args.sizes)
            f = flower_rounds(rates, sizes, folder, "shaped")
            print(f"\n3. Flower Deployment Engine on the paper topology: 2 SuperLinks + 20 SuperNodes over TLS")
            print(f"registered in {f['registered_s']:.1f} s; {f['processes']} processes, RSS {f['rss_mb']:.0f} MB "
                  f"({f['rss_mb'] / 22:.0f} MB per SuperLink/SuperNode with its SuperExec)")
            print("one echo round per group, both groups at once (payload to each of its 10 stations, an update "
                  "of the same size back); baseline: a 1 kB round (Flower's fixed cost); line s: both directions "
                  "through the shared AP link at its rate")
            print(f"{'MB':>6}{'round s':>10}{'x 1 kB':>8}{'line s':>8}{'bytes/station':>15}")
            base = f["rounds"][0.001]["seconds"]
            for size_mb in sizes:
                row = f["rounds"][size_mb]
                line_s = 2 * 10 * size_mb * 8 / min(10 * rates.radio_mbps, rates.ap_mbps)
                print(f"{size_mb:>6g}{row['seconds']:>10.2f}{row['seconds'] / base:>8.2f}{line_s:>8.2f}"
                      f"{row['bytes']:>15,.0f}")
        if args.federated:
            print_federated(federated(args.federated, args.fl_rounds, args.model, folder, args.clientapp_isolation),
                            args.federated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
