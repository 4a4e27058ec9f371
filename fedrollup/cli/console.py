"""The auditors' console: `fedrollup console <command>` (or `frontend-console <command>`).

Modelled on the official Cartesi frontend console (`input send`, `ether deposit`, `notice list`,
`voucher list`, `report list`, `notice validate`, `voucher execute`, `inspect`) but for Rollups v2
(JSON-RPC reader, v2 proofs), plus fedrollup's own `rounds`, `stakes`, `producers`, `refunds`, `disputes`,
`votes`, `audit` and `serve` (the explorer, a web page).
"""
from __future__ import annotations

import argparse
import decimal
import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from common.errors import ConfigError
from fedrollup.cli.entry import dispatch, quiet_third_parties
from frontend_console.endpoints import resolve


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("where to look (defaults: the local deployment of `fedrollup chain up`)")
    group.add_argument("--node", help="the rollups node's base URL, serving /rpc and /inspect/<app> "
                                      "(default $FEDROLLUP_NODE_URL, runs/chain/chain.json, http://127.0.0.1:6751)")
    group.add_argument("--rpc", help="the L1 JSON-RPC URL (default $FEDROLLUP_RPC_URL or the deployment's)")
    group.add_argument("--app", help="the application's address or name (default $FEDROLLUP_APP or the deployment's)")
    group.add_argument("--deployment", help="deployment file (default $FEDROLLUP_DEPLOYMENT or "
                                            "contracts-config/deployments/local.json)")
    common.add_argument("--json", action="store_true", help="print JSON for machines instead of tables")
    return common


def _signer() -> argparse.ArgumentParser:
    signer = argparse.ArgumentParser(add_help=False)
    group = signer.add_argument_group("who signs the L1 transaction")
    group.add_argument("--key", help="a private key (0x…); overrides --mnemonic/--account-index")
    group.add_argument("--mnemonic", help="mnemonic to derive the key from (default $FEDROLLUP_MNEMONIC or "
                                          "the dev chain's 'test test … junk')")
    group.add_argument("--account-index", type=int, default=0, help="account index in the mnemonic (default 0)")
    return signer


def add_commands(commands: argparse._SubParsersAction) -> None:
    """The console's commands, shared by `fedrollup console` and the standalone `frontend-console`."""
    common, signer = _common(), _signer()

    def command(name: str, help_text: str, parents: list, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=parents, **kwargs)

    def noun(name: str, help_text: str) -> argparse._SubParsersAction:
        sub = commands.add_parser(name, help=help_text, description=help_text).add_subparsers(
            dest=f"{name}_command", metavar="ACTION")
        sub.required = True
        return sub

    inputs = noun("input", "send inputs to the application through the InputBox")
    p = inputs.add_parser("send", help="add an input (InputBox.addInput) and print its index",
                          parents=[common, signer])
    p.add_argument("--payload", required=True,
                   help="0x-hex bytes (e.g. from `fedrollup dapp encode …`), or text sent as UTF-8")
    p.set_defaults(func=_input_send)

    p = command("admit", "a publisher seats the top κ of its applicants by their on-chain reputation (accepted "
                         "updates, then acceptance rate, then earnings, across every task): AdmitTrainers from its key",
                [common, signer])
    p.add_argument("--task", type=int, required=True, help="the publisher's task (created with trainer approval)")
    p.add_argument("--group", type=int, default=0, help="the group they are admitted to (default 0)")
    p.add_argument("--top", type=int, required=True, metavar="K", help="how many applicants to admit (κ)")
    p.add_argument("applicants", nargs="+", metavar="ADDRESS", help="the trainers who applied (off chain)")
    p.add_argument("--dry-run", action="store_true", help="rank and show, send nothing")
    p.set_defaults(func=_admit)

    ether = noun("ether", "deposit Ether into the application through the EtherPortal")
    p = ether.add_parser("deposit", help="EtherPortal.depositEther: fund a task's escrow, or credit your balance",
                         parents=[common, signer])
    p.add_argument("--amount", required=True,
                   help="how much: Ether (0.5), or with a unit: 0.5ether, 20gwei, 1000wei")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--task", type=int, help="the task whose escrow it funds (the execution-layer data is "
                                                 "`fedrollup dapp encode deposit task_id=N`)")
    target.add_argument("--data", help="raw execution-layer data, 0x-hex (default none: the "
                                                      "deposit is credited to your withdrawable balance)")
    p.set_defaults(func=_ether_deposit)

    for kind, verb, verb_help, action, parents in (
            ("Notice", "validate", "validate a notice on L1 against its epoch's claim", _notice_validate, [common]),
            ("Voucher", "execute", "execute a voucher on L1 (Application.executeOutput)", _voucher_execute,
             [common, signer])):
        name = kind.lower()
        actions = noun(name, f"list and {verb} {name}s")
        p = actions.add_parser("list", help=f"list {name}s, decoded", parents=[common])
        p.add_argument("--input", type=int, help=f"only the {name}s of this input index")
        p.set_defaults(func=_output_list, output_type=kind)
        p = actions.add_parser(verb, help=verb_help, parents=parents)
        p.add_argument("--index", type=int, required=True, help=f"the {name}'s output index")
        p.set_defaults(func=action)

    reports = noun("report", "list reports (errors and inspect answers)")
    p = reports.add_parser("list", help="list reports", parents=[common])
    p.add_argument("--input", type=int, help="only the reports of this input index")
    p.set_defaults(func=_report_list)

    p = command("inspect", "query the application's state (POST /inspect/<app>)", [common])
    p.add_argument("--payload", required=True, help="the inspect path, e.g. stakes/1, rounds/1?from=2, "
                                                    "producer/1, task/1, balance/0x…, market, tasks?open=BLOCK, "
                                                    "reputation/0x…")
    p.set_defaults(func=_inspect)

    for name, what in (("tasks", "every task's terms and the privacy budget (differential privacy) promised to its "
                                 "trainers"),
                       ("rounds", "per round: accuracy, contributions, rewards, skipped groups, missed closes, "
                                  "the next producer"),
                       ("stakes", "every trainer's and validator's stake after the latest round"),
                       ("standings", "trust tasks: every trainer's standing (score, strikes, bans) after its latest "
                                     "verdict"),
                       ("payouts", "shapley tasks: each update's share of its group's budget and what it was paid"),
                       ("producers", "the block producer elected by stake (FLPoS) for each round, and who "
                                     "missed its close deadline"),
                       ("refunds", "what went back to publishers: TaskFinished, TaskCancelled, withdrawals"),
                       ("disputes", "every contest and challenge: who, the public accuracies, the verdict, the "
                                    "validator's stake cut, what the trainer was paid")):
        p = command(name, what, [common])
        p.add_argument("--task", type=int, help="only this task")
        p.set_defaults(func=_domain_table, table=name)
        if name == "tasks":
            p.add_argument("--open", action="store_true",
                           help="only the tasks a trainer may still register for at L1's latest block (the rollup's "
                                "inspect route tasks?open=BLOCK): reward rule, budget, broker's fee, deadline, seats")

    p = command("votes", "per epoch, from L1: the outputs root the consensus settled and how each member voted",
                [common])
    p.set_defaults(func=_votes)

    p = command("serve", "the explorer: a local web page over the node's JSON-RPC and L1 (tasks, rounds and stakes "
                         "plotted, participants, producers, votes, every output's L1 state, the audit's verdict)",
                [common])
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8780, help="the port (default 8780; 0 picks a free one)")
    p.add_argument("--run-dir", type=Path,
                   help="the FL run folder, so that the page's audit also checks its model files (.frq)")
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save a picture of the page (headless Chromium) once the audit's verdict is in, then exit")
    p.set_defaults(func=_serve)

    p = command("audit", "re-derive every notice from the L1 inputs, prove each on L1, check model files",
                [common])
    p.add_argument("--run-dir", type=Path,
                   help="the FL run folder whose model files (.frq) to check against the digests")
    p.add_argument("--no-force", action="store_true",
                   help="never mine blocks to close the last epoch (a real chain); just wait for its claim")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the node and the claims")
    p.set_defaults(func=_audit)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    console = subparsers.add_parser("console", help="the auditors' console: list, decode, validate, audit",
                                     description=__doc__.split("\n\n")[0])
    commands = console.add_subparsers(dest="console_command", metavar="COMMAND")
    commands.required = True
    add_commands(commands)


# ------------------------------------------------------------------------------------------ actions


def _context(args: argparse.Namespace):
    from rollups_client.node import NodeClient  # heavy: eth_abi (keeps --help instant)

    endpoints, deployment = resolve(args.node, args.rpc, args.app, args.deployment)
    return endpoints, deployment, NodeClient.at(endpoints.node_url, endpoints.app)


def _l1(args: argparse.Namespace):
    from rollups_client.l1 import L1  # heavy: web3 (0.7 s)

    endpoints, deployment, node = _context(args)
    return L1(endpoints.rpc_url, deployment), node


def _key(args: argparse.Namespace) -> str:
    """The signer's private key, checked: a bad --key or --mnemonic is a one-line error, not a traceback."""
    from common.accounts import private_key  # heavy: eth_account (0.5 s)
    from contracts_config.transactions import address_of  # heavy: eth_account, as above
    from eth_utils.exceptions import ValidationError  # heavy: eth_utils, as above

    if args.key:
        if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", args.key):
            raise ConfigError("--key is not a private key (64 hex digits, optionally after 0x)")
        try:
            address_of(args.key)
        except (ValueError, TypeError, ValidationError):
            raise ConfigError("--key is not a valid secp256k1 private key (zero or above the curve order)") from None
        return args.key
    try:
        return private_key(args.account_index, args.mnemonic)
    except (ValueError, TypeError, ValidationError) as err:
        raise ConfigError(f"cannot derive account {args.account_index} from the mnemonic: {err}") from None


UNITS = {"ether": 10**18, "eth": 10**18, "gwei": 10**9, "wei": 1}


def parse_wei(text: str) -> int:
    """An amount as the console takes it (`0.5`, `0.5ether`, `20gwei`, `1000wei`) in wei; ConfigError if it is
    not a positive whole number of wei."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match and UNITS.get(match.group(2).lower() or "ether")
    if not unit:
        raise ConfigError(f"--amount {text!r} is not an amount: a number of Ether (0.5) or with a unit "
                          f"({', '.join(UNITS)})")
    wei = decimal.Decimal(match.group(1)) * unit
    if wei != wei.to_integral_value():
        raise ConfigError(f"--amount {text!r} is not a whole number of wei")
    if wei <= 0:
        raise ConfigError(f"--amount {text!r}: a deposit must be more than 0")
    return int(wei)


def _print(args: argparse.Namespace, data: Any, table: Any) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        Console(width=max(160, Console().width)).print(table)


def _input_send(args: argparse.Namespace) -> int:
    text = args.payload
    if text.startswith("0x"):
        try:
            payload = bytes.fromhex(text[2:])
        except ValueError:
            raise ConfigError(f"--payload {text[:20]}… starts with 0x but is not hex") from None
    else:
        payload = text.encode()
    l1, _ = _l1(args)
    index = l1.add_input(_key(args), payload)
    print(json.dumps({"input_index": index}) if args.json else f"input {index} added")
    return 0


def _ether_deposit(args: argparse.Namespace) -> int:
    from dapp.schema import encode_deposit_data  # heavy: eth_abi (keeps --help instant)
    from dapp.state import format_wei  # heavy: eth_abi, as above
    from rollups_client.l1 import Reverted  # heavy: web3 (0.7 s)

    value = parse_wei(args.amount)
    if args.task is not None:
        if args.task < 0:
            raise ConfigError(f"--task {args.task}: task ids are not negative")
        data, what = encode_deposit_data(args.task), f"for task {args.task}"
    else:
        try:
            data = bytes.fromhex((args.data or "").removeprefix("0x"))
        except ValueError:
            raise ConfigError(f"--data {args.data[:20]!r} is not 0x-hex") from None
        what = f"with data 0x{data.hex()}" if data else "for your withdrawable balance"
    key = _key(args)
    l1, _ = _l1(args)
    balance = l1.balance(l1.address(key))
    if balance < value:
        raise ConfigError(f"{l1.address(key)} holds {format_wei(balance)}, less than the {format_wei(value)} "
                          "to deposit (plus gas)")
    try:
        index = l1.input_index(l1.send_deposit(key, value, data))
    except Reverted as err:
        raise ConfigError(f"the deposit was not made: {err}") from None
    print(json.dumps({"input_index": index, "value_wei": str(value), "exec_layer_data": "0x" + data.hex()})
          if args.json else f"deposit of {format_wei(value)} {what} added as input {index}")
    return 0


def _decoded_outputs(args: argparse.Namespace, node) -> list:
    from rollups_node.outputs import NOTICE, VOUCHER  # heavy: eth_abi (keeps --help instant)

    selector = {"Notice": NOTICE, "Voucher": VOUCHER}.get(getattr(args, "output_type", ""))
    return node.outputs(input_index=getattr(args, "input", None), output_type=selector)


def _output_list(args: argparse.Namespace) -> int:
    from frontend_console.views import output_json, outputs_table  # heavy: eth_abi (keeps --help instant)

    _, _, node = _context(args)
    outputs = _decoded_outputs(args, node)
    _print(args, [output_json(o) for o in outputs], outputs_table(outputs, f"{args.output_type.lower()}s"))
    return 0


def _proven_output(node, index: int, kind: str):
    out = node.output(index)
    if out.type != kind:
        raise ConfigError(f"output {index} is a {out.type}, not a {kind}")
    if out.siblings is None or out.epoch_index not in node.accepted_epochs():
        raise ConfigError(f"output {index} cannot be proven yet: its epoch {out.epoch_index}'s claim is not "
                         f"accepted on L1")
    return out


def _notice_validate(args: argparse.Namespace) -> int:
    l1, node = _l1(args)
    out = _proven_output(node, args.index, "Notice")
    why = l1.validate_output(out.raw, out.index, out.siblings)
    if why:
        print(f"notice {out.index} ({out.name}) is NOT valid on L1: {why}")
        return 1
    print(f"notice {out.index} ({out.name}) is valid on L1 (epoch {out.epoch_index}'s claim)")
    return 0


def _voucher_execute(args: argparse.Namespace) -> int:
    from frontend_console.views import fields  # heavy: eth_abi (keeps --help instant)

    l1, node = _l1(args)
    out = _proven_output(node, args.index, "Voucher")
    tx = l1.execute_output(_key(args), out.raw, out.index, out.siblings)
    shown = fields(out)
    print(f"voucher {out.index} executed: {shown.get('value')} to {shown.get('destination')} (tx {tx})")
    return 0


def _report_list(args: argparse.Namespace) -> int:
    from frontend_console.views import report_text, reports_table  # heavy: eth_abi (keeps --help instant)

    _, _, node = _context(args)
    reports = node.reports(input_index=args.input)
    data = [{"index": r.index, "input_index": r.input_index, "payload": report_text(r.raw_data)} for r in reports]
    _print(args, data, reports_table(reports, "reports"))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from frontend_console.views import report_text  # heavy: eth_abi (keeps --help instant)

    _, _, node = _context(args)
    answer = node.inspect(args.payload.encode())
    if args.json:
        print(json.dumps(answer.json, indent=2))
    else:
        print(f"status {answer.status}, {answer.processed_input_count} inputs processed")
        for report in answer.reports:
            print(report_text(report))
        if answer.exception:
            print(f"exception: {answer.exception}")
    return 0 if answer.status == "Accepted" else 1


def _domain_table(args: argparse.Namespace) -> int:
    from frontend_console import views  # heavy: eth_abi (keeps --help instant)

    if getattr(args, "open", False):
        return _open_tasks(args)

    _, _, node = _context(args)
    notices = [o for o in _decoded_outputs(args, node) if o.message is not None]
    builder = {"tasks": views.tasks_table, "rounds": views.rounds_table, "stakes": views.stakes_table,
               "standings": views.standings_table, "payouts": views.payouts_table,
               "producers": views.producers_table,
               "refunds": views.refunds_table, "disputes": views.disputes_table}
    table = builder[args.table](notices, args.task)
    data = [views.output_json(o) for o in notices
            if args.task is None or o.message.as_dict().get("task_id") == args.task]
    _print(args, data, table)
    return 0


def _admit(args: argparse.Namespace) -> int:
    """Rank the applicants by the rollup's reputation route, admit the top K (the rollup checks the rest: the
    sender is the publisher, the task takes approvals, the group has room)."""
    from dapp.market import Reputation, top  # heavy: eth_abi (keeps --help instant)
    from dapp.schema import AdmitTrainers, normalize_address  # heavy: eth_abi, as above
    from frontend_console.views import reputation_table  # heavy: eth_abi, as above

    if args.top < 1 or args.task < 0 or not 0 <= args.group < 256:
        raise ConfigError("--top must be at least 1, --task not negative and --group in 0..255")
    try:
        applicants = list(dict.fromkeys(normalize_address(a) for a in args.applicants))
    except ValueError as err:
        raise ConfigError(f"an applicant is {err}") from None
    l1, node = _l1(args)
    records = []
    for address in applicants:
        answer = node.inspect(f"reputation/{address}".encode())
        r = json.loads(answer.reports[0]) if answer.reports else {}
        if answer.status != "Accepted":
            raise ConfigError(f"the rollup did not answer {address}'s reputation: {r.get('error', answer.status)}")
        records.append(Reputation(address, r["tasks"], r["reported"], r["accepted"], int(r["earned_wei"])))
    chosen = top(records, args.top)
    _print(args, {"chosen": [r.address for r in chosen]}, reputation_table(records, {r.address for r in chosen}))
    if args.dry_run:
        return 0
    index = l1.add_input(_key(args), AdmitTrainers(args.task, args.group, tuple(r.address for r in chosen)).encode())
    print(json.dumps({"input_index": index}) if args.json else
          f"AdmitTrainers for task {args.task} group {args.group}: {len(chosen)} trainer(s), input {index} added")
    return 0


def _open_tasks(args: argparse.Namespace) -> int:
    """The market's listing: the tasks open for registration at L1's latest block, as the rollup answers it."""
    from frontend_console.views import open_tasks_table, report_text  # heavy: eth_abi (keeps --help instant)

    l1, node = _l1(args)
    block = l1.block_number()
    answer = node.inspect(f"tasks?open={block}".encode())
    if answer.status != "Accepted" or not answer.reports:
        raise ConfigError(f"the rollup did not list its open tasks: {answer.status} "
                          + (report_text(answer.reports[0]) if answer.reports else ""))
    listing = json.loads(answer.reports[0])
    tasks = [t for t in listing["tasks"] if args.task in (None, t["task_id"])]
    _print(args, {**listing, "tasks": tasks}, open_tasks_table(tasks, block, l1.gas_limit()))
    return 0


def _votes(args: argparse.Namespace) -> int:
    from frontend_console.views import epoch_votes, member_roles, votes_table  # heavy: eth_abi (keeps --help instant)

    l1, _ = _l1(args)
    info, claims = l1.consensus_info(), l1.claims()
    role = member_roles(l1.deployment, info)
    _print(args, [epoch_votes(c, info, role) for c in claims.values()], votes_table(claims, info, role))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from frontend_console.audit import AuditFailure, audit  # heavy: web3 (0.7 s)

    l1, node = _l1(args)
    progress = (lambda _: None) if args.json else (lambda text: print(f"  … {text}", file=sys.stderr))
    try:
        report = audit(node, l1, run_dir=args.run_dir, force_claims=not args.no_force, timeout=args.timeout,
                       progress=progress)
    except AuditFailure as failure:
        print(json.dumps({"passed": False, "discrepancy": str(failure)}) if args.json
              else f"AUDIT FAILED: {failure}")
        return 1
    if not args.json:
        for note in report.notes:  # dissenting and silent members: not failures while the true root settled
            print(f"  note: {note}")
    print(json.dumps({"passed": True, "verdict": report.verdict(), **{k: v for k, v in vars(report).items()}})
          if args.json else report.verdict())
    return 0


def _serve(args: argparse.Namespace) -> int:
    from frontend_console.explorer_server import Explorer, make_server  # heavy: web3 (0.7 s)

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a TCP port (0-65535; 0 picks a free one)")
    l1, node = _l1(args)
    explorer = Explorer(node, l1, run_dir=args.run_dir)
    server = make_server(explorer, args.host, args.port)
    explorer.start_audit()
    host, port = server.server_address[:2]
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/"
    if args.screenshot is None:
        print(f"the explorer is at {url} (the audit runs in the background; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0
    from frontend_console.screenshot import screenshot  # heavy: selenium

    threading.Thread(target=server.serve_forever, name="explorer", daemon=True).start()
    try:
        verdict = screenshot(url, args.screenshot)
    finally:
        server.shutdown()
        server.server_close()
    print(f"{args.screenshot}: the explorer of {l1.deployment.application}; {verdict}")
    return 0 if verdict.startswith("AUDIT PASSED") else 1


def main(argv: list[str] | None = None) -> int:
    """The standalone `frontend-console` command."""
    quiet_third_parties()
    parser = argparse.ArgumentParser(prog="frontend-console", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="console_command", metavar="COMMAND")
    commands.required = True
    add_commands(commands)
    return dispatch(parser.parse_args(argv), "frontend-console")
