"""How the node names inputs and outputs in its log, in the project's own words when `dapp.schema` knows them.

The node stays generic (any backend works): an input the fedrollup schema decodes is named by its message
type ("ValidatorReport"), notices by theirs ("10 ContributionClassified"); others by their size or kind.
"""
from __future__ import annotations

from collections import Counter

from dapp.portal import ether_portal_address
from dapp.schema import decode_input, decode_notice
from rollups_node.model import Input
from rollups_node.outputs import NOTICE, TYPE_NAMES, unpack_output

MAX_REASON = 120


def describe_payload(item: Input) -> str:
    """"ValidatorReport", "Ether deposit", or "<n> bytes" for an input the schema does not know."""
    if item.sender.lower() == ether_portal_address().lower():
        return "Ether deposit"
    try:
        return type(decode_input(item.payload)).__name__
    except ValueError:
        return f"{len(item.payload)} bytes"


def _notice_name(raw: bytes) -> str:
    try:
        return type(decode_notice(unpack_output(raw).payload)).__name__
    except ValueError:
        return "notice"


def describe_outputs(outputs: list[bytes], reports: list[bytes]) -> str:
    """"11 notices (10 ContributionClassified, 1 RewardPaid), 1 voucher, 1 report"."""
    kinds = Counter(TYPE_NAMES.get(raw[:4], "output") for raw in outputs)
    parts = []
    for kind, count in kinds.items():
        part = f"{count} {kind[0].lower() + kind[1:]}{'s' if count != 1 else ''}"
        if kind == "Notice":
            names = Counter(_notice_name(raw) for raw in outputs if raw[:4] == NOTICE)
            if set(names) != {"notice"}:
                part += " (" + ", ".join(f"{n} {name}" for name, n in names.items()) + ")"
        parts.append(part)
    if reports:
        parts.append(f"{len(reports)} report{'s' if len(reports) != 1 else ''}")
    return ", ".join(parts) or "no outputs"


def describe_reason(reports: list[bytes], exception: bytes | None) -> str:
    """Why an input was rejected: the exception text, else its first report when that is short text."""
    text = exception if exception is not None else (reports[0] if reports else b"")
    try:
        reason = text.decode()
    except UnicodeDecodeError:
        return ""
    if not reason or not reason.isprintable():
        return ""
    return f" ({reason[:MAX_REASON]}{'…' if len(reason) > MAX_REASON else ''})"
