"""`fedrollup topology`: build the paper's emulated edge network and run its hosts; `describe` and `clean`."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from topology.paper_topology import add_arguments

    parser = subparsers.add_parser(
        "topology", help="the emulated edge network (Mininet-WiFi or wired Mininet; needs root)",
        description="Build the paper's network (stations per access point, a validator per group, the manager "
                    "and the chain host), start the chain and Flower's SuperLinks/SuperNodes over TLS on the "
                    "hosts, check them across the emulated links, and open the Mininet CLI. Needs root.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="topology_command", metavar="ACTION")
    describe = actions.add_parser("describe", help="print (or --save) the topology file; no root needed")
    describe.add_argument("--stations", type=int, default=20)
    describe.add_argument("--validators", type=int, default=2)
    describe.add_argument("--save", type=Path, default=None, metavar="FILE", help="write the topology file here")
    describe.set_defaults(func=_describe)
    clean = actions.add_parser("clean", help="remove what crashed runs left behind (processes, namespaces, "
                                             "interfaces), like `mn -c` but only fedrollup's")
    clean.set_defaults(func=_clean)


def _run(args: argparse.Namespace) -> int:
    from topology.paper_topology import run
    return run(args)


def _describe(args: argparse.Namespace) -> int:
    from topology.topo import paper_topology

    topo = paper_topology(args.stations, args.validators)
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
    return 0


def _clean(args: argparse.Namespace) -> int:
    import os

    from topology.clean import clean

    if os.geteuid() != 0:
        raise ConfigError("cleaning namespaces and interfaces needs root (run it with sudo)")
    removed = clean()
    print(f"removed: {removed.describe()}")
    return 0
