"""`fedrollup trainer`: a trainer's role on its own device (a SuperNode with its partition and key); `keygen`."""
from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import ConfigError
from fedrollup.cli.args import config_from
from fedrollup.cli.roles import add_mnemonic_option, add_own_key_options, set_mnemonic
from flower_sim.deployment import CLIENTAPP_ISOLATION, DEFAULT_CLIENTAPP_ISOLATION, RUNTIME_PORT


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "trainer", help="a trainer of a deployment: a SuperNode with its data partition and its key",
        description="A trainer's role on its own device (docs/deployment.md): a Flower SuperNode that dials its "
                    "validator's SuperLink over TLS, authenticated by its key (its validator registered the public "
                    "key), trains on its partition each round and signs its updates. `fedrollup trainer keygen "
                    "FILE` makes its key pair.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--superlink", default="", metavar="HOST:PORT", help="its validator's SuperLink")
    p.add_argument("--tls-ca", type=Path, default=None, metavar="FILE",
                   help="the CA certificate that signed its validator's SuperLink certificate")
    p.add_argument("--key", type=Path, default=None, metavar="FILE",
                   help="its SuperNode private key (`fedrollup trainer keygen`; its validator registers FILE.pub)")
    p.add_argument("--insecure", action="store_true", help="no TLS and no key (an isolated test network only)")
    p.add_argument("--partition-id", type=int, default=-1, help="its partition of the data: its trainer id")
    p.add_argument("--num-partitions", type=int, default=0, help="how many partitions (the run's trainers)")
    p.add_argument("--clientapp-isolation", choices=CLIENTAPP_ISOLATION, default=DEFAULT_CLIENTAPP_ISOLATION,
                   help="warm: fork each ClientApp from a process with TensorFlow loaded; subprocess: Flower's "
                        "default fresh process per message")
    p.add_argument("--runtime-port", type=int, default=RUNTIME_PORT,
                   help="port of its SuperNode's Runtime API on 127.0.0.1 (another one per trainer on one machine)")
    own = add_own_key_options(p, "its own rollup key (omit: its account of the run's mnemonic signs, the manager "
                                 "registers it)", "--rollup-key-file",
                              "its rollup account's private key (one 0x-hex key, mode 0600; `fedrollup trainer "
                              "rollup-keygen`): it registers, signs its updates and contests from this key only")
    own.add_argument("--workdir", type=Path, default=Path("trainer"), metavar="DIR",
                     help="its folder: the updates it signed, kept to contest them")
    add_mnemonic_option(p)
    p.set_defaults(func=_run)
    actions = p.add_subparsers(dest="trainer_command", metavar="ACTION")
    keygen = actions.add_parser("keygen", help="make a SuperNode key pair: FILE (private) and FILE.pub")
    keygen.add_argument("file", type=Path, metavar="FILE", help="the private key's file (refused if it exists)")
    keygen.set_defaults(func=_keygen)
    rollup = actions.add_parser("rollup-keygen", help="make its rollup key: FILE (mode 0600), and print its address")
    rollup.add_argument("--out", type=Path, required=True, metavar="FILE", help="the key's file (refused if it exists)")
    rollup.set_defaults(func=_rollup_keygen)


def _run(args: argparse.Namespace) -> int:
    from flower_sim.trainer_role import TrainerOptions, run  # heavy: the role's processes

    set_mnemonic(args)
    return run(config_from(TrainerOptions, args))


def _keygen(args: argparse.Namespace) -> int:
    from flower_sim.deployment import write_supernode_key  # heavy: cryptography

    if args.file.exists():
        raise ConfigError(f"{args.file} exists: a trainer keeps its key (remove it to make a new one)")
    print(f"SuperNode key pair: {args.file} (private, keep it on the trainer's device) and "
          f"{write_supernode_key(args.file)} (public, for its validator's --trainer-keys folder)")
    return 0


def _rollup_keygen(args: argparse.Namespace) -> int:
    from flower_sim.key_file import write_key_file  # heavy: web3

    address = write_key_file(args.out)
    print(f"trainer rollup key: {args.out} (mode 0600, keep it on the trainer's device); its address {address} "
          f"(give it to the manager: its line of --trainer-addresses)")
    return 0
