"""`fedrollup validator`: a validator's role on its own machine (its SuperLink, its trainers' keys, its ServerApp)."""
from __future__ import annotations

import argparse
from pathlib import Path

from fedrollup.cli.args import config_from
from fedrollup.cli.roles import add_mnemonic_option, add_own_key_options, set_mnemonic
from flower_sim.deployment import SUPERLINK_PORT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validator", help="a validator of a deployment: its SuperLink (TLS, SuperNode auth), its ServerApp",
        description="A validator's role on its own machine (docs/deployment.md). Starts its Flower SuperLink over "
                    "TLS, registers its trainers' public keys (no other SuperNode is admitted), prints "
                    "'SuperLink ready', then fetches the run's configuration from the manager and runs its "
                    "ServerApp for the whole run: each round it fetches the global model, judges its group's "
                    "updates with the run's rule (MAD by default) and sends its model and report to the manager.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--id", type=int, default=-1, help="the validator's group, from 0 (trainer t is in group "
                                                      "t * validators // trainers); required")
    p.add_argument("--manager", default="", metavar="URL",
                   help="the manager's link, e.g. https://manager.example.org:8700 (http:// is not encrypted); "
                        "required")
    p.add_argument("--manager-ca", type=Path, default=None, metavar="FILE",
                   help="CA certificate the manager's https:// link is verified against (its SAN must name the host "
                        "in --manager); none: the system's trusted CAs")
    link = p.add_argument_group("its SuperLink")
    link.add_argument("--host", default="0.0.0.0", help="address the SuperLink binds")
    link.add_argument("--port", type=int, default=SUPERLINK_PORT, help="port of the SuperLink (Fleet and Control API)")
    link.add_argument("--advertise", default="", metavar="HOST",
                      help="the name or address its trainers dial, as in its certificate; empty: --host, or "
                           "127.0.0.1 when --host is 0.0.0.0")
    link.add_argument("--tls-ca", type=Path, default=None, metavar="FILE", help="CA certificate its trainers trust")
    link.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                      help="the SuperLink's certificate (its --advertise name or address as SAN)")
    link.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the SuperLink's private key")
    link.add_argument("--trainer-keys", type=Path, default=None, metavar="DIR",
                      help="folder of its trainers' SuperNode public keys (*.pub, `fedrollup trainer keygen`): the "
                           "only SuperNodes the SuperLink admits")
    link.add_argument("--insecure", action="store_true",
                      help="no TLS and no SuperNode authentication (an isolated test network only)")
    run = p.add_argument_group("the run")
    run.add_argument("--workdir", type=Path, default=Path("validator"), metavar="DIR",
                     help="its folder: Flower's settings, the app, its models")
    run.add_argument("--wait-manager", dest="wait_manager_s", type=float, default=3600.0, metavar="SECONDS",
                     help="how long to wait for the manager's link to answer")
    run.add_argument("--wait-nodes", dest="wait_nodes_s", type=float, default=180.0, metavar="SECONDS",
                     help="how long its ServerApp waits for its group's trainers to connect")
    run.add_argument("--round-timeout", dest="round_timeout_s", type=float, default=1800.0, metavar="SECONDS",
                     help="how long it waits for each round's global model")
    run.add_argument("--reply-timeout", dest="reply_timeout_s", type=float, default=600.0, metavar="SECONDS",
                     help="how long a round waits for its trainers' updates (the silent ones are left out)")
    add_own_key_options(p, "its own rollup key (omit: the manager sends its rollup inputs)", "--key-file",
                        "its rollup account's private key (one 0x-hex key, mode 0600; `fedrollup validator keygen`): "
                        "it registers, reports, reveals and closes in turn from this key, which only it holds")
    add_mnemonic_option(p)
    p.set_defaults(func=_run)
    actions = p.add_subparsers(dest="validator_command", metavar="ACTION")
    keygen = actions.add_parser("keygen", help="make its rollup key: FILE (mode 0600), and print its address")
    keygen.add_argument("--out", type=Path, required=True, metavar="FILE", help="the key's file (refused if it exists)")
    keygen.set_defaults(func=_keygen)


def _run(args: argparse.Namespace) -> int:
    from flower_sim.validator_role import ValidatorOptions, run  # heavy: Flower

    set_mnemonic(args)
    return run(config_from(ValidatorOptions, args))


def _keygen(args: argparse.Namespace) -> int:
    from flower_sim.key_file import write_key_file  # heavy: web3

    address = write_key_file(args.out)
    print(f"validator key: {args.out} (mode 0600, keep it on the validator's machine); its address {address} "
          f"(give it to the manager: --validator-address {address})")
    return 0
