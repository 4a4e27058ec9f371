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
from collections.abc import Callable
from dataclasses import dataclass, field

from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, Message, ProducerElected, Register, RoundClose,
                         ValidatorReport, encode_deposit_data, pack_contribution)
from common import accounts
from common.errors import ConfigError, FedrollupError
from flower_sim.config import SimulationConfig
from flower_sim.records import RoundRecord
from flower_sim.records import ValidatorReport as RoundReport
from frontend_console.node_client import ITEM_NOT_FOUND, NOTICE_TYPE, NodeError
from frontend_console.views import decode

GWEI = 10**9
FUNDING = 10**18  # wei given to each role account that has none (gas for a few hundred inputs)
Say = Callable[[str], None]


@dataclass(frozen=True)
class TaskTerms:
    """What the manager escrows: per round, the trainers' budget and the validator reward (integer wei)."""

    reward_per_positive: int = 1_000_000 * GWEI  # 0.001 ETH
    validator_reward: int = 5_000_000 * GWEI  # 0.005 ETH
    round_trainer_budget: int | None = None  # default: every trainer Positive is affordable

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

    def __init__(self, cfg: SimulationConfig, deployment, node, task_id: int | None = None,
                 terms: TaskTerms = TaskTerms(), say: Say = lambda _: None) -> None:
        from contracts_config.transactions import connect
        from web3 import Web3

        self.cfg, self.deployment, self.node, self.terms, self.say = cfg, deployment, node, terms, say
        self.w3 = connect(deployment.rpc_url)
        self.app = Web3.to_checksum_address(deployment.application)
        self.input_box = self.w3.eth.contract(address=Web3.to_checksum_address(deployment.input_box),
                                              abi=deployment.abi("InputBox"))
        self.portal = self.w3.eth.contract(address=Web3.to_checksum_address(deployment.ether_portal),
                                           abi=deployment.abi("EtherPortal"))
        self.manager_key = accounts.private_key(accounts.MANAGER_INDEX)
        self.validator_keys = [accounts.private_key(accounts.validator_index(g)) for g in range(cfg.validators)]
        self.trainer_keys = [accounts.private_key(accounts.trainer_index(t, cfg.validators))
                             for t in range(cfg.trainers)]
        self.key_of = {self._address(k): k for k in [self.manager_key, *self.validator_keys, *self.trainer_keys]}
        self.task_id = task_id
        self.producer = self._address(self.manager_key)  # round 1: the publisher, as in the paper
        self.pending: list[tuple[str, object]] = []  # (what, tx hash) sent but not yet confirmed by the rollup
        self.timings = ChainTimings()

    # ------------------------------------------------------------------ plumbing
    def _address(self, key: str) -> str:
        return self.w3.eth.account.from_key(key).address.lower()

    def _send(self, key: str, message: Message | None = None, payload: bytes | None = None,
              tip: int | None = None):
        from contracts_config.transactions import call_function

        data = payload if payload is not None else message.encode()
        fn = self.input_box.functions.addInput(self.app, data)
        return call_function(self.w3, key, fn, wait=False, tip=tip)

    def _input_index(self, tx_hash) -> int:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.05)
        if receipt["status"] != 1:
            raise RollupRejected(f"transaction {bytes(tx_hash).hex()} reverted on L1")
        events = [e for e in self.input_box.events.InputAdded().process_receipt(receipt)]
        return int(events[0]["args"]["index"])

    def _confirm(self, what: str, tx_hash, timeout: float = 120.0) -> int:
        """Wait until the rollup processed the input sent in `tx_hash`; raise its reason if rejected."""
        index = self._input_index(tx_hash)
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.node.call("cartesi_getInput", application=self.node.app,
                                        input_index=hex(index))["data"]["status"]
            except NodeError as err:
                if err.code != ITEM_NOT_FOUND:  # "input not found": the node has not read it yet
                    raise
                status = "NONE"
            if status == "ACCEPTED":
                return index
            if status not in ("NONE", ""):
                reports = self.node.reports(input_index=index)
                reason = bytes.fromhex(reports[0]["raw_data"][2:]).decode(errors="replace") if reports else status
                raise RollupRejected(f"the rollup rejected {what} (input {index}, {status}): {reason}")
            if time.monotonic() > deadline:
                raise RollupRejected(f"the rollup did not process {what} (input {index}) within {timeout:.0f} s")
            time.sleep(0.1)

    def _confirm_pending(self) -> list[int]:
        """Wait for every input sent and not yet confirmed; their input indices."""
        pending, self.pending = self.pending, []
        return [self._confirm(what, tx_hash) for what, tx_hash in pending]

    def _notices(self, input_index: int) -> list[Message]:
        return [decode(o).message for o in self.node.outputs(input_index=input_index, output_type=NOTICE_TYPE)]

    # ------------------------------------------------------------------ the task
    def _free_task_id(self) -> int:
        task_id = 1
        while True:
            answer = self.node.inspect(f"task/{task_id}".encode())
            if answer.get("status") != "Accepted":
                return task_id
            task_id += 1

    def _fund_roles(self) -> None:
        from contracts_config.transactions import send_transaction

        owner = accounts.private_key(accounts.OWNER_INDEX)
        poor = [a for a in self.key_of if self.w3.eth.get_balance(self.w3.to_checksum_address(a)) < FUNDING // 10]
        if poor:
            self.say(f"funding {len(poor)} role accounts with {FUNDING / 10**18:g} ETH each for gas")
        hashes = [send_transaction(self.w3, owner, {"to": self.w3.to_checksum_address(a), "value": FUNDING,
                                                     "gas": 21_000}, wait=False) for a in poor]
        for h in hashes:
            self.w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.05)

    def open_task(self, rounds: int) -> int:
        """Publish, fund and staff the task; returns its id. Blocks until the rollup accepted everything."""
        from contracts_config.transactions import call_function

        start = time.perf_counter()
        self._fund_roles()
        if self.task_id is None:
            self.task_id = self._free_task_id()
        cfg, t = self.cfg, self.terms
        create = CreateTask(task_id=self.task_id, mad_bps=round(cfg.mad * 10_000), rounds=rounds,
                            groups=cfg.validators, round_trainer_budget=t.budget(cfg.trainers),
                            reward_per_positive=t.reward_per_positive, validator_reward=t.validator_reward)
        escrow = rounds * (create.round_trainer_budget + create.validator_reward)
        self.say(f"manager publishes task {self.task_id} and escrows {escrow / 10**18:g} ETH through the EtherPortal")
        self._confirm("CreateTask", self._send(self.manager_key, create))
        deposit = self.portal.functions.depositEther(self.app, encode_deposit_data(self.task_id))
        self._confirm("the budget deposit", call_function(self.w3, self.manager_key, deposit, value=escrow, wait=False))
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
        words = tuple(pack_contribution(self._address(self.trainer_keys[c.trainer_id]), c.accuracy_bps,
                                        c.num_examples) for c in report.contributions)
        own_bps = report.own_accuracy_bps if report.own_accuracy_bps is not None else 0
        message = ValidatorReport(task_id=self.task_id, round=report.round, validator_accuracy_bps=own_bps,
                                  model_digest=bytes.fromhex(report.model_sha256), contributions=words)
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
        close = RoundClose(task_id=self.task_id, round=record.round, global_digest=bytes.fromhex(record.global_sha256),
                           global_accuracy_bps=record.global_accuracy_bps,
                           validator_accuracy_bps=tuple(v.aggregated_accuracy_bps for v in record.validators))
        what = f"the RoundClose of round {record.round}"
        early = self._send(key, close, tip=max(1, self.w3.eth.max_priority_fee // 2))
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
