"""`fedrollup topology`: build the paper's emulated edge network and run its hosts; `describe` and `clean`."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from common.errors import ConfigError
from fedrollup.cli.args import config_from
from flower_sim.attacks import ATTACKS
from flower_sim.config import STRATEGIES
from flower_sim.models import MODELS
from flower_sim.splits import TASKS
from topology.clean import clean
from flower_sim.deployment import CLIENTAPP_ISOLATION
from topology.paper_topology import TopologyOptions, run
from topology.qos_measure import run as measure_qos
from topology.radio import describe_rates
from topology.script import load_script
from topology.topo import paper_topology


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "topology", help="the emulated edge network (Mininet-WiFi or wired Mininet; needs root)",
        description="Build the paper's network (stations per access point, a validator per group, the manager "
                    "and the chain host), start the chain and Flower's SuperLinks/SuperNodes over TLS on the "
                    "hosts, check them across the emulated links, and open the Mininet CLI. Needs root.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _add_run_options(parser)
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="topology_command", metavar="ACTION")
    describe = actions.add_parser("describe", help="print (or --save) the topology file; no root needed")
    describe.add_argument("--stations", type=int, default=TopologyOptions.stations)
    describe.add_argument("--validators", type=int, default=TopologyOptions.validators)
    describe.add_argument("--script", type=Path, default=None, metavar="FILE",
                          help="describe a topology script's network (and each station's rate) instead")
    describe.add_argument("--save", type=Path, default=None, metavar="FILE", help="write the topology file here")
    describe.set_defaults(func=_describe)
    clean = actions.add_parser("clean", help="remove what crashed runs left behind (processes, namespaces, "
                                             "interfaces), like `mn -c` but only fedrollup's")
    clean.set_defaults(func=_clean)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    d = TopologyOptions()
    net = parser.add_argument_group("network")
    net.add_argument("--stations", type=int, default=d.stations,
                     help="trainer stations, split evenly across validators")
    net.add_argument("--validators", type=int, default=d.validators, help="validators, one access point (group) each")
    net.add_argument("--radio-mbps", type=float, default=d.radio_mbps, help="station-AP link rate, Mbit/s")
    net.add_argument("--ap-mbps", type=float, default=d.ap_mbps, help="AP-validator link rate, Mbit/s")
    net.add_argument("--backbone-mbps", type=float, default=d.backbone_mbps,
                     help="validator-manager and manager-chain link rate, Mbit/s")
    net.add_argument("--radio-delay-ms", type=float, default=d.radio_delay_ms, help="radio link delay (needs netem)")
    net.add_argument("--radio-loss", type=float, default=d.radio_loss, help="radio link loss in %% (needs netem)")
    net.add_argument("--topo", type=Path, default=d.topo, metavar="FILE",
                     help="a topology file (JSON, see `fedrollup topology describe`); overrides the options above")
    net.add_argument("--script", type=Path, default=d.script, metavar="FILE",
                     help="a Mininet-WiFi style topology script (topology/scripts/*.py): stations, access points, "
                          "positions, ranges, propagation model, mobility; overrides the options above")
    net.add_argument("--wired", action="store_true", help="use the wired Mininet network even where WiFi runs")
    run_group = parser.add_argument_group("run")
    run_group.add_argument("--rounds", type=int, default=d.rounds, help="federated rounds")
    run_group.add_argument("--out", type=Path, default=d.out, metavar="DIR",
                           help="run folder (default runs/<time>-topology)")
    run_group.add_argument("--echo-rounds", type=int, default=d.echo_rounds,
                           help="Flower rounds that only move a model-sized payload to every station and back, "
                                "to measure the network before training (0: none)")
    run_group.add_argument("--echo-bytes", type=int, default=d.echo_bytes, help="payload of an echo round, bytes")
    fl = parser.add_argument_group("federation (as `fedrollup simulate`)")
    fl.add_argument("--strategy", choices=STRATEGIES, default=d.strategy, help="validator strategy")
    fl.add_argument("--task", choices=TASKS, default=d.task,
                    help="mnist digits, or qos: each station forecasts its own SLA violations (README, The QoS task)")
    fl.add_argument("--model", choices=MODELS, default=d.model, help="model trained by the stations (default: the "
                    "task's: cnn for mnist, qos for qos)")
    fl.add_argument("--local-epochs", type=int, default=d.local_epochs, help="trainer epochs per round")
    fl.add_argument("--attack", choices=ATTACKS, default=d.attack, help="behaviour of malicious trainers")
    fl.add_argument("--malicious", type=float, default=d.malicious, metavar="FRACTION",
                    help="fraction of trainers that are malicious")
    fl.add_argument("--seed", type=int, default=d.seed,
                    help="seed of splits, attackers, training (and of the --measure-qos load schedule)")
    run_group.add_argument("--no-chain", action="store_true", help="do not start the chain host's rollup stack")
    run_group.add_argument("--insecure", action="store_true",
                           help="Flower without TLS (default: TLS with run certs)")
    run_group.add_argument("--clientapp-isolation", choices=CLIENTAPP_ISOLATION, default=d.clientapp_isolation,
                           help="warm: fork each station's ClientApps from a process with TensorFlow loaded; "
                                "subprocess: Flower's default fresh process per message")
    run_group.add_argument("--trainer-rollup-keys", choices=("own", "mnemonic"), default=d.trainer_rollup_keys,
                           help="own: each station holds its rollup key and registers, signs and contests from it "
                                "(the manager is given addresses only); mnemonic: the stations sign with the run "
                                "mnemonic's accounts and the manager registers them")
    run_group.add_argument("--no-cli", action="store_true", help="do not open the Mininet CLI at the end")
    run_group.add_argument("--verbose", action="store_true", help="Mininet's own log lines too")
    qos = parser.add_argument_group("QoS measurement (instead of the federated run)")
    qos.add_argument("--measure-qos", type=Path, default=d.measure_qos, metavar="OUT.csv",
                     help="build the network only and write per station and window its TCP goodput to its validator "
                          "and ping RTT under a seeded on/off load (--seed) to this CSV (topology/qos_measure.py)")
    qos.add_argument("--windows", type=int, default=d.windows, help="QoS measurement windows")
    qos.add_argument("--window-seconds", dest="window_s", type=float, default=d.window_s,
                     help="seconds of one QoS measurement window")


def _run(args: argparse.Namespace) -> int:
    options = config_from(TopologyOptions, args)
    return measure_qos(options) if options.measure_qos else run(options)


def _describe(args: argparse.Namespace) -> int:
    topo = load_script(args.script) if args.script else paper_topology(args.stations, args.validators)
    if args.save:
        print(f"topology file written to {topo.save(args.save)}")
        return 0
    for validator in topo.validators:
        members = topo.group(validator.group)
        print(f"group {validator.group}: ap{validator.group} <- {len(members)} stations "
              f"({members[0].name} {topo.address(members[0].name)} .. {members[-1].name} "
              f"{topo.address(members[-1].name)}), validator {validator.name} {topo.address(validator.name)}")
    print(f"manager mgr {', '.join(topo.addresses('mgr'))}; chain {topo.address('chain')}")
    print(f"rates: radio {topo.rates.radio_mbps:g}, AP {topo.rates.ap_mbps:g}, "
          f"backbone {topo.rates.backbone_mbps:g} Mbit/s")
    print(describe_rates(topo))
    return 0


def _clean(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        raise ConfigError("cleaning namespaces and interfaces needs root (run it with sudo)")
    removed = clean()
    print(f"removed: {removed.describe()}")
    return 0
