"""The auditors' explorer: one JSON snapshot of what an auditor looks at, for the page `fedrollup console serve`
opens: the chain and its consensus, every task, every closed round (the rollup's accuracies, contributions, pay,
the validators' stakes), every participant's stake, the producers, each epoch's votes, and every output with
its L1 validation state: `validated` (proven against a root the consensus settled), `pending` (its epoch has
no settled root yet) or `failed` (its proof does not hold against the settled root: what the node serves is
not what L1 settled).

It reads only the node's public JSON-RPC and L1, so it works against any conformant node. Wei amounts travel as
decimal strings (a JavaScript number loses them past 2^53), each beside its formatted text.
"""
from __future__ import annotations

from typing import Any

from dapp.dp_budget import DpBudget
from dapp.schema import (BrokerFeePaid, ProducerElected, ProducerMissed, RULE_NAMES, TaskCancelled, TaskCreated,
                         TaskFinished)
from dapp.state import format_wei
from frontend_console.views import (cell_text, epoch_votes, fields, member_roles, output_json, round_rows,
                                    round_trouble, stake_rows)
from rollups_client.l1 import L1, settled_epochs
from rollups_client.node import NodeClient
from rollups_client.outputs import RollupOutput

VALIDATED, PENDING, FAILED = "validated", "pending", "failed"


def wei(amount: int) -> dict[str, str]:
    return {"wei": str(amount), "text": format_wei(amount)}


def snapshot(node: NodeClient, l1: L1) -> dict[str, Any]:
    """Everything the page shows, read now from the node and L1."""
    outputs = node.outputs()
    notices = [o for o in outputs if o.message is not None]
    info, claims = l1.consensus_info(), l1.claims()
    role = member_roles(l1.deployment, info)
    settled = settled_epochs(claims, l1.deployment.epoch_length)
    return {
        "chain": {"chain_id": l1.deployment.chain_id, "application": l1.deployment.application,
                  "node_rpc_url": node.jsonrpc_url, "rpc_url": l1.deployment.rpc_url, "consensus": info.type,
                  "consensus_address": info.validator, "majority": info.majority,
                  "members": [{"address": a, "role": role(a)} for a in info.members],
                  "epoch_length": info.epoch_length},
        "tasks": tasks(notices),
        "rounds": rounds(notices),
        "stakes": [{**row, "stake": wei(row["stake"])} for row in stake_rows(notices, None)],
        "producers": producers(notices),
        "votes": [epoch_votes(c, info, role) for c in claims.values()],
        "outputs": [validated(o, l1, settled) for o in outputs],
    }


def validated(o: RollupOutput, l1: L1, settled: set[int]) -> dict[str, Any]:
    """An output as `output_json` shows it, plus its L1 state: proven against the settled root, or why not."""
    shown = output_json(o)
    if o.siblings is None or o.epoch_index not in settled:
        return {**shown, "l1": PENDING, "why": "its epoch has no settled root on L1 yet"}
    why = l1.validate_output(o.raw, o.index, o.siblings)
    return {**shown, "l1": FAILED if why else VALIDATED, "why": why or ""}


def tasks(notices: list[RollupOutput]) -> list[dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    for o in notices:
        m = o.message
        if isinstance(m, TaskCreated):
            found[m.task_id] = {"task": m.task_id, "publisher": m.publisher, "rounds": m.rounds, "groups": m.groups,
                                "validators": list(m.validators), "mad_bps": m.mad_bps,
                                "escrow": wei(m.required_escrow), "state": "open",
                                "privacy": DpBudget.of(m).words()}
        elif isinstance(m, TaskFinished) and m.task_id in found:
            found[m.task_id].update(state="finished", refund=wei(m.refund))
        elif isinstance(m, TaskCancelled) and m.task_id in found:
            found[m.task_id].update(state="cancelled")
        elif isinstance(m, BrokerFeePaid) and m.task_id in found:  # a market's deployment (dapp/market.py)
            found[m.task_id].update(broker_fee=wei(m.amount), broker=m.broker)
    return [found[t] for t in sorted(found)]


def rounds(notices: list[RollupOutput]) -> list[dict[str, Any]]:
    shown = []
    for row in round_rows(notices, None):
        rec, rewarded = row["record"], row.get("rewarded")
        shown.append({
            "task": row["task"], "round": row["round"], "timestamp": rec.timestamp,
            "global_bps": rec.global_accuracy_bps, "accumulated_bps": rec.accumulated_accuracy_bps,
            "models": [{"group": g, "bps": acc} for g, acc in sorted(row["models"])],
            "positive": row["positive"], "negative": row["negative"], "trainer_paid": wei(rec.trainer_paid),
            "validator_reward": {"group": rewarded.group, "amount": wei(rewarded.amount)} if rewarded else None,
            "trouble": round_trouble(row), "next_producer": row.get("producer"),
            "elected_round": row.get("producer_round"),
            "escrow_left": wei(rec.escrow_left),
            "cells": [{**c.as_dict(), "text": cell_text(c)} for c in row["cells"]],
            "validator_stakes": [{"address": a, "stake": wei(s)} for a, s in zip(rec.validators,
                                                                                rec.validator_stakes)]})
    return shown


def producers(notices: list[RollupOutput]) -> list[dict[str, Any]]:
    shown = []
    for o in notices:
        m = o.message
        if isinstance(m, ProducerElected):
            shown.append({"task": m.task_id, "round": m.round, "producer": fields(o)["producer"],
                          "stake": wei(m.stake), "why": RULE_NAMES.get(m.rule, str(m.rule))})
        elif isinstance(m, ProducerMissed):
            shown.append({"task": m.task_id, "round": m.round, "producer": fields(o)["producer"], "stake": None,
                          "why": f"missed its close deadline at block {m.close_deadline}: the turn went to "
                                 f"{fields(o)['next_producer']}"})
    return shown
