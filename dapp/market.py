"""The market's terms, fixed at deployment: the broker (the operator) and its fee, and what a task owes it.

Several publishers post tasks on one rollup (each with its own escrow, terms and deadlines: `dapp.state`); the
operator who runs the market, FedMarket's *broker*, takes a fee in basis points of every task's budget. Both
are the backend's configuration for the application's whole life — in a Cartesi Machine they are part of the
machine image, hence of the template hash the Application commits to; in host mode the node hands them to the
backend from the deployment file (`FEDROLLUP_BROKER`, `FEDROLLUP_BROKER_FEE_BPS`), and the audit replays with
the same. The rule (docs/PROTOCOL.md, "The broker's fee"):

* the fee is ``fee_bps`` of the task's budget, ``rounds × (roundTrainerBudget + validatorReward)``, rounded down
  (the dust stays with the publisher), reserved on top of the budget in the required escrow, so the trainers' and
  validators' terms are exactly what they are paid;
* it is due once the task **started** (funded, test set posted, a validator seated): it leaves the escrow by a
  voucher to the broker when the task finishes or is cancelled after its start; a task that never started owes
  nothing and is refunded in full.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from dapp.mad import BPS
from dapp.schema import ROLE_TRAINER, normalize_address
from dapp.task import Task

BROKER_ENV = "FEDROLLUP_BROKER"
BROKER_FEE_ENV = "FEDROLLUP_BROKER_FEE_BPS"
DEFAULT_FEE_BPS = 200  # FedMarket's 2 % (its Table 2, "Broker escrow fee")
NO_BROKER = ""


@dataclass(frozen=True)
class Market:
    """The broker and its fee; no broker: no fee (a single-publisher deployment)."""

    broker: str = NO_BROKER  # lowercase address, or "" for none
    fee_bps: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.fee_bps <= BPS:
            raise ValueError(f"the broker's fee is {self.fee_bps} bps, not in 0..{BPS}")
        if self.broker and int(self.broker, 16) == 0:
            raise ValueError("the broker cannot be the zero address")

    @classmethod
    def of(cls, broker: str | None, fee_bps: int = DEFAULT_FEE_BPS) -> Market:
        """A market with `broker` (any case) taking `fee_bps`; no broker given: no fee."""
        return cls(normalize_address(broker), fee_bps) if broker else cls()

    def fee_on(self, budget: int) -> int:
        """The fee on a task's budget, in wei: rounded down, so it never takes a wei the rule does not give it."""
        return budget * self.fee_bps // BPS if self.broker else 0

    def as_dict(self) -> dict[str, object]:
        return {"broker": self.broker or None, "fee_bps": self.fee_bps if self.broker else 0}

    def environment(self) -> dict[str, str]:
        """What a backend process is started with to run this market: both variables, always (an empty broker
        too), so that a value left in the operator's shell never gives the backend a market its deployment lacks."""
        return {BROKER_ENV: self.broker, BROKER_FEE_ENV: str(self.fee_bps if self.broker else 0)}


def market_from_env(environ: Mapping[str, str] | None = None) -> Market:
    """The backend's market from its environment; raises ValueError, in words, on a malformed value."""
    env = os.environ if environ is None else environ
    broker = env.get(BROKER_ENV, "").strip()
    fee = env.get(BROKER_FEE_ENV, "").strip()
    if not broker:
        if fee not in ("", "0"):
            raise ValueError(f"{BROKER_FEE_ENV}={fee} needs {BROKER_ENV} (who is paid the fee)")
        return Market()
    try:
        bps = int(fee) if fee else DEFAULT_FEE_BPS
    except ValueError:
        raise ValueError(f"{BROKER_FEE_ENV} is a whole number of basis points, got {fee!r}") from None
    try:
        return Market.of(broker, bps)
    except ValueError as err:
        raise ValueError(f"{BROKER_ENV}/{BROKER_FEE_ENV}: {err}") from None


@dataclass(frozen=True)
class Reputation:
    """A trainer's record across every task of the rollup: what a publisher ranks applicants by (top-κ)."""

    address: str
    tasks: int = 0  # tasks it registered for as a trainer
    reported: int = 0  # its updates in recorded rounds' reports
    accepted: int = 0  # of those, judged Positive by the task's rule
    earned: int = 0  # wei it was paid (its stakes: trainers' stakes are their pay)

    @property
    def key(self) -> tuple[int, int, int, str]:
        """The ranking: most accepted updates, then the best acceptance rate (per 10,000, floored), then most earned,
        then the address (a stable order, not a merit)."""
        rate = self.accepted * BPS // self.reported if self.reported else 0
        return (-self.accepted, -rate, -self.earned, self.address)


def reputation(tasks: Mapping[int, Task], address: str) -> Reputation:
    """`address`'s record over every task's recorded rounds (deterministic: a function of the state alone)."""
    rep = Reputation(address)
    for task in tasks.values():
        p = task.participants.get(address)
        if p is None or p.role != ROLE_TRAINER:
            continue
        reports = [r.entries[address] for record in task.history for r in record.reports
                   if r is not None and address in r.entries]
        rep = Reputation(address, rep.tasks + 1, rep.reported + len(reports),
                         rep.accepted + sum(e.positive for e in reports), rep.earned + task.stakes.get(address, 0))
    return rep


def top(reputations: list[Reputation], kappa: int) -> list[Reputation]:
    """The `kappa` best of `reputations` by `Reputation.key` (FedMarket's top-κ, on the rollup's record)."""
    return sorted(reputations, key=lambda r: r.key)[:max(0, kappa)]


def fee_due(broker_fee: int, started: bool) -> int:
    """What a task that ends now owes the broker: its reserved fee once it started, nothing before."""
    return broker_fee if started else 0
