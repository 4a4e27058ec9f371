"""`fedrollup manager`: the manager's role on its own machine (publishes, funds, averages, records)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from common.errors import ConfigError
from fedrollup.cli.args import OPEN_ROUNDS_HELP, blocks_option, open_rounds_option
from fedrollup.cli.simulate import add_simulation_options, output_folder, simulation_config
from fedrollup.cli.roles import add_mnemonic_option, set_mnemonic

ADDRESS = re.compile(r"0x[0-9a-f]{40}")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "manager", help="the manager of a deployment: serves the global model, averages, records on the rollup",
        description="The manager's role on its own machine (docs/deployment.md). Serves the run's configuration "
                    "and each round's global model to the validators (`fedrollup validator --manager URL`), waits "
                    "for every validator's model and report, averages and scores them, and, given a deployment "
                    "and a rollups node, publishes and funds the task and records every round on the rollup. "
                    "Writes the .frq models, accuracy.png and metrics.json to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_simulation_options(p)
    link = p.add_argument_group("the manager's link (the validators reach it)")
    link.add_argument("--host", default="0.0.0.0", help="address to serve the link on")
    link.add_argument("--port", type=int, default=8700, help="port to serve the link on")
    link.add_argument("--round-timeout", dest="round_timeout_s", type=float, default=1800.0, metavar="SECONDS",
                      help="how long a round waits for every validator's model")
    link.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                      help="the link's certificate (the names or addresses the validators dial as SANs): HTTPS; "
                           "none: plain HTTP")
    link.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the link's private key")
    link.add_argument("--figures", type=Path, default=None, metavar="FILE",
                      help="where the run's figures go; none: <out>/metrics.json")
    chain = p.add_argument_group("the rollup (omit both: the run records on no rollup)")
    chain.add_argument("--deployment", type=Path, default=None, metavar="FILE",
                       help="the rollup's deployment file (contracts, L1 RPC URL, chain id; `fedrollup chain up` "
                            "writes one)")
    chain.add_argument("--node", default="", metavar="URL", help="the rollups node to read the rollup's answers "
                                                                 "from, e.g. http://10.0.0.3:6751")
    chain.add_argument("--rpc", default="", metavar="URL", help="L1's JSON-RPC URL; empty: the deployment file's")
    chain.add_argument("--validator-address", dest="validator_addresses", action="append", default=[],
                       metavar="ADDRESS", help="a validator's rollup address (`fedrollup validator keygen`), once per "
                                               "validator in group order: the validators send their own inputs from "
                                               "their keys, this process holds none of them")
    chain.add_argument("--open-rounds", type=int, default=None, metavar="K", help=OPEN_ROUNDS_HELP)
    chain.add_argument("--contest-blocks", type=int, default=None, metavar="BLOCKS",
                       help="L1 blocks after a round's last report for reveals and contests (and as many again for "
                            "disputed updates); default: what carries a contest from every trainer of a round at L1's "
                            "gas limit, at least 2 (a chain faster than 1-s blocks needs more: the validators reveal "
                            "within it)")
    chain.add_argument("--trainer-addresses", type=Path, default=None, metavar="FILE",
                       help="the trainers' rollup addresses (`fedrollup trainer rollup-keygen`), one per line in "
                            "trainer id order: the trainers register and contest from their own keys, this process "
                            "holds none of them")
    add_mnemonic_option(p)
    p.set_defaults(func=_run)


def manager_options(args: argparse.Namespace):
    """The parsed command as the manager role's `ManagerOptions`; ConfigError for what cannot run."""
    from flower_sim.manager_link import server_context  # its module loads numpy and the rollup's types
    from flower_sim.manager_role import ManagerOptions  # heavy: TensorFlow, web3

    cfg = simulation_config(args)
    if bool(args.deployment) != bool(args.node):
        raise ConfigError("give both --deployment and --node (the run records on the rollup), or neither")
    if args.deployment and not args.deployment.is_file():
        raise ConfigError(f"--deployment {args.deployment}: no such file")
    addresses = [a.lower() for a in args.validator_addresses]
    if addresses and not args.deployment:
        raise ConfigError("--validator-address goes with --deployment and --node (the run records on the rollup)")
    bad = [a for a in addresses if not ADDRESS.fullmatch(a)]
    if bad:
        raise ConfigError(f"--validator-address {bad[0]}: not an address (0x and 40 hex digits)")
    if addresses and len(addresses) != cfg.validators:
        raise ConfigError(f"--validator-address: give one per validator in group order ({cfg.validators}), "
                          f"not {len(addresses)}")
    if len(set(addresses)) != len(addresses):
        raise ConfigError("--validator-address: each validator needs its own address")
    trainers = trainer_addresses(args.trainer_addresses, cfg.trainers, addresses)
    if trainers and not args.deployment:
        raise ConfigError("--trainer-addresses goes with --deployment and --node (the run records on the rollup)")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ConfigError("give both --tls-cert and --tls-key (the link serves HTTPS), or neither (plain HTTP)")
    if args.tls_cert:
        server_context(args.tls_cert, args.tls_key)  # a missing file or unreadable key: refused before the run
    return ManagerOptions(cfg, output_folder(args, cfg, "manager").resolve(), host=args.host, port=args.port,
                          tls_cert=args.tls_cert and args.tls_cert.resolve(),
                          tls_key=args.tls_key and args.tls_key.resolve(),
                          figures=args.figures, deployment=args.deployment, node_url=args.node, rpc_url=args.rpc,
                          round_timeout_s=args.round_timeout_s, validator_addresses=tuple(addresses),
                          open_rounds=open_rounds_option(args.open_rounds),
                          contest_blocks=blocks_option(args.contest_blocks, None, "--contest-blocks"),
                          trainer_addresses=trainers)


def trainer_addresses(path: Path | None, trainers: int, validators: list[str]) -> tuple[str, ...]:
    """The addresses in ``path`` (one per line, trainer id order; blank lines and # comments skipped), lowercase;
    ConfigError (one line) for a file that does not name ``trainers`` distinct addresses none of the validators'."""
    if path is None:
        return ()
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise ConfigError(f"--trainer-addresses {path}: {err.strerror}") from None
    found = [line.split("#", 1)[0].strip().lower() for line in lines]
    found = [a for a in found if a]
    bad = next((a for a in found if not ADDRESS.fullmatch(a)), None)
    if bad is not None:
        raise ConfigError(f"--trainer-addresses {path}: {bad[:50]!r} is not an address (0x and 40 hex digits)")
    if len(found) != trainers:
        raise ConfigError(f"--trainer-addresses {path}: give one address per trainer in trainer id order "
                          f"({trainers}), not {len(found)}")
    if len(set(found)) != len(found) or set(found) & set(validators):
        raise ConfigError(f"--trainer-addresses {path}: each trainer needs its own address, none of a validator's")
    return tuple(found)


def _run(args: argparse.Namespace) -> int:
    from flower_sim.manager_role import run  # heavy: TensorFlow, web3

    options = manager_options(args)
    set_mnemonic(args)
    return run(options)
