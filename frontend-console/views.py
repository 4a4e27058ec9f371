"""Decoded, human-readable views of the rollup's outputs and reports: every fedrollup notice by name and field,
and the domain tables auditors ask for (rounds, stakes, producers)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from dapp.schema import (RULE_NAMES, MessageDecodeError, ProducerElected, RoundRecorded,
                         ValidatorRewarded, decode_notice)
from dapp.state import format_wei
from frontend_console.node_client import hex_int
from rollups_node.outputs import decode_output


def from_hex(text: str | None) -> bytes:
    return bytes.fromhex(text[2:]) if text else b""


@dataclass(frozen=True)
class DecodedOutput:
    index: int
    input_index: int
    epoch_index: int
    type: str  # "Notice" | "Voucher" | "DelegateCallVoucher"
    name: str  # the fedrollup notice name, "Voucher", or "?" for a payload this console cannot decode
    fields: dict[str, Any]
    raw: bytes
    siblings: list[bytes] | None = field(repr=False, default=None)
    message: Any = field(repr=False, default=None)  # the dapp.schema message, for notices

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "input_index": self.input_index, "epoch_index": self.epoch_index,
                "type": self.type, "name": self.name, "fields": self.fields,
                "proven": self.siblings is not None}


def decode(out: dict) -> DecodedOutput:
    """One output object of `cartesi_listOutputs`, decoded down to the fedrollup message it carries."""
    raw = from_hex(out["raw_data"])
    decoded = decode_output(raw)
    siblings = [from_hex(s) for s in out["output_hashes_siblings"]] if out.get("output_hashes_siblings") else None
    common = dict(index=hex_int(out["index"]), input_index=hex_int(out["input_index"]),
                  epoch_index=hex_int(out.get("epoch_index")) or 0, type=decoded["type"], raw=raw, siblings=siblings)
    if decoded["type"] == "Notice":
        try:
            message = decode_notice(from_hex(decoded["payload"]))
        except MessageDecodeError as err:
            return DecodedOutput(name="?", fields={"payload": decoded["payload"], "error": str(err)}, **common)
        return DecodedOutput(name=type(message).__name__, fields=message.as_dict(), message=message, **common)
    fields = {k: v for k, v in decoded.items() if k != "type"}
    if "value" in fields:
        fields["value"] = format_wei(int(fields["value"], 16))
    return DecodedOutput(name=decoded["type"], fields=fields, **common)


def _short(value: Any) -> str:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value[:8] + "…" + value[-4:]
    if isinstance(value, str) and value.startswith("0x") and len(value) > 20:
        return value[:12] + "…"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value[:4]) + (", …" if len(value) > 4 else "") + "]"
    return str(value)


def outputs_table(outputs: list[DecodedOutput], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("index", "input", "epoch", "type", "fields", "proof"):
        table.add_column(name, justify="right" if name in ("index", "input", "epoch") else "left")
    for o in outputs:
        fields = ", ".join(f"{k}={_short(v)}" for k, v in o.fields.items())
        table.add_row(str(o.index), str(o.input_index), str(o.epoch_index), o.name, fields,
                      "ready" if o.siblings is not None else "epoch not claimed yet")
    return table


def reports_table(reports: list[dict], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("index", "input", "report"):
        table.add_column(name, justify="right" if name != "report" else "left")
    for r in reports:
        table.add_row(str(hex_int(r["index"])), str(hex_int(r["input_index"])), report_text(r["raw_data"]))
    return table


def report_text(raw_hex: str) -> str:
    """A report's payload as text (fedrollup reports are JSON), else as hex."""
    raw = from_hex(raw_hex)
    try:
        return json.dumps(json.loads(raw.decode()), separators=(", ", ": "))
    except (UnicodeDecodeError, ValueError):
        return "0x" + raw.hex()


def bps(value: int) -> str:
    return f"{value / 100:.2f}%"


def rounds_table(notices: list[DecodedOutput], task_id: int | None) -> Table:
    """Per round: accuracy, accepted/rejected contributions, rewards paid, the rewarded validator, next producer."""
    table = Table(title="rounds recorded on the rollup", title_justify="left")
    for name in ("task", "round", "block time (UTC)", "global acc", "accumulated", "positive", "negative",
                 "paid to trainers", "validator reward", "next producer", "escrow left"):
        table.add_column(name, justify="left" if name in ("validator reward", "next producer") else "right",
                         no_wrap=name in ("block time (UTC)", "next producer"))
    by_round: dict[tuple[int, int], dict[str, Any]] = {}
    for o in notices:
        m = o.message
        if m is None or not hasattr(m, "round") or (task_id is not None and m.task_id != task_id):
            continue
        key = (m.task_id, m.round) if not isinstance(m, ProducerElected) else (m.task_id, m.round - 1)
        row = by_round.setdefault(key, {"positive": 0, "negative": 0})
        if o.name == "ContributionClassified":
            row["positive" if m.positive else "negative"] += 1
        elif isinstance(m, RoundRecorded):
            row["record"] = m
        elif isinstance(m, ValidatorRewarded):
            row["rewarded"] = f"group {m.group} +{format_wei(m.amount)}"
        elif isinstance(m, ProducerElected):
            row["producer"] = _short(o.fields["producer"])
    for (task, round_), row in sorted(by_round.items()):
        rec: RoundRecorded | None = row.get("record")
        if rec is None:
            continue  # a round still open: its reports are in, its close is not
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(rec.timestamp))
        table.add_row(str(task), str(round_), when, bps(rec.global_accuracy_bps),
                      bps(rec.accumulated_accuracy_bps), str(row["positive"]), str(row["negative"]),
                      format_wei(rec.trainer_paid), row.get("rewarded", "—"), row.get("producer", "— (last round)"),
                      format_wei(rec.escrow_left))
    return table


def stakes_table(notices: list[DecodedOutput], task_id: int | None) -> Table:
    """The stakes of every trainer and validator as the latest RoundRecorded of each task states them."""
    latest: dict[int, RoundRecorded] = {}
    for o in notices:
        if isinstance(o.message, RoundRecorded) and (task_id is None or o.message.task_id == task_id):
            latest[o.message.task_id] = o.message
    table = Table(title="stakes (cumulative rewards) after the latest recorded round", title_justify="left")
    for name in ("task", "round", "role", "address", "stake"):
        table.add_column(name, justify="right" if name in ("task", "round", "stake") else "left")
    for task, rec in sorted(latest.items()):
        for role, addresses, stakes in (("validator", rec.validators, rec.validator_stakes),
                                        ("trainer", rec.trainers, rec.trainer_stakes)):
            for address, stake in zip(addresses, stakes):
                table.add_row(str(task), str(rec.round), role, address, format_wei(stake))
    return table


def producers_table(notices: list[DecodedOutput], task_id: int | None) -> Table:
    table = Table(title="block producers elected by stake (FLPoS)", title_justify="left")
    for name in ("task", "round", "producer", "stake", "why"):
        table.add_column(name, justify="right" if name in ("task", "round", "stake") else "left")
    for o in notices:
        m = o.message
        if isinstance(m, ProducerElected) and (task_id is None or m.task_id == task_id):
            table.add_row(str(m.task_id), str(m.round), o.fields["producer"], format_wei(m.stake),
                          RULE_NAMES.get(m.rule, str(m.rule)))
    return table

