"""`fedrollup dapp …`: run the rollup backend, build input payloads, decode notices and inputs."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from common.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dapp", help="the Cartesi rollup backend: run it, encode inputs, decode notices",
                                   description="The Cartesi rollup backend (docs/PROTOCOL.md).")
    sub = parser.add_subparsers(dest="dapp_command", metavar="ACTION")
    sub.required = True

    run = sub.add_parser("run", help="serve the rollup HTTP API's requests (same as `python -m dapp`)")
    run.add_argument("--url", default=os.environ.get("ROLLUP_HTTP_SERVER_URL", "http://127.0.0.1:5004"),
                     help="rollup HTTP server (default: $ROLLUP_HTTP_SERVER_URL or http://127.0.0.1:5004)")
    run.add_argument("--ether-portal", default=None,
                     help="EtherPortal address (default: $FEDROLLUP_ETHER_PORTAL or the canonical 2.2.0 one)")
    run.add_argument("--broker", default=None, metavar="ADDRESS",
                     help="the market's broker, paid its fee on every task that starts (default: $FEDROLLUP_BROKER, "
                          "else none: no fee)")
    run.add_argument("--broker-fee-bps", type=int, default=None, metavar="BPS",
                     help="the broker's fee in basis points of a task's budget (default: $FEDROLLUP_BROKER_FEE_BPS, "
                          "else 200 = 2 %%)")
    run.set_defaults(func=_run)

    enc = sub.add_parser("encode", help="print the hex payload of an input, e.g. "
                                        "`encode Register task_id=1 role=0 group=0`",
                         description="Fields as name=value: integers (decimal or 0x), bytes32 and addresses as "
                                     "0x hex, arrays comma-separated; contributions as trainer:accuracyBps:samples. "
                                     "`encode deposit task_id=N` prints EtherPortal extra data.")
    enc.add_argument("message", help="CreateTask, CancelTask, Register, ValidatorReport, ReportPart, RoundClose, "
                                     "Withdraw or deposit")
    enc.add_argument("fields", nargs="*", metavar="NAME=VALUE")
    enc.set_defaults(func=_encode)

    dec = sub.add_parser("decode", help="decode a notice or input payload (0x hex) to JSON")
    dec.add_argument("payload", help="0x-prefixed hex")
    dec.set_defaults(func=_decode)


def _run(args: argparse.Namespace) -> int:
    from dapp.__main__ import main  # heavy: eth_abi (keeps --help instant)

    os.environ["ROLLUP_HTTP_SERVER_URL"] = args.url
    if args.ether_portal:
        os.environ["FEDROLLUP_ETHER_PORTAL"] = args.ether_portal
    if args.broker is not None:
        os.environ["FEDROLLUP_BROKER"] = args.broker
    if args.broker_fee_bps is not None:
        os.environ["FEDROLLUP_BROKER_FEE_BPS"] = str(args.broker_fee_bps)
    from dapp.market import market_from_env  # heavy: eth_abi, as above

    try:
        market_from_env()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return main()


def _field_value(abi_type: str, text: str, name: str):
    from dapp.schema import normalize_address, pack_contribution  # heavy: eth_abi (keeps --help instant)

    if abi_type.endswith("[]"):
        items = [t for t in text.split(",") if t]
        if name == "contributions":
            try:  # a trust task's word also carries the update's cosine and size, a shapley task's its share
                return tuple(pack_contribution(t, *(int(v, 0) for v in values))
                             for t, *values in (item.split(":") for item in items))
            except (ValueError, TypeError) as err:
                raise ConfigError(f"contributions are trainer:accuracyBps:samples[:cosineBps:normCenti[:shareBps]], "
                                  f"comma-separated ({err})") from None
        return tuple(_field_value(abi_type[:-2], item, name) for item in items)
    if abi_type == "address":
        try:
            return normalize_address(text)
        except ValueError as err:
            raise ConfigError(f"{name}: {err}") from None
    if abi_type == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise ConfigError(f"{name} is true or false, got {text!r}")
        return text.lower() in ("true", "1")
    if abi_type.startswith("bytes"):
        try:
            raw = bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"{name} is hex bytes, got {text[:40]!r}") from None
        if abi_type == "bytes32" and len(raw) != 32:
            raise ConfigError(f"{name} must be 32 bytes of hex, got {len(raw)}")
        return raw
    return int(text, 0)


def _encode(args: argparse.Namespace) -> int:
    from dapp.schema import BY_NAME, INPUTS, encode_deposit_data  # heavy: eth_abi (keeps --help instant)

    pairs = {}
    for item in args.fields:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"field {item!r} is not NAME=VALUE")
        pairs[name] = value
    if args.message == "deposit":
        if set(pairs) != {"task_id"}:
            raise ConfigError("deposit takes exactly task_id=N")
        print("0x" + encode_deposit_data(int(pairs["task_id"], 0)).hex())
        return 0
    cls = BY_NAME.get(args.message)
    if cls is None or cls.KIND != "input":
        raise ConfigError(f"unknown input {args.message!r}; inputs: "
                          f"{', '.join(m.__name__ for m in INPUTS)}, deposit")
    fields = {f.name: f.metadata["abi"] for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    if not required <= set(pairs) <= set(fields):
        optional = [f + "=" for f in fields if f not in required]
        raise ConfigError(f"{cls.__name__} needs {' '.join(f + '=' for f in fields if f in required)}"
                          + (f" (optional: {' '.join(optional)})" if optional else ""))
    try:
        message = cls(**{n: _field_value(fields[n], v, n) for n, v in pairs.items()})
        print("0x" + message.encode().hex())
    except (ValueError, OverflowError) as err:
        raise ConfigError(f"cannot encode {err}") from None
    return 0


def _decode(args: argparse.Namespace) -> int:
    from dapp.schema import MessageDecodeError, decode_input, decode_notice  # heavy: eth_abi

    try:
        payload = bytes.fromhex(args.payload.removeprefix("0x"))
    except ValueError:
        raise ConfigError("payload is not hex") from None
    errors = []
    for decode in (decode_notice, decode_input):
        try:
            message = decode(payload)
        except MessageDecodeError as err:
            errors.append(str(err))
            continue
        json.dump({"kind": message.KIND, "name": type(message).__name__, **message.as_dict()}, sys.stdout,
                  default=str)
        print()
        return 0
    raise ConfigError("; ".join(errors))
