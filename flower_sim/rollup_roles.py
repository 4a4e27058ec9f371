"""The FL roles' rollup side: every role sends its own inputs to the Cartesi rollup from its own key.

`RollupRecorder` is a `RoundObserver`: plugged into the round loop, it makes the manager publish and fund a
task (CreateTask, then an EtherPortal deposit), trainers and validators register, each validator send its
ValidatorReport as soon as it has judged its group, and the producer *elected by the rollup* send the
RoundClose; the next round starts only once the rollup has answered with the next ProducerElected notice.
If the rollup rejects an input, the run stops with the rollup's own reason.

Accounts come from `common.accounts` (one per role, derived by index); on a dev chain the roles that
have no Ether are funded from account 0, which owns the contracts.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from common import accounts
from common.errors import FedrollupError
from contracts_config.deployment import Deployment
from dapp.schema import (DEFAULT_CLOSE_BLOCKS, DEFAULT_REGISTRATION_BLOCKS, DEFAULT_REPORT_BLOCKS, ROLE_TRAINER,
                         ROLE_VALIDATOR, CreateTask, Message, ProducerElected, Register, RoundClose,
                         ValidatorReport, encode_deposit_data, pack_contribution)
from flower_sim.config import SimulationConfig
from flower_sim.records import RoundRecord
from flower_sim.records import ValidatorReport as RoundReport
from rollups_client.l1 import L1, Reverted
from rollups_client.node import NodeClient

GWEI = 10**9
FUNDING = 10**18  # wei given to each role account that has none (gas for a few hundred inputs)
Say = Callable[[str], None]


@dataclass(frozen=True)
class TaskTerms:
    """What the manager escrows: per round, the trainers' budget and the validator reward (integer wei)."""

    reward_per_positive: int = 1_000_000 * GWEI  # 0.001 ETH
    validator_reward: int = 5_000_000 * GWEI  # 0.005 ETH
    round_trainer_budget: int | None = None  # default: every trainer Positive is affordable
    registration_blocks: int = DEFAULT_REGISTRATION_BLOCKS
    report_blocks: int = DEFAULT_REPORT_BLOCKS
    close_blocks: int = DEFAULT_CLOSE_BLOCKS

    def budget(self, trainers: int) -> int:
        return self.round_trainer_budget if self.round_trainer_budget is not None \
            else trainers * self.reward_per_positive


class RollupRejected(FedrollupError):
    """The rollup rejected one of the roles' inputs (the message is the rollup's own report): the run stops,
    and the command line says why in one line."""


@dataclass
class ChainTimings:
    """Seconds the round loop spent blocked on the rollup, per round (the chain's share of a round)."""

    setup_s: float = 0.0
    per_round_s: list[float] = field(default_factory=list)


class RollupRecorder:
    """Records every federated round on the rollup, from each role's own account (a RoundObserver)."""

    def __init__(self, cfg: SimulationConfig, deployment: Deployment, node: NodeClient, task_id: int | None = None,
                 terms: TaskTerms = TaskTerms(), say: Say = lambda _: None) -> None:
        self.cfg, self.deployment, self.node, self.terms, self.say = cfg, deployment, node, terms, say
        self.l1 = L1(deployment.rpc_url, deployment)
        self.manager_key = accounts.private_key(accounts.MANAGER_INDEX)
        self.validator_keys = [accounts.private_key(accounts.validator_index(g)) for g in range(cfg.validators)]
        self.trainer_keys = [accounts.private_key(accounts.trainer_index(t, cfg.validators))
                             for t in range(cfg.trainers)]
        self.key_of = {L1.address(k): k for k in [self.manager_key, *self.validator_keys, *self.trainer_keys]}
        self.task_id = task_id
        self.producer = L1.address(self.manager_key)  # round 1: the publisher, as in the paper
        self.pending: list[tuple[str, object]] = []  # (what, tx hash) sent but not yet confirmed by the rollup
        self.timings = ChainTimings()

    # ------------------------------------------------------------------ plumbing
    def _send(self, key: str, message: Message | None = None, payload: bytes | None = None,
              tip: int | None = None):
        return self.l1.send_input(key, payload if payload is not None else message.encode(), tip=tip)

    def _input_index(self, tx_hash) -> int:
        try:
            return self.l1.input_index(tx_hash)
        except Reverted as err:
            raise RollupRejected(str(err)) from None

    def _confirm(self, what: str, tx_hash, timeout: float = 120.0) -> int:
        """Wait until the rollup processed the input sent in `tx_hash`; raise its reason if rejected."""
        index = self._input_index(tx_hash)
        deadline = time.monotonic() + timeout
        while True:
            status = self.node.input_status(index)
            if status == "ACCEPTED":
                return index
            if status not in ("NONE", ""):
                reports = self.node.reports(input_index=index)
                reason = reports[0].raw_data.decode(errors="replace") if reports else status
                raise RollupRejected(f"the rollup rejected {what} (input {index}, {status}): {reason}")
            if time.monotonic() > deadline:
                raise RollupRejected(f"the rollup did not process {what} (input {index}) within {timeout:.0f} s")
            time.sleep(0.1)

    def _confirm_pending(self) -> list[int]:
        """Wait for every input sent and not yet confirmed; their input indices."""
        pending, self.pending = self.pending, []
        return [self._confirm(what, tx_hash) for what, tx_hash in pending]

    def _notices(self, input_index: int) -> list[Message]:
        return [o.message for o in self.node.notices(input_index=input_index)]

    # ------------------------------------------------------------------ the task
    def _free_task_id(self) -> int:
        task_id = 1
        while True:
            if self.node.inspect(f"task/{task_id}".encode()).status != "Accepted":
                return task_id
            task_id += 1

    def _fund_roles(self) -> None:
        owner = accounts.private_key(accounts.OWNER_INDEX)
        poor = [a for a in self.key_of if self.l1.balance(a) < FUNDING // 10]
        if poor:
            self.say(f"funding {len(poor)} role accounts with {FUNDING / 10**18:g} ETH each for gas")
        hashes = [self.l1.send_ether(owner, a, FUNDING) for a in poor]
        for h in hashes:
            self.l1.receipt(h)

    def open_task(self, rounds: int) -> int:
        """Publish, fund and staff the task; returns its id. Blocks until the rollup accepted everything."""
        start = time.perf_counter()
        self._fund_roles()
        if self.task_id is None:
            self.task_id = self._free_task_id()
        cfg, t = self.cfg, self.terms
        create = CreateTask(task_id=self.task_id, mad_bps=round(cfg.mad * 10_000), rounds=rounds,
                            groups=cfg.validators, round_trainer_budget=t.budget(cfg.trainers),
                            reward_per_positive=t.reward_per_positive, validator_reward=t.validator_reward,
                            validators=tuple(L1.address(k).lower() for k in self.validator_keys),
                            trainers_per_group=max(Counter(map(cfg.group_of, range(cfg.trainers))).values(),
                                                   default=1),
                            registration_blocks=t.registration_blocks, report_blocks=t.report_blocks,
                            close_blocks=t.close_blocks)
        escrow = rounds * (create.round_trainer_budget + create.validator_reward)
        self.say(f"manager publishes task {self.task_id} and escrows {escrow / 10**18:g} ETH through the EtherPortal")
        self._confirm("CreateTask", self._send(self.manager_key, create))
        deposit = self.l1.send_deposit(self.manager_key, escrow, encode_deposit_data(self.task_id))
        self._confirm("the budget deposit", deposit)
        self.say(f"{cfg.validators} validators and {cfg.trainers} trainers register for task {self.task_id}")
        sent = [("validator registration", self._send(k, Register(self.task_id, ROLE_VALIDATOR, g)))
                for g, k in enumerate(self.validator_keys)]
        sent += [(f"trainer {t_id}'s registration", self._send(k, Register(self.task_id, ROLE_TRAINER,
                                                                           cfg.group_of(t_id))))
                 for t_id, k in enumerate(self.trainer_keys)]
        for what, tx in sent:
            self._confirm(what, tx)
        self.timings.setup_s = time.perf_counter() - start
        return self.task_id

    # ------------------------------------------------------------------ RoundObserver
    def on_validator_report(self, report: RoundReport) -> None:
        """Send the validator's report now; the rollup's answer is awaited when the round closes."""
        start = time.perf_counter()
        words = tuple(pack_contribution(L1.address(self.trainer_keys[c.trainer_id]), c.accuracy_bps,
                                        c.num_examples) for c in report.contributions)
        own_bps = report.own_accuracy_bps if report.own_accuracy_bps is not None else 0
        message = ValidatorReport(task_id=self.task_id, round=report.round, validator_accuracy_bps=own_bps,
                                  model_digest=report.model_sha256, contributions=words)
        self.pending.append((f"validator {report.validator_id}'s report of round {report.round}",
                             self._send(self.validator_keys[report.validator_id], message)))
        self._blocked(report.round, time.perf_counter() - start)

    def on_round_closed(self, record: RoundRecord) -> None:
        """The elected producer closes the round; wait for the rollup to elect the next one.

        The RoundClose goes out at once, with a lower priority fee than the reports, so when the last report
        is still waiting for a block, both land in the same block with the close after it: one L1 block per
        round saved. Should the close still be ordered before a report (the rollup then turns it away for
        the missing report, changing nothing), it is sent again once the reports are in."""
        start = time.perf_counter()
        key = self.key_of.get(self.producer)
        if key is None:
            raise RollupRejected(f"the rollup elected {self.producer}, whose key this run does not hold")
        close = RoundClose(task_id=self.task_id, round=record.round, global_digest=record.global_sha256,
                           global_accuracy_bps=record.global_accuracy_bps,
                           validator_accuracy_bps=tuple(v.aggregated_accuracy_bps for v in record.validators))
        what = f"the RoundClose of round {record.round}"
        early = self._send(key, close, tip=max(1, self.l1.priority_fee // 2))
        reports = self._confirm_pending()
        if self._input_index(early) < max(reports, default=-1):
            self.say(f"the RoundClose of round {record.round} reached L1 before a report; sending it again")
            early = self._send(key, close)
        index = self._confirm(what, early)
        elected = [n for n in self._notices(index) if isinstance(n, ProducerElected)]
        if elected:
            self.producer = elected[0].producer
            self.say(f"round {record.round} recorded on the rollup (input {index}); "
                     f"the rollup elected {elected[0].producer[:10]}… to close round {elected[0].round}")
        else:
            self.say(f"round {record.round} recorded on the rollup (input {index}); task {self.task_id} finished")
        self._blocked(record.round, time.perf_counter() - start)

    def _blocked(self, round_: int, seconds: float) -> None:
        while len(self.timings.per_round_s) < round_:
            self.timings.per_round_s.append(0.0)
        self.timings.per_round_s[round_ - 1] += seconds
