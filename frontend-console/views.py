"""Decoded, human-readable views of the rollup's outputs and reports: every fedrollup notice by name and field,
the domain tables auditors ask for (tasks, rounds, stakes, producers), and the consensus's votes on each epoch."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Group, RenderableType
from rich.table import Table

from dapp.schema import (BLOB_VALIDATOR_MODEL, CANCEL_NAMES, DISPUTE_CHALLENGED, DISPUTE_NAMES, PENALTY_CHALLENGE,
                         PENALTY_CONTEST, PENALTY_NAMES, PAYOUT_NAMES, PAYOUT_SHAPLEY, RULE_NAMES, VALIDATION_NAMES,
                         CellCompliance, Contested, ContestResolved, ContributionClassified, GroupSkipped, ModelScored,
                         ProducerElected, ProducerMissed, RewardPaid, RoundRecorded, TaskCancelled, TaskCreated,
                         TaskFinished, TrainerStakes, TrainerStanding, ValidatorPenalized, ValidatorRewarded,
                         Withdrawal, BrokerFeePaid)
from dapp import qmodel
from dapp.dp_budget import DpBudget
from dapp.state import format_wei
from rollups_client.l1_capacity import contests_carried
from rollups_client.outputs import RollupOutput
from rollups_node.model import Report

if TYPE_CHECKING:  # web3 is heavy (0.7 s): the tables that do not need it stay quick to import
    from rollups_client.l1 import ConsensusInfo, EpochClaims


def fields(o: RollupOutput) -> dict[str, Any]:
    """An output's fields as the console shows them: the notice's, or what a voucher pays to whom."""
    if o.message is not None:
        return o.message.as_dict()
    if o.type == "Notice":
        return {"payload": "0x" + o.payload.hex(), "error": o.error}
    shown: dict[str, Any] = {"destination": o.destination}
    if o.value is not None:
        shown["value"] = format_wei(o.value)
    shown["payload"] = "0x" + o.payload.hex()
    return shown


def output_json(o: RollupOutput) -> dict[str, Any]:
    return {"index": o.index, "input_index": o.input_index, "epoch_index": o.epoch_index, "type": o.type,
            "name": o.name, "fields": fields(o), "proven": o.siblings is not None}


def _short(value: Any) -> str:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value[:8] + "…" + value[-4:]
    if isinstance(value, str) and value.startswith("0x") and len(value) > 20:
        return value[:12] + "…"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value[:4]) + (", …" if len(value) > 4 else "") + "]"
    return str(value)


def outputs_table(outputs: list[RollupOutput], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("index", "input", "epoch", "type", "fields", "proof"):
        table.add_column(name, justify="right" if name in ("index", "input", "epoch") else "left")
    for o in outputs:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in fields(o).items())
        table.add_row(str(o.index), str(o.input_index), str(o.epoch_index), o.name, shown,
                      "ready" if o.siblings is not None else "epoch not claimed yet")
    return table


def reports_table(reports: list[Report], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("index", "input", "report"):
        table.add_column(name, justify="right" if name != "report" else "left")
    for r in reports:
        table.add_row(str(r.index), str(r.input_index), report_text(r.raw_data))
    return table


def report_text(raw: bytes) -> str:
    """A report's payload as text (fedrollup reports are JSON), else as hex."""
    try:
        return json.dumps(json.loads(raw.decode()), separators=(", ", ": "))
    except (UnicodeDecodeError, ValueError):
        return "0x" + raw.hex()


def bps(value: int) -> str:
    return f"{value / 100:.2f}%"


def round_rows(notices: list[RollupOutput], task_id: int | None) -> list[dict[str, Any]]:
    """Per closed round, in order, what the rollup recorded: its `RoundRecorded` (`record`), the group models'
    accuracies (`models`: (group, bps)), accepted/rejected contributions, the rewarded validator (`rewarded`:
    its ValidatorRewarded), the producer its close elected (`producer`, of round `producer_round`), what went wrong
    (`skipped`, `missed`, `penalised`: text), and for a
    QoS task each cell's `CellCompliance` (`cells`)."""
    by_round: dict[tuple[int, int], dict[str, Any]] = {}
    closed: dict[int, int] = {}  # task -> the round whose RoundRecorded came last (a ProducerElected follows it)
    for o in notices:
        m = o.message
        if m is None or not hasattr(m, "round") or (task_id is not None and m.task_id != task_id):
            continue
        if isinstance(m, RoundRecorded):
            closed[m.task_id] = m.round
        # a close elects the producer of round + openRounds: its row is the closed round's
        key = (m.task_id, closed.get(m.task_id, m.round - 1)) if isinstance(m, ProducerElected) else (m.task_id,
                                                                                                     m.round)
        row = by_round.setdefault(key, {"task": key[0], "round": key[1], "positive": 0, "negative": 0, "skipped": [],
                                        "missed": [], "models": [], "penalised": [], "cells": []})
        if o.name == "ContributionClassified":
            row["positive" if m.positive else "negative"] += 1
        elif isinstance(m, RoundRecorded):
            row["record"] = m
        elif isinstance(m, ValidatorRewarded):
            row["rewarded"] = m
        elif isinstance(m, ProducerElected):
            row["producer"], row["producer_round"] = fields(o)["producer"], m.round
        elif isinstance(m, CellCompliance):
            row["cells"].append(m)
        elif isinstance(m, ModelScored) and m.kind == BLOB_VALIDATOR_MODEL:
            row["models"].append((m.group, m.accuracy_bps))
        elif isinstance(m, ValidatorPenalized):
            row["penalised"].append(f"group {m.group} ({PENALTY_NAMES.get(m.reason, m.reason)})")
        elif isinstance(m, GroupSkipped):
            row["skipped"].append(f"group {m.group} (late after block {m.report_deadline})")
        elif isinstance(m, ProducerMissed):
            shown = fields(o)
            row["missed"].append(f"{_short(shown['producer'])} (block {m.close_deadline}) → "
                                 f"{_short(shown['next_producer'])}")
    # a round without its RoundRecorded is still open: its reports are in, its close is not
    return [row for _, row in sorted(by_round.items()) if "record" in row]


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def cell_text(c: CellCompliance) -> str:
    """One cell's compliance as an auditor reads it: predicted violation rate (actual, the model's recall)."""
    return (f"cell {c.group}: {share(c.predicted_violations, c.sessions)} predicted in violation "
            f"(actual {share(c.actual_violations, c.sessions)}, recall {share(c.true_positives, c.actual_violations)})")


def round_trouble(row: dict[str, Any]) -> list[str]:
    """What went wrong in a round: skipped groups, missed closes, penalised validators."""
    return row["skipped"] + [f"missed close {m}" for m in row["missed"]] + [f"penalised {p}" for p in row["penalised"]]


def rounds_table(notices: list[RollupOutput], task_id: int | None) -> RenderableType:
    """Per round: the global model's accuracy and each group model's, as the rollup scored them on the public test
    set, accepted/rejected contributions, rewards paid, the rewarded validator, penalised validators, the groups
    skipped for missing the report deadline, the producers that missed their close deadline, the producer the close
    elected; for a
    QoS task, then, each cell's SLA compliance per round (`compliance_table`)."""
    table = Table(title="rounds recorded on the rollup (accuracies: the rollup's own, on the public test set)",
                  title_justify="left")
    rows = round_rows(notices, task_id)
    for name in ("task", "round", "closed (UTC)", "global", "accum.", "group models", "Pos/Neg", "paid to trainers",
                 "validator reward", "late or penalised", "elected producer", "escrow left"):
        table.add_column(name, justify="left" if name in ("validator reward", "elected producer", "late or penalised")
                         else "right", no_wrap=name in ("closed (UTC)", "elected producer", "group models"))
    for row in rows:
        rec: RoundRecorded = row["record"]
        when = time.strftime("%m-%d %H:%M:%S", time.gmtime(rec.timestamp))
        models = " · ".join(f"g{g} {bps(acc)}" for g, acc in sorted(row["models"])) or "—"
        rewarded = row.get("rewarded")
        table.add_row(str(row["task"]), str(row["round"]), when, bps(rec.global_accuracy_bps),
                      bps(rec.accumulated_accuracy_bps), models, f"{row['positive']}/{row['negative']}",
                      format_wei(rec.trainer_paid),
                      f"g{rewarded.group} +{format_wei(rewarded.amount)}" if rewarded else "—",
                      "; ".join(round_trouble(row)) or "—",
                      f"round {row['producer_round']}: {_short(row['producer'])}" if "producer" in row else "—",
                      format_wei(rec.escrow_left))
    return Group(table, compliance_table(rows)) if any(row["cells"] for row in rows) else table


def compliance_table(rows: list[dict[str, Any]]) -> Table:
    """A QoS task's `CellCompliance` notices: per round and cell (group), the round's global model on that cell's
    public test sessions: the share predicted in SLA violation, the actual share, recall and accuracy."""
    table = Table(title="SLA compliance per cell (the round's global model on each cell's public test sessions)",
                  title_justify="left")
    for name in ("task", "round", "cell", "sessions", "predicted in violation", "actual violations",
                 "violation recall", "accuracy"):
        table.add_column(name, justify="right")
    for row in rows:
        for c in row["cells"]:
            table.add_row(str(row["task"]), str(row["round"]), str(c.group), str(c.sessions),
                          share(c.predicted_violations, c.sessions), share(c.actual_violations, c.sessions),
                          share(c.true_positives, c.actual_violations), share(c.correct, c.sessions))
    return table


def stake_rows(notices: list[RollupOutput], task_id: int | None) -> list[dict[str, Any]]:
    """Every trainer's and validator's stake as the latest recorded round of each task states them (the
    validators' in its RoundRecorded, the trainers' in the TrainerStakes pages that follow it)."""
    latest: dict[int, RoundRecorded] = {}
    pages: dict[tuple[int, int], list[TrainerStakes]] = {}
    for o in notices:
        m = o.message
        if isinstance(m, RoundRecorded) and (task_id is None or m.task_id == task_id):
            latest[m.task_id] = m
        elif isinstance(m, TrainerStakes):
            pages.setdefault((m.task_id, m.round), []).append(m)
    rows = []
    for task, rec in sorted(latest.items()):
        trainer_pages = sorted(pages.get((task, rec.round), []), key=lambda p: p.first)
        groups = [("validator", rec.validators, rec.validator_stakes)]
        groups += [("trainer", p.trainers, p.stakes) for p in trainer_pages]
        rows += [{"task": task, "round": rec.round, "role": role, "address": address, "stake": stake}
                 for role, addresses, stakes in groups for address, stake in zip(addresses, stakes)]
    return rows


def standings_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """Trust tasks: every judged trainer's standing as its latest TrainerStanding states it (score, rejections in a
    row, bans, the last banned round), the round it was last judged and that round's verdict."""
    latest: dict[tuple[int, str], TrainerStanding] = {}
    for o in notices:
        m = o.message
        if isinstance(m, TrainerStanding) and task_id in (None, m.task_id):
            latest[(m.task_id, m.trainer)] = m
    table = Table(title="trainers' standing in trust tasks (score weighs pay and aggregation; bans after 3 "
                        "rejections in a row)", title_justify="left")
    for name in ("task", "trainer", "last judged", "verdict", "score", "strikes", "bans", "banned until"):
        table.add_column(name, justify="left" if name in ("trainer", "verdict") else "right")
    for (task, trainer), m in sorted(latest.items()):
        banned = f"round {m.banned_until}" if m.banned_until > m.round else "—"  # outlasts its last verdict
        table.add_row(str(task), m.as_dict()["trainer"], f"round {m.round}", "accepted" if m.accepted else "rejected",
                      f"{m.score / 100:.0f} %", str(m.strikes), str(m.bans), banned)
    return table


def payouts_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """Shapley tasks: every classified contribution's share of its group's round budget (its validator's valuation,
    checked by the rollup) beside what its trainer was paid at the close."""
    shapley = {m.task_id for o in notices if isinstance(m := o.message, TaskCreated) and m.payout == PAYOUT_SHAPLEY}
    paid = {(m.task_id, m.round, m.trainer.lower()): m.amount
            for o in notices if isinstance(m := o.message, RewardPaid)}
    table = Table(title="shapley tasks: each update's share of its group's round budget, and what it was paid",
                  title_justify="left")
    for name in ("task", "round", "group", "trainer", "verdict", "share", "paid"):
        table.add_column(name, justify="left" if name in ("trainer", "verdict") else "right")
    for o in notices:
        m = o.message
        if isinstance(m, ContributionClassified) and m.task_id in shapley and task_id in (None, m.task_id):
            amount = paid.get((m.task_id, m.round, m.trainer.lower()))
            table.add_row(str(m.task_id), str(m.round), str(m.group), fields(o)["trainer"],
                          "Positive" if m.positive else "Negative", bps(m.share_bps),
                          format_wei(amount) if amount is not None else "—")
    return table


def stakes_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """The stakes of every trainer and validator after the latest recorded round of each task."""
    table = Table(title="stakes (cumulative rewards) after the latest recorded round", title_justify="left")
    for name in ("task", "round", "role", "address", "stake"):
        table.add_column(name, justify="right" if name in ("task", "round", "stake") else "left")
    for row in stake_rows(notices, task_id):
        table.add_row(str(row["task"]), str(row["round"]), row["role"], row["address"], format_wei(row["stake"]))
    return table


def tasks_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """Every task as created: its terms (`open`: the rounds open on chain at once) and the privacy budget its publisher
    promised its trainers, in words."""
    table = Table(title="tasks: terms and the privacy budget promised to trainers", title_justify="left")
    for name in ("task", "publisher", "rounds", "open", "groups", "validation", "MAD", "payout", "escrow", "privacy"):
        table.add_column(name, justify="right" if name in ("task", "rounds", "open", "groups", "MAD", "escrow")
                         else "left")
    for o in notices:
        m = o.message
        if isinstance(m, TaskCreated) and task_id in (None, m.task_id):
            table.add_row(str(m.task_id), fields(o)["publisher"], str(m.rounds), str(m.open_rounds), str(m.groups),
                          VALIDATION_NAMES.get(m.validation, str(m.validation)), bps(m.mad_bps),
                          PAYOUT_NAMES.get(m.payout, str(m.payout)), format_wei(m.required_escrow),
                          DpBudget.of(m).words())
    return table


def contest_room(task: dict[str, Any], gas_limit: int) -> str:
    """How many of a round's trainers can contest in the task's contest window at L1's gas limit (`l1_capacity`):
    "all 40", or "12 of 200" when the window is too short for every trainer's recourse."""
    seats = task["groups"] * task["trainers_per_group"]
    carried = contests_carried(qmodel.arch_named(task["model_arch"]), task["contest_blocks"], task["groups"],
                               gas_limit)
    return f"all {seats}" if carried >= seats else f"{carried} of {seats} (too short)"


def open_tasks_table(tasks: list[dict[str, Any]], block: int, gas_limit: int) -> Table:
    """The tasks open for registration (the inspect route `tasks?open=B`): what a trainer compares between them."""
    table = Table(title=f"tasks open for registration at L1 block {block}", title_justify="left")
    for name in ("task", "publisher", "status", "model", "validation", "payout", "per Positive", "round budget",
                 "rounds", "broker's fee", "funded", "registration until", "seats left", "can contest"):
        table.add_column(name, justify="right" if name in ("task", "per Positive", "round budget", "rounds",
                                                           "broker's fee", "registration until") else "left")
    for t in tasks:
        seats = " · ".join(f"g{g} {n}" for g, n in enumerate(t["seats_left"]))
        table.add_row(str(t["task_id"]), t["publisher"], t["status"], t["model_arch"], t["validation"], t["payout"],
                      format_wei(int(t["reward_per_positive_wei"])), format_wei(int(t["round_trainer_budget_wei"])),
                      str(t["rounds"]), format_wei(int(t["broker_fee_wei"])), "yes" if t["funded"] else "no",
                      f"block {t['registration_deadline']}",
                      seats + (" (by approval)" if t["trainer_approval"] else ""), contest_room(t, gas_limit))
    return table


def reputation_table(records: list, chosen: set[str]) -> Table:
    """Applicants ranked by their record on the rollup (`dapp.market.Reputation`), the chosen ones marked."""
    table = Table(title="applicants by on-chain reputation (every task of the rollup)", title_justify="left")
    for name in ("rank", "trainer", "tasks", "updates accepted", "earned", "admitted"):
        table.add_column(name, justify="left" if name in ("trainer", "admitted") else "right")
    for rank, r in enumerate(sorted(records, key=lambda r: r.key), start=1):
        table.add_row(str(rank), r.address, str(r.tasks), f"{r.accepted} of {r.reported}", format_wei(r.earned),
                      "yes" if r.address in chosen else "")
    return table


def producers_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """Each round's elected producer (FLPoS) and, in the order they happened, the producers that let their
    close deadline pass and to whom the turn went."""
    table = Table(title="block producers elected by stake (FLPoS), and those that missed their turn",
                  title_justify="left")
    for name in ("task", "round", "producer", "stake", "why"):
        table.add_column(name, justify="right" if name in ("task", "round", "stake") else "left")
    for o in notices:
        m = o.message
        if task_id is not None and getattr(m, "task_id", None) != task_id:
            continue
        if isinstance(m, ProducerElected):
            table.add_row(str(m.task_id), str(m.round), fields(o)["producer"], format_wei(m.stake),
                          RULE_NAMES.get(m.rule, str(m.rule)))
        elif isinstance(m, ProducerMissed):
            table.add_row(str(m.task_id), str(m.round), fields(o)["producer"], "—",
                          f"missed its close deadline at block {m.close_deadline}: the turn went to "
                          f"{fields(o)['next_producer']}")
    return table


def disputes_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """Every dispute the rollup settled: who (trainer, the validator's group), what (a dropped or misjudged trainer's
    contest, the publisher's challenge of a Positive), the disputed update's and the validator model's accuracy on
    the public test set, the verdict, the validator's stake cut and what the trainer was paid that round."""
    table = Table(title="disputes settled by the rollup (accuracies: the rollup's own, on the public test set)",
                  title_justify="left")
    for name in ("task", "round", "group", "trainer", "kind", "update", "validator model", "upheld",
                 "validator's stake cut", "trainer paid"):
        table.add_column(name, justify="left" if name in ("trainer", "kind", "upheld") else "right")
    filed: dict[tuple[int, int, str], Contested] = {}
    resolved: list[tuple[ContestResolved, str]] = []
    cuts: dict[tuple[int, int, int, int], list[int]] = {}  # (task, round, group, reason) -> the cuts, in order
    paid: dict[tuple[int, int, str], int] = {}
    for o in notices:
        m = o.message
        if task_id is not None and getattr(m, "task_id", None) != task_id:
            continue
        if isinstance(m, Contested):
            filed[(m.task_id, m.round, m.trainer.lower())] = m
        elif isinstance(m, ContestResolved):
            resolved.append((m, fields(o)["trainer"]))
        elif isinstance(m, ValidatorPenalized) and m.reason in (PENALTY_CONTEST, PENALTY_CHALLENGE):
            cuts.setdefault((m.task_id, m.round, m.group, m.reason), []).append(m.stake_cut)
        elif isinstance(m, RewardPaid):
            paid[(m.task_id, m.round, m.trainer.lower())] = m.amount
    for m, trainer in resolved:
        reason = PENALTY_CHALLENGE if m.kind == DISPUTE_CHALLENGED else PENALTY_CONTEST
        cut = cuts.get((m.task_id, m.round, m.group, reason), []) if m.upheld else []
        key = (m.task_id, m.round, m.trainer.lower())
        table.add_row(str(m.task_id), str(m.round), str(m.group), trainer, DISPUTE_NAMES.get(m.kind, str(m.kind)),
                      bps(m.update_bps) if m.posted else "not posted",
                      bps(m.validator_bps) if m.validator_bps else "not revealed",
                      "yes: against the validator" if m.upheld else "no",
                      format_wei(cut.pop(0)) if cut else "—",
                      format_wei(paid[key]) if key in paid else "—")
    for (task, round_, trainer), m in filed.items():  # filed, not settled yet: the round is still open
        if not any((r.task_id, r.round, r.trainer.lower()) == (task, round_, trainer) for r, _ in resolved):
            table.add_row(str(task), str(round_), str(m.group), m.trainer, DISPUTE_NAMES.get(m.kind, str(m.kind)),
                          f"due by block {m.response_deadline}", "—", "pending", "—", "—")
    return table


def refunds_table(notices: list[RollupOutput], task_id: int | None) -> Table:
    """What went back to publishers: the escrow left when a task finished (credited to the publisher's
    balance) or was cancelled (a voucher), and each withdrawal of a balance (a voucher) by a publisher; and what
    the market's broker was paid from each task that started (a voucher)."""
    publishers = {m.publisher for o in notices if isinstance(m := o.message, TaskCreated)
                  and (task_id is None or m.task_id == task_id)}
    table = Table(title="refunds to publishers, fees to the broker", title_justify="left")
    for name in ("task", "event", "publisher", "amount", "how it is paid"):
        table.add_column(name, justify="right" if name in ("task", "amount") else "left")
    for o in notices:
        m = o.message
        if isinstance(m, (TaskFinished, TaskCancelled)) and (task_id is None or m.task_id == task_id):
            event = (f"finished (accumulated accuracy {bps(m.accumulated_accuracy_bps)})"
                     if isinstance(m, TaskFinished) else
                     f"cancelled in round {m.round}: {CANCEL_NAMES.get(m.reason, str(m.reason))}")
            how = "credited to its balance (Withdraw pays it)" if isinstance(m, TaskFinished) else "voucher"
            table.add_row(str(m.task_id), event, fields(o)["publisher"], format_wei(m.refund), how)
        elif isinstance(m, BrokerFeePaid) and (task_id is None or m.task_id == task_id):
            # the fee's voucher comes right before its notice (dapp/state.py, _broker_fee)
            table.add_row(str(m.task_id), f"broker's fee ({bps(m.fee_bps)} of the budget)", fields(o)["broker"],
                          format_wei(m.amount), f"voucher to the broker, output {o.index - 1}")
        elif isinstance(m, Withdrawal) and m.account in publishers:
            # Withdraw emits its voucher right before this notice (dapp/state.py, _withdraw)
            table.add_row("—", "withdrawal of its balance", fields(o)["account"], format_wei(m.amount),
                          f"voucher, output {o.index - 1} (`console voucher execute --index {o.index - 1}`)")
    return table


def _root(root: bytes | None) -> str:
    return "0x" + root.hex()[:8] + "…" if root is not None else "—"


def epoch_votes(claims: EpochClaims, info: ConsensusInfo, role: Callable[[str], str]) -> dict[str, Any]:
    """One epoch's claims as the console shows them: the settled root, how many members voted it, and each
    member's vote ("✓" for the settled root, "✗ 0x…" for another, "silent" for none) by role."""
    length, settled = info.epoch_length, claims.accepted_root
    first = claims.last_block + 1 - length
    tally = {root: len(claims.voters_of(root)) for root in claims.votes.values()}
    in_favour = tally.get(settled, 0) if settled is not None else max(tally.values(), default=0)
    members = []
    for address in info.members:
        vote = claims.votes.get(address)
        mark = ("silent" if vote is None else "✓" if vote == settled else
                f"✗ {_root(vote)}" if settled is not None else f"voted {_root(vote)}")
        members.append({"member": address, "role": role(address) or _short(address), "vote": mark,
                        "root": None if vote is None else "0x" + vote.hex()})
    return {"epoch": claims.last_block // length, "first_block": first, "last_block": claims.last_block,
            "accepted_root": None if settled is None else "0x" + settled.hex(),
            "accepted_times": len(claims.accepted), "in_favour": in_favour, "members": members,
            "needs": info.majority}


def member_roles(deployment, info: ConsensusInfo) -> Callable[[str], str]:
    """Who a voting address is: its role in the deployment file (a Quorum member), or the Authority's owner."""
    return deployment.member_role if info.is_quorum else (lambda address: "owner")


def votes_table(claims: dict[int, EpochClaims], info: ConsensusInfo, role: Callable[[str], str]) -> Table:
    """One row per epoch that has a claim on L1 (`L1.claims()`): its blocks, the root L1 settled, how many of
    the members voted it against the majority needed, and each member's vote by `role(address)`."""
    kind = (f"the Quorum of {len(info.members)} members at {info.validator}" if info.is_quorum
            else f"the Authority at {info.validator}, owned by {info.members[0]}")
    table = Table(title=f"votes on each epoch's outputs root: {kind} (a root settles with {info.majority} "
                        f"vote{'s' if info.majority > 1 else ''})", title_justify="left")
    for name in ("epoch", "blocks", "settled root", "votes", "members"):
        table.add_column(name, justify="right" if name == "epoch" else "left", no_wrap=name != "members")
    for item in claims.values():
        row = epoch_votes(item, info, role)
        settled = _root(item.accepted_root) if item.accepted else "not settled"
        if row["accepted_times"] > 1:
            settled += f" (settled {row['accepted_times']} times)"
        table.add_row(str(row["epoch"]), f"{row['first_block']}–{row['last_block']}", settled,
                      f"{row['in_favour']}/{len(info.members)} (needs {row['needs']})",
                      ", ".join(f"{m['role']} {m['vote']}" for m in row["members"]))
    return table
