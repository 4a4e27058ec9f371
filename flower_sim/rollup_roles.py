"""The FL roles' rollup side: every role sends its own inputs to the Cartesi rollup from its own key.

`RollupRecorder` is a `RoundObserver` (and the run's `RollupLink`): plugged into the round loop, it makes the
manager publish and fund a task (CreateTask committing to the public test set, then an EtherPortal deposit) and
post the public test set (`TestSetChunk`s, the first 500 held-out images), trainers and validators register;
then, every round, each validator sends its ValidatorReport v2 as soon as it has judged its group (each entry
with the trainer's own `Update` signature; past 500 trainers in `ReportPart`s), reveals its model (`ModelChunk`s
from its own key) once every group has reported, and the producer whose turn it is sends the number-free RoundClose
once the contest window has passed; the rollup averages the revealed models and scores them itself. The recorder
checks that the rollup's `GlobalModel` is bit for bit the manager's (the run stops if not) and keeps the rollup's
numbers per round (`round_figures`: each model's public accuracy, the global's). If the rollup rejects an input,
the run stops with its reason.

The chain never stalls a round: `on_round_closed(r)` hands round r's close (the reveals confirmed, the disputes, the
contest window, the RoundClose, the check of the rollup's GlobalModel, the ProducerElected) to one background worker
thread and returns at once, so round r+1 trains meanwhile (it needs nothing of the rollup's answer: the manager's
global model is the rollup's, bit for bit, which the worker checks). The worker sends the closes one after the
other, in order, as the rollup requires; since every open round's producer is known in advance (round r's close
elects round r + K's), it sends a close once its contest window passed without waiting for the previous one to be
mined, and a confirming thread checks each close in order (a close mined before its predecessor's is sent again).
The task keeps `openRounds` K rounds open on chain at once (`TaskTerms`, 8 by default): round r's reports go out as
soon as the round loop has them, once round r - K's close is confirmed (the round loop waits for that close only,
and raises its error), sent with the reveals by a sender thread (web3 builds, estimates and signs each input: the
round loop only hands them over); with K = 1 the round loop sends them itself and nothing of round r+1 is sent
before round r's close is confirmed. A close (or a send) that failed stops the run at the round loop's next call. At
the end of the run (`finish`) the round loop waits for every close handed over (the chain's tail,
`ChainTimings.final_s`).
A validator that accepted nothing (its model is the round's starting model) commits digest 0 and reveals nothing when
K > 1 (the rollup counts the previous global for it). Sends are serialised (one key's nonces stay in order).

It follows the rollup's schedule (`rollup_schedule`): a validator made silent from some round on withholds
its rollup inputs (report, reveal, close); the recorder then waits, watching L1's block numbers, until the
report deadline has passed (the rollup skips the silent group; the others reveal) and, when the silent
validator was elected producer, until its close deadline has passed, and the next producer in the election
order closes. At the end the publisher withdraws what the rollup refunded it (`withdraw_refund`).

Disputes (`disputes.DisputeDesk`): after each round's reveals, a trainer left out of its group's report or
reported Negative contests from its own key when the rule would uphold it, the publisher challenges implausible
Positives, a challenged validator defends what it can; the close waits for the response deadline while a disputed
update is missing. With rounds open at once a disputes worker confirms a round's reveals and files its disputes as soon
as the reveals are sent (its contest window runs from its last report), beside the earlier rounds' closes. A validator
made to lie (`cheating.CheatingValidator`, `--cheating-validator`) changes only the
report it sends; its trainers keep what the honest report gave them (their receipts and updates).

Accounts come from `common.accounts` (one per role, derived by index); on a dev chain the roles that
have no Ether are funded from account 0, which owns the contracts. Given `remote_validators` (their addresses,
`fedrollup manager --validator-address`), the recorder holds no validator key: each validator sends its own
Register, reports, reveals and closes (`validator_agent`), and the recorder waits for them on the rollup
(`remote_validators.RemoteValidators`), checking the rollup's global model as before.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from common import accounts
from common.errors import ConfigError
from contracts_config.deployment import Deployment
from dapp.eip712 import Domain
from dapp.qnn import record_size
from dapp.qmodel import arch_named, digest
from dapp.schema import (DEFAULT_CLOSE_BLOCKS, DEFAULT_REGISTRATION_BLOCKS, DEFAULT_REPORT_BLOCKS, PAYOUT_PER_POSITIVE,
                         PAYOUT_SHAPLEY, PENALTY_NAMES, ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, GlobalModel,
                         GroupSkipped, Message, ModelScored, ProducerElected, ProducerMissed, Register, RoundClose,
                         TaskCreated, TestSetPosted, VALIDATION_MAD, VALIDATION_TRUST,
                         ValidatorPenalized, Withdraw, encode_deposit_data)
from dapp.state import format_wei
from dapp.task import KEEP_DIGEST
from flower_sim import models
from flower_sim.cheating import CheatingValidator
from flower_sim.config import SimulationConfig
from flower_sim.data import make_splits, rollup_test_set
from flower_sim.disputes import DisputeDesk
from flower_sim.records import RoundRecord
from flower_sim.quantize import to_frq1
from flower_sim.records import ValidatorReport as RoundReport
from flower_sim.remote_validators import RemoteValidators
from flower_sim.rollup_inputs import model_chunks, public_set_chunks, report_inputs
from flower_sim.rollup_schedule import ELECTED, ClosePlan, Schedule, SilentValidator, plan_close
from flower_sim.rollup_watch import RollupRejected, processed
from flower_sim.signatures import RollupTask
from rollups_client import l1_capacity
from rollups_client.l1 import L1, Dropped, Reverted
from rollups_client.node import NodeClient

GWEI = 10**9
FUNDING = 10**18  # wei given to each role account that has none (gas for a few hundred inputs)
RUN_CONTEST_BLOCKS = 2  # this project's runs: each round waits at least this many L1 blocks after its last report
RUN_OPEN_ROUNDS = 8  # this project's runs: rounds open on chain at once (keeps up with 2.5-s rounds at 12-s blocks)
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
    contest_blocks: int | None = None  # the reveal/contest window, then the response window, each round (None: what
    # carries a contest from every trainer of a round at L1's gas limit, at least RUN_CONTEST_BLOCKS: `l1_capacity`)
    open_rounds: int | None = None  # CreateTask.openRounds (1 records one round at a time); None: what keeps the
    # training from waiting for L1 at its block time, at least RUN_OPEN_ROUNDS, at most rounds - 1 (`l1_capacity`)

    def budget(self, trainers: int) -> int:
        return self.round_trainer_budget if self.round_trainer_budget is not None \
            else trainers * self.reward_per_positive


def fund_accounts(l1: L1, addresses: list[str]) -> int:
    """Give each of `addresses` with less than a tenth of `FUNDING` that much from the owner (account 0, which
    deployed the contracts), one process sending (the owner's nonces); returns how many were funded."""
    owner = accounts.private_key(accounts.OWNER_INDEX)
    poor = [a for a in addresses if l1.balance(a) < FUNDING // 10]
    for tx in [l1.send_ether(owner, a, FUNDING) for a in poor]:
        l1.receipt(tx)
    return len(poor)


@dataclass
class ChainTimings:
    """Seconds the round loop spent blocked on the rollup, per round (the chain's share of a round): round r's
    entry counts the wait for round r-K's close (before r's first report is sent; K = openRounds), r's reports and
    reveals sent, and the hand-over of r's close to the worker; `final_s` the wait after the loop for the closes
    still queued (the tail)."""

    setup_s: float = 0.0
    per_round_s: list[float] = field(default_factory=list)
    final_s: float = 0.0


@dataclass(frozen=True)
class _SentClose:
    """A RoundClose the worker sent, for the confirming thread (and to send again)."""

    close: RoundClose
    producer: str
    key: str
    tip: int
    tx: object
    scores: dict[str, int]  # each group model's public accuracy, as the rollup scored it (`round_figures`)
    index: int | None = None  # the close's input when a validator holding its own key sent it (nothing to confirm)


def _failed(close: Future) -> bool:
    """A close handed to the worker that already failed: sending it, or confirming it."""
    if not close.done():
        return False
    if close.exception() is not None:
        return True
    confirm = close.result()
    return confirm.done() and confirm.exception() is not None


class RollupRecorder:
    """Records every federated round on the rollup, from each role's own account (a RoundObserver)."""

    POLL_S = 0.1  # seconds between two looks at L1's block number while waiting for a deadline

    def __init__(self, cfg: SimulationConfig, deployment: Deployment, node: NodeClient,
                 terms: TaskTerms = TaskTerms(), say: Say = lambda _: None,
                 silent: SilentValidator | None = None, cheating: CheatingValidator | None = None,
                 remote_validators: Sequence[str] = (), remote_trainers: Sequence[str] = ()) -> None:
        self.cfg, self.deployment, self.node, self.terms, self.say = cfg, deployment, node, terms, say
        self.silent, self.cheating = silent, cheating
        if remote_validators and (silent is not None or cheating is not None):
            raise ConfigError("--silent-validator and --cheating-validator stage a validator in this process: "
                              "they cannot be combined with --validator-address (validators holding their own keys)")
        if remote_validators and len(remote_validators) != cfg.validators:
            raise ConfigError(f"--validator-address: give one address per validator, in group order "
                              f"({cfg.validators}), not {len(remote_validators)}")
        if remote_trainers and len(remote_trainers) != cfg.trainers:
            raise ConfigError(f"--trainer-addresses: give one address per trainer, in trainer order ({cfg.trainers}), "
                              f"not {len(remote_trainers)}")
        if remote_trainers and cheating is not None and cheating.kind == "friend":
            raise ConfigError("--cheating-validator G:friend signs the friend's update with its key, which a trainer "
                              "holding its own key (--trainer-addresses) keeps on its device: use drop or misjudge")
        # remote validators (`fedrollup validator --key-file`) send their own inputs: this process holds no key of
        # theirs (None) and waits for their reports, reveals and closes on the rollup (`remote`)
        self.remote = bool(remote_validators)
        self.desk: DisputeDesk | None = None  # the disputes' side, once the task is open
        self.l1 = L1(deployment.rpc_url, deployment)
        self.manager_key = accounts.private_key(accounts.manager_index())  # shifted in a market run's publisher
        self.validator_keys: list[str | None] = [None] * cfg.validators if self.remote else \
            [accounts.private_key(accounts.validator_index(g)) for g in range(cfg.validators)]
        # remote trainers (`fedrollup trainer --rollup-key-file`) register and contest from their own devices: None
        self.remote_trainers = bool(remote_trainers)
        self.trainer_keys: list[str | None] = [None] * cfg.trainers if self.remote_trainers else \
            [accounts.private_key(accounts.trainer_index(t, cfg.validators)) for t in range(cfg.trainers)]
        self.key_of = {L1.address(k): k for k in [self.manager_key, *self.validator_keys, *self.trainer_keys]
                       if k is not None}
        self.validator_addresses = [a.lower() for a in remote_validators] if self.remote else \
            [L1.address(k) for k in self.validator_keys]
        self.remotes = RemoteValidators(self) if self.remote else None  # waits for their inputs on the rollup
        self.trainer_addresses = [a.lower() for a in remote_trainers] if self.remote_trainers else \
            [L1.address(k) for k in self.trainer_keys]
        self.name_of = {L1.address(self.manager_key): "the publisher",
                        **{a: f"validator {v}" for v, a in enumerate(self.validator_addresses)},
                        **{a.lower(): f"trainer {t}" for t, a in enumerate(self.trainer_addresses)}}
        self.task_id: int | None = None  # the rollup assigns it (TaskCreated)
        self.producer = L1.address(self.manager_key)  # round 1: the publisher, as in the paper
        self.pending: dict[int, list[tuple[str, object]]] = {}  # round -> (what, tx hash) sent, not yet confirmed
        self.timings = ChainTimings()
        self.silent_id: int | None = silent.validator if silent is not None else None  # resolved when elected
        self.withheld: set[int] = set()  # rounds whose report the silent validator withheld
        self.figures: dict[int, dict] = {}  # round -> the rollup's numbers (`round_figures`)
        self.committed: dict[int, dict[int, tuple[bytes, bytes]]] = {}  # round -> validator -> (digest, FRQ1 model)
        self.reveals: dict[int, list] = {}  # round -> the reveals sent, (validator, ModelChunk, tx hash)
        self._worker: ThreadPoolExecutor | None = None  # sends the closes one round at a time, beside the round loop
        self._confirmer: ThreadPoolExecutor | None = None  # confirms the closes sent, in order (`_recorded`)
        self._closes: dict[int, Future] = {}  # round -> its close handed to the worker (a Future of its confirmation)
        self._last_confirm: Future | None = None  # the confirmation of the last close the worker sent
        self._tip: int | None = None  # L1's priority fee, read at the first close (`_close_tip`)
        self.rounds = 0  # the task's rounds (`open_task`)
        self._sender: ThreadPoolExecutor | None = None  # openRounds > 1: sends the reports and reveals, in order
        self._sends: dict[int, list[Future]] = {}  # round -> its reports handed to the sender
        self._disputer: ThreadPoolExecutor | None = None  # openRounds > 1: a round's reveals confirmed, its disputes
        self._disputes: dict[int, Future] = {}  # round -> its reveals and disputes handed to the disputes worker
        self._broken: int | None = None  # the round whose close failed: the worker closes nothing after it
        self._sending = threading.Lock()  # the round loop and the worker both send: one key's nonces stay in order
        self._sent: dict[bytes, tuple[str, bytes, int | None]] = {}  # tx hash -> (key, payload, tip), until mined
        self.starting: dict[int, bytes] = {1: b""}  # round -> its starting model's digest (the manager's previous
        # global; round 1: none to keep as digest 0, its initial model is committed and revealed as such)

    # ------------------------------------------------------------------ plumbing
    def _send(self, key: str, message: Message | None = None, payload: bytes | None = None,
              tip: int | None = None):
        data = payload if payload is not None else message.encode()
        with self._sending:
            tx_hash = self.l1.send_input(key, data, tip=tip)
            self._sent[bytes(tx_hash)] = (key, data, tip)  # to send again if L1 drops it (`_input_index`)
            return tx_hash

    def _input_index(self, tx_hash) -> int:
        """The index of the input `tx_hash` added; an input L1 dropped unexecuted is sent once more."""
        try:
            try:
                return self.l1.input_index(tx_hash)
            except Dropped as err:
                key, data, tip = self._sent.pop(bytes(tx_hash))
                self.say(f"{err}: sending that input again from the same key")
                tx_hash = self._send(key, payload=data, tip=tip)
                return self.l1.input_index(tx_hash)  # once: a second drop is raised
            finally:
                self._sent.pop(bytes(tx_hash), None)  # mined, or given up: its payload is no longer needed
        except Reverted as err:
            raise RollupRejected(str(err)) from None

    def _confirm(self, what: str, tx_hash, timeout: float = 120.0) -> int:
        """Wait until the rollup processed the input sent in `tx_hash`; raise its reason if rejected."""
        return processed(self.node, self._input_index(tx_hash), what, timeout)

    def _confirm_pending(self, round_: int) -> list[int]:
        """Wait for every input of the round sent and not yet confirmed; their input indices."""
        pending = self.pending.pop(round_, [])
        return [self._confirm(what, tx_hash) for what, tx_hash in pending]

    def _notices(self, input_index: int) -> list[Message]:
        return [o.message for o in self.node.notices(input_index=input_index)]

    # ------------------------------------------------------------------ the task
    def _fund_roles(self) -> None:
        poor = fund_accounts(self.l1, [*self.key_of, *(self.validator_addresses if self.remote else []),
                                       *(self.trainer_addresses if self.remote_trainers else [])])
        if poor:
            self.say(f"funded {poor} role accounts with {FUNDING / 10**18:g} ETH each for gas")

    def open_task(self, rounds: int) -> int:
        """Publish, fund and staff the task; returns its id. Blocks until the rollup accepted everything."""
        start = time.perf_counter()
        self._fund_roles()
        self.rounds, contest_blocks = rounds, self._contest_blocks()
        self.terms = replace(self.terms, open_rounds=self._open_rounds(contest_blocks, rounds))
        cfg, t = self.cfg, self.terms
        test_set = rollup_test_set(make_splits(cfg.split_spec()))
        create = CreateTask(mad_bps=round(cfg.mad * 10_000), rounds=rounds,
                            groups=cfg.validators, round_trainer_budget=t.budget(cfg.trainers),
                            reward_per_positive=t.reward_per_positive, validator_reward=t.validator_reward,
                            validators=tuple(a.lower() for a in self.validator_addresses),
                            trainers_per_group=max(Counter(map(cfg.group_of, range(cfg.trainers))).values(),
                                                   default=1),
                            registration_blocks=t.registration_blocks, report_blocks=t.report_blocks,
                            close_blocks=t.close_blocks, test_set_digest=digest(test_set),
                            test_set_size=len(test_set) // record_size(arch_named(cfg.model)),
                            model_arch=arch_named(cfg.model).id,
                            contest_blocks=contest_blocks, **cfg.dp_params().onchain(rounds),
                            initial_model_digest=digest(to_frq1(models.initial_weights(cfg.model, cfg.seed))),
                            validation=VALIDATION_TRUST if cfg.strategy == "trust" else VALIDATION_MAD,
                            payout=PAYOUT_SHAPLEY if cfg.payout == "shapley" else PAYOUT_PER_POSITIVE,
                            open_rounds=t.open_rounds)
        index = self._confirm("CreateTask", self._send(self.manager_key, create))
        created = next(n for n in self._notices(index) if isinstance(n, TaskCreated))
        self.task_id, escrow = created.task_id, created.required_escrow  # the budget, and any broker's fee on top
        self.say(f"manager published task {self.task_id}; it escrows {escrow / 10**18:g} ETH through the EtherPortal")
        deposit = self.l1.send_deposit(self.manager_key, escrow, encode_deposit_data(self.task_id))
        self._confirm("the budget deposit", deposit)
        self._post_test_set(create, test_set)
        self.desk = DisputeDesk(self, test_set, arch_named(cfg.model), create.mad_bps, create.challenges_per_round,
                                RollupRejected)
        self.say(f"{cfg.validators} validators and {cfg.trainers} trainers register for task {self.task_id}"
                 + (" (each validator from its own process and key)" if self.remote else "")
                 + (" (each trainer from its own device and key, in its first round)" if self.remote_trainers else ""))
        sent = [("validator registration", self._send(k, Register(self.task_id, ROLE_VALIDATOR, g)))
                for g, k in enumerate(self.validator_keys) if k is not None]  # remote: each registers itself
        sent += [(f"trainer {t_id}'s registration", self._send(k, Register(self.task_id, ROLE_TRAINER,
                                                                           cfg.group_of(t_id))))
                 for t_id, k in enumerate(self.trainer_keys) if k is not None]
        for what, tx in sent:
            self._confirm(what, tx)
        self.timings.setup_s = time.perf_counter() - start
        return self.task_id

    def _contest_blocks(self) -> int:
        """The terms' contest window, else one wide enough for every trainer of a round to contest (L1's gas bounds
        how many update chunks a block carries: at 100 trainers a round of the MLP, 15 blocks, not 2). A window the
        terms set shorter than that is kept, with a warning: some trainers could not contest."""
        cfg, arch, gas_limit = self.cfg, arch_named(self.cfg.model), self.l1.gas_limit()
        per_round = sum(cfg.sampled(n) for n in Counter(map(cfg.group_of, range(cfg.trainers))).values())
        need = l1_capacity.contest_blocks(arch, per_round, cfg.validators, gas_limit, minimum=RUN_CONTEST_BLOCKS)
        given = self.terms.contest_blocks
        if given is not None and given < need:
            carried = l1_capacity.contests_carried(arch, given, cfg.validators, gas_limit)
            self.say(f"warning: a contest window of {given} L1 blocks carries {carried} of the {per_round} contests a "
                     f"round may need at L1's gas limit of {gas_limit:,}: {need} blocks carry them all")
        elif given is None and need > RUN_CONTEST_BLOCKS:
            self.say(f"each round's contest window lasts {need} L1 blocks: what carries a contest from each of the "
                     f"round's {per_round} trainers at L1's gas limit")
        return need if given is None else given

    def _open_rounds(self, contest_blocks: int, rounds: int) -> int:
        """The terms' openRounds, else as many as keep the training from waiting for L1's blocks (8 at 1-s blocks,
        24 at 12-s ones), at most rounds - 1; and, with a validator going silent when elected from round R, at most
        R - 1: round R's producer is elected at round R - openRounds's close (rounds 1..openRounds have a fixed
        order)."""
        k = self.terms.open_rounds
        if k is None:
            block_time = self.l1.block_time()
            k = l1_capacity.open_rounds(block_time, contest_blocks, rounds, minimum=RUN_OPEN_ROUNDS)
            if k > RUN_OPEN_ROUNDS:
                self.say(f"the task keeps {k} rounds open at once: L1's {block_time:g}-s blocks make a round's close "
                         f"land ~{(contest_blocks + l1_capacity.CLOSE_LAG_BLOCKS) * block_time:.0f} s after its "
                         f"reports")
        silent = self.silent
        if silent is not None and silent.validator is None and silent.from_round <= k:
            self.say(f"--silent-validator {ELECTED} from round {silent.from_round}: the task keeps "
                     f"{silent.from_round - 1} round(s) open at once, so that a close elects round "
                     f"{silent.from_round}'s producer")
            k = silent.from_round - 1
        return k

    def _post_test_set(self, create: CreateTask, test_set: bytes) -> None:
        chunks = public_set_chunks(self.task_id, test_set)
        self.say(f"the publisher posts the public test set ({create.test_set_size} images, {len(test_set):,} bytes, "
                 f"{len(chunks)} inputs) that every model is scored on")
        sent = [(f"test set chunk {c.index}", self._send(self.manager_key, c)) for c in chunks]
        indices = [self._confirm(what, tx) for what, tx in sent]
        if not any(isinstance(n, TestSetPosted) for n in self._notices(indices[-1])):
            raise RollupRejected(f"the rollup did not accept task {self.task_id}'s public test set (no TestSetPosted "
                                 f"notice after its last chunk)")

    # ------------------------------------------------------------------ RollupLink
    def signing_task(self) -> RollupTask:
        """The task every trainer signs its updates for (known once `open_task` has run)."""
        if self.task_id is None:
            raise RollupRejected("the rollup task is not open yet: call open_task first")
        return RollupTask(self.task_id, Domain(self.deployment.chain_id, self.deployment.application),
                          self.terms.open_rounds, tuple(self.trainer_addresses) if self.remote_trainers else ())

    def averaged(self, server_round: int, validators) -> list[int]:
        """The validators whose models the rollup averages: those that reveal (a silent one does not)."""
        self._await_close(upto=self._needs_closed(server_round), next_round=server_round)
        return [v for v in validators if not self._is_silent(server_round, v)]

    def _needs_closed(self, round_: int) -> int:
        """The last round whose close round ``round_``'s inputs wait for: round - openRounds, which the rollup
        requires; and the round whose close elects the first silent one's producer while `--silent-validator elected`
        is not resolved (who goes silent is that producer: the one thing here that needs the election)."""
        upto = round_ - self.terms.open_rounds
        if self.silent is not None and self.silent_id is None and round_ >= self.silent.from_round:
            upto = max(upto, self.silent.from_round - self.terms.open_rounds)
        return upto

    def round_figures(self, server_round: int) -> dict | None:
        """The rollup's numbers for a closed round (for metrics.json): each revealed model's public accuracy, the
        global model's digest and accuracy, the close's input, penalties. Waits for that round's close if it is
        still with the worker."""
        if server_round in self._closes:
            self._await_close(upto=server_round)
        return self.figures.get(server_round)

    def finish(self) -> None:
        """The end of the run's rounds: wait for every close handed to the worker (the first error is raised here);
        call it before the audit and `withdraw_refund`."""
        start = time.perf_counter()
        try:
            self._await_close()
        finally:
            self.timings.final_s += time.perf_counter() - start
            for pool in (self._worker, self._confirmer, self._sender, self._disputer):
                if pool is not None:
                    pool.shutdown()
            self._worker = self._confirmer = self._sender = self._disputer = None

    # ------------------------------------------------------------------ RoundObserver
    def _is_silent(self, round_: int, validator: int) -> bool:
        return self.silent is not None and round_ >= self.silent.from_round and self.silent_id == validator

    def _silent_addresses(self, round_: int) -> frozenset[str]:
        if self.silent is None:
            return frozenset()
        return frozenset(a for v, a in enumerate(self.validator_addresses) if self._is_silent(round_, v))

    def who(self, address: str) -> str:
        """An address in a researcher's words: "the publisher", "validator 1", "trainer 3", or the address."""
        return self.name_of.get(address.lower(), address)

    def on_validator_report(self, report: RoundReport) -> None:
        """Send the validator's report now (a silent validator withholds it); the rollup's answer is awaited
        when the round closes. Nothing of round r is sent before round r - openRounds's close is confirmed."""
        start = time.perf_counter()
        try:
            self._await_close(upto=self._needs_closed(report.round), next_round=report.round)
            self._raise_failed_send()
        finally:
            self._blocked(report.round, time.perf_counter() - start)
        start = time.perf_counter()
        if self.terms.open_rounds == 1:
            self._send_report(report)
        else:  # the sender thread sends it (web3 builds, signs and sends each input): the round loop goes on
            if self._sender is None:
                self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollup-send")
            self._sends.setdefault(report.round, []).append(self._sender.submit(self._send_report, report))
        self._blocked(report.round, time.perf_counter() - start)

    def _raise_failed_send(self) -> None:
        """A report that could not be sent stops the run at the round loop's next call, with its reason."""
        for sends in self._sends.values():
            for send in sends:
                if send.done() and send.exception() is not None:
                    send.result()

    def _send_report(self, report: RoundReport) -> None:
        """Send a validator's report (its parts), and once every group reported, the reveals."""
        if self._is_silent(report.round, report.validator_id):
            self.withheld.add(report.round)
            self.say(f"validator {report.validator_id} is silent from round {self.silent.from_round}: it "
                     f"withholds its report of round {report.round} from the rollup (its Flower server keeps "
                     f"training)")
            return
        trainers = [a.lower() for a in self.trainer_addresses]
        honest, lie = report, None
        if self.cheating is not None:
            report, lie = self.cheating.lie(report, self.signing_task(), self.cfg.validators, self.cfg.seed)
        if lie is not None:
            self.say(str(lie))
        kept = self.terms.open_rounds > 1 and report.model_digest == self.starting.get(report.round)
        if kept:  # it accepted nothing: "I keep the round's starting model", which the rollup has (nothing to reveal)
            report = replace(report, model_digest=KEEP_DIGEST)
            self.say(f"validator {report.validator_id} accepted nothing in round {report.round}: it keeps the round's "
                     f"starting model and commits digest 0 (nothing to reveal)")
        try:
            messages = report_inputs(self.task_id, report, trainers)
        except ValueError as err:  # an unsigned entry: the rollup would reject the whole report
            raise RollupRejected(f"validator {report.validator_id} cannot report round {report.round}: {err}") \
                from None
        key, what = self.validator_keys[report.validator_id], f"validator {report.validator_id}'s report"
        tx = None
        if key is None:  # a remote validator sends its own report (`validator_agent`): the rollup will show it
            messages = []
        if len(messages) > 1:
            self.say(f"validator {report.validator_id}'s report of round {report.round} "
                     f"({len(report.contributions):,} trainers) goes in {len(messages)} parts")
        for i, message in enumerate(messages):  # one key, nonces in order: the last part sent completes the report
            tx = self._send(key, message)
            part = f" (part {i + 1} of {len(messages)})" if len(messages) > 1 else ""
            self.pending.setdefault(report.round, []).append((f"{what} of round {report.round}{part}", tx))
        if self.desk is not None:  # the report's ContributionClassified notices come with its last input
            self.desk.reported(honest, report, tx)
        committed = self.committed.setdefault(report.round, {})
        committed[report.validator_id] = (report.model_digest, b"" if kept else report.model)
        if len(committed) == self.cfg.validators:  # every group reported: the reveals are open from the last report
            self.reveals[report.round] = self._send_reveals(report.round)
            if self.terms.open_rounds > 1:  # the round's disputes go out now, not once the earlier rounds closed
                if self._disputer is None:
                    self._disputer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollup-disputes")
                self._disputes[report.round] = self._disputer.submit(self._reveal_and_dispute, report.round)

    def on_round_closed(self, record: RoundRecord) -> None:
        """Hand the round's close to the worker and return: the round loop trains the next round meanwhile (the
        worker closes the rounds in order, one after the other)."""
        start = time.perf_counter()
        self.starting[record.round + 1] = record.global_digest
        # one round open at a time: a round closed without a report waits for its predecessor's close first
        self._await_close(upto=record.round - self.terms.open_rounds, next_round=record.round)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollup-close")
        self._closes[record.round] = self._worker.submit(self._close_in_turn, record)
        self._blocked(record.round, time.perf_counter() - start)

    def _await_close(self, upto: int | None = None, next_round: int | None = None) -> None:
        """Wait for the closes handed to the worker up to round ``upto`` (None: all), in order, and raise the first
        error here (the rollup's one-line reason), also of a later close that already failed; ``next_round``: the
        round whose input waits (its training, if done, is wasted)."""
        for round_ in sorted(self._closes):
            close = self._closes[round_]
            if upto is not None and round_ > upto and not _failed(close):
                continue
            del self._closes[round_]
            try:
                close.result().result()  # sent, then confirmed
            except Exception:  # the worker's error, raised here as it is (the rollup's one-line reason)
                if next_round is not None and next_round > round_:
                    self.say(f"round {round_}'s close failed: the run stops before round {next_round} sends anything "
                             f"to the rollup (round {next_round}'s training, done meanwhile, is wasted)")
                raise

    def _close_in_turn(self, record: RoundRecord) -> Future:
        """The worker's job: send the round's close once its window passed, unless an earlier close failed (the rollup
        closes rounds in order); its confirmation goes to the confirming thread (returned), so that the next round's
        close, whose producer is known in advance, goes out without waiting for this one to be mined."""
        if self._broken is not None:
            raise RollupRejected(f"round {record.round} is not closed: round {self._broken}'s close failed")
        try:
            for send in self._sends.pop(record.round, []):  # the round's reports and reveals are sent first
                send.result()
            sent = self._send_close(record)
        except Exception:
            self._broken = record.round
            raise
        if self._confirmer is None:
            self._confirmer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollup-confirm")
        self._last_confirm = self._confirmer.submit(self._recorded, record, sent)
        return self._last_confirm

    def _send_close(self, record: RoundRecord) -> _SentClose:
        """Each validator that reported reveals its model (confirmed), the disputes are filed; once the contest window
        has passed, the producer whose turn it is sends the round's close (not awaited)."""
        silent = self._silent_addresses(record.round)
        disputes = self._disputes.pop(record.round, None)
        scores = disputes.result() if disputes is not None else self._reveal_and_dispute(record.round)
        close = RoundClose(task_id=self.task_id, round=record.round)
        if self.remotes is not None and (index := self.remotes.close(close.round)) is not None:
            return _SentClose(close, "", "", 0, None, scores, index)  # a validator closed it from its own key
        schedule, plan = self._plan(record.round, silent)
        self._say_plan(close.round, schedule, plan)
        self.wait_for_block(plan.first_block - 1)  # an input sent after block B lands in B + 1 or later
        key, tip = self.key_of[plan.producer], self._close_tip(close.round)
        return _SentClose(close, plan.producer, key, tip, self._send(key, close, tip=tip), scores)

    def _plan(self, round_: int, silent: frozenset[str]) -> tuple[Schedule, ClosePlan]:
        """Who of this run closes the round, and from which block: the first producer in turn that is not silent, once
        the contest window (and the close deadlines of the turns before it) passed. Raises when nobody is left."""
        schedule = self._schedule(round_)
        plan = plan_close(schedule, self.l1.block_number(), silent, frozenset(self.key_of))
        if (plan is None or plan.turn > 0) and self._previous_pending():
            # the turns after the elected one count from the previous close, not mined yet: wait for it, then look
            self._last_confirm.result()
            schedule = self._schedule(round_)
            plan = plan_close(schedule, self.l1.block_number(), silent, frozenset(self.key_of))
        if plan is None:
            raise RollupRejected(f"no producer this run may use is left to close round {round_} of task "
                                 f"{self.task_id} (turns: {', '.join(self.who(t.producer) for t in schedule.turns)})")
        return schedule, plan

    def _previous_pending(self) -> bool:
        return self._last_confirm is not None and not self._last_confirm.done()

    def _close_tip(self, round_: int) -> int:
        """A close's priority fee: one wei less per later round, so that closes from different producers mined in one
        block go in round order (L1 orders a block by fee)."""
        if self._tip is None:
            self._tip = self.l1.priority_fee
        return self._tip + max(0, self.rounds - round_)

    def _recorded(self, record: RoundRecord, sent: _SentClose) -> None:
        """The confirming thread's job: the close mined and accepted (sent again once if it landed before the previous
        round's), the rollup's global model checked against the manager's, the election said."""
        try:
            if self._broken is not None and self._broken < record.round:  # its close, if mined, was refused
                raise RollupRejected(f"round {record.round} is not recorded: round {self._broken}'s close failed")
            index = self._confirm_close(sent)
            notices = self._notices(index)
            self._tell_late(notices)
            if self.desk is not None:
                self.desk.tell(notices)
            self.figures[record.round] = {"close_input": index, "models_bps": sent.scores,
                                          **self._check_global(record, notices)}
        except Exception:
            self._broken = record.round
            raise
        elected = [n for n in notices if isinstance(n, ProducerElected)]
        if elected:
            self.producer = elected[0].producer.lower()
            self.say(f"round {record.round} recorded on the rollup (input {index}); "
                     f"the rollup elected {self.who(elected[0].producer)} ({elected[0].producer[:10]}…) to close "
                     f"round {elected[0].round}")
            self._resolve_elected(elected[0])
        elif record.round == self.rounds:
            self.say(f"round {record.round} recorded on the rollup (input {index}); task {self.task_id} finished")
        else:
            self.say(f"round {record.round} recorded on the rollup (input {index})")

    def _confirm_close(self, sent: _SentClose) -> int:
        if sent.index is not None:  # a validator holding its own key closed the round: its input is processed
            return sent.index
        what = f"the RoundClose of round {sent.close.round} by {self.who(sent.producer)}"
        try:
            return self._confirm(what, sent.tx)
        except RollupRejected as err:
            if "not closed yet" not in str(err):
                raise
            self.say(f"{what} was mined before round {sent.close.round - 1}'s close, which is now confirmed: "
                     f"sent again")
            return self._confirm(what, self._send(sent.key, sent.close, tip=sent.tip))

    def _reveal_and_dispute(self, round_: int) -> dict[str, int]:
        """The round's reveals confirmed, then its disputes filed (each model's public accuracy, as the rollup scored
        it). With rounds open at once the disputes worker does it as soon as the reveals are sent: a round's contest
        window runs from its last report, and filing only once the earlier rounds closed made a 1,000-trainer run's
        contests of rounds 2 and 3 late."""
        scores = self._reveal(round_)
        if self.desk is not None:
            self.desk.file(round_, scores)
        return scores

    def _send_reveals(self, round_: int) -> list:
        """Each validator that reported sends its model's chunks from its own key, with a lower priority fee than
        the reports (in a shared block they follow the reports, and the reveal is open)."""
        tip, sent, revealed = max(1, self.l1.priority_fee // 2), [], set()
        for v, (model_digest, model) in sorted(self.committed.pop(round_).items()):
            if model_digest == KEEP_DIGEST:  # kept the round's starting model: the rollup has it
                continue
            if model_digest in revealed:  # validators that accepted nothing all keep the round's starting model
                self.say(f"validator {v} kept the same model as another group (the round's starting model): one "
                         f"reveal serves both")
                continue
            revealed.add(model_digest)
            if self.validator_keys[v] is None:  # it reveals from its own key: `_reveal` waits for its ModelScored
                sent.append((v, None, None))
                continue
            chunks = model_chunks(self.task_id, round_, model_digest, model)
            self.say(f"validator {v} reveals its model of round {round_} ({len(model):,} bytes, {len(chunks)} "
                     f"input{'s' if len(chunks) > 1 else ''})")
            sent += [(v, c, self._send(self.validator_keys[v], c, tip=tip)) for c in chunks]
        return sent

    def _reveal(self, round_: int) -> dict[str, int]:
        """The reveals of the round confirmed (sent with the last report when every group reported; else now, once
        the report deadline has passed); each group's public accuracy as the rollup scored it."""
        sent = self.reveals.pop(round_, None)
        if sent is None:
            self._confirm_pending(round_)
            deadline = self._schedule(round_).report_deadline
            self.say(f"reveals of round {round_} open after the report deadline at block {deadline} (a group did "
                     f"not report)")
            self.wait_for_block(deadline)
            sent = self._send_reveals(round_) if round_ in self.committed else []
        reports = self._confirm_pending(round_)
        scores: dict[str, int] = {}
        for v, chunk, tx in sent:
            if chunk is None:
                notices = self.remotes.reveal(v, round_)
            else:
                what = f"validator {v}'s model chunk {chunk.index} of round {round_}"
                if self._input_index(tx) < max(reports, default=-1):  # before a report: the reveal was not open
                    tx = self._send(self.validator_keys[v], chunk)
                notices = self._notices(self._confirm(what, tx))
            for n in notices:
                if isinstance(n, ModelScored):
                    scores[str(n.group)] = n.accuracy_bps
                    self.say(f"the rollup scored group {n.group}'s model of round {round_} at "
                             f"{n.accuracy_bps / 100:.2f}% on the public test set")
        return scores

    def _check_global(self, record: RoundRecord, notices: list[Message]) -> dict:
        """The rollup's GlobalModel against the manager's own global: the same digest, or the run stops."""
        found = [n for n in notices if isinstance(n, GlobalModel)]
        if not found:
            if self.averaged(record.round, range(self.cfg.validators)):
                raise RollupRejected(f"the rollup emitted no global model for round {record.round}, although "
                                     f"validators revealed theirs")
            return {}
        rollup = found[0]
        if rollup.digest != record.global_digest:
            raise RollupRejected(f"the rollup's global model of round {record.round} (groups "
                                 f"{', '.join(map(str, rollup.groups))}) has digest {rollup.digest.hex()[:16]}…, "
                                 f"the manager's {record.global_digest.hex()[:16]}…: the FL plane and the rollup "
                                 f"disagree on the next round's model")
        self.say(f"the rollup's global model of round {record.round} is the manager's, bit for bit "
                 f"({rollup.digest.hex()[:10]}…, the mean of group{'s' if len(rollup.groups) > 1 else ''} "
                 f"{', '.join(map(str, rollup.groups))}): {rollup.accuracy_bps / 100:.2f}% on the public test set")
        return {"global_digest": rollup.digest.hex(), "global_accuracy_bps": rollup.accuracy_bps,
                "groups": list(rollup.groups)}

    def _schedule(self, round_: int) -> Schedule:
        """Open round ``round_``'s schedule as the rollup's inspect answers it at L1's latest block; a later round's
        deadlines may wait for the previous round's reporting or close: then once the previous close is confirmed."""
        answers = self._inspect_schedule(round_)
        if answers[0].get("contest_deadline") is None and self._previous_pending():
            self._last_confirm.result()
            answers = self._inspect_schedule(round_)
        try:
            return Schedule.from_inspect(*answers)
        except (ValueError, TypeError) as err:  # the task ended without this run (someone else closed or cancelled it)
            raise RollupRejected(str(err)) from None

    def _inspect_schedule(self, round_: int) -> list[dict]:
        block = self.l1.block_number()
        answers = [self.node.inspect(path.encode()) for path in (
            f"producer/{self.task_id}?round={round_}&block={block}", f"task/{self.task_id}")]
        for answer in answers:
            if answer.status != "Accepted" or not answer.reports:
                raise RollupRejected(f"the rollup's inspect of task {self.task_id} answered {answer.status}")
        return [json.loads(a.reports[0]) for a in answers]

    def _say_plan(self, round_: int, schedule: Schedule, plan: ClosePlan) -> None:
        for turn, why in zip(plan.passed_over, plan.passed_why):
            self.say(f"{self.who(turn.producer)}, whose turn it is to close round {round_}, {why}")
        if plan.turn == 0 and schedule.disputes_pending:
            self.say(f"{self.who(plan.producer)} closes round {round_} once its response window ends at block "
                     f"{plan.first_block - 1}: {schedule.disputes_pending} disputed update(s) are still missing")
        elif plan.turn == 0:
            self.say(f"{self.who(plan.producer)} closes round {round_} once its contest window ends at block "
                     f"{schedule.contest_deadline}")
        else:
            self.say(f"{self.who(plan.producer)} closes round {round_} from block {plan.first_block} (its turn "
                     f"lasts until block {schedule.turns[plan.turn].until_block})")

    def wait_for_block(self, block: int, stall_s: float = 60.0) -> int:
        """Block until L1's latest block is at least ``block``; returns it. Raises when L1 mines no block for
        ``stall_s`` seconds (a dev chain without interval mining would wait for ever)."""
        latest, moved = self.l1.block_number(), time.monotonic()
        while latest < block:
            time.sleep(self.POLL_S)
            now = self.l1.block_number()
            if now != latest:
                latest, moved = now, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise RollupRejected(f"L1 mined no block for {stall_s:.0f} s at block {latest} while the run waits "
                                     f"for block {block}")
        return latest

    def _tell_late(self, notices: list[Message]) -> None:
        """The close's GroupSkipped, ProducerMissed and ValidatorPenalized notices, in words (a validator's penalties
        for one reason in one line: 100 upheld contests are one fact to a researcher, not 100)."""
        for n in notices:
            if isinstance(n, GroupSkipped):
                self.say(f"{self.who(n.validator)} is silent: group {n.group} skipped in round {n.round} after the "
                         f"report deadline at block {n.report_deadline} (nothing paid for it)")
            elif isinstance(n, ProducerMissed):
                self.say(f"{self.who(n.producer)} missed its close deadline at block {n.close_deadline}: "
                         f"{self.who(n.next_producer)} closes round {n.round}")
        penalties: dict[tuple[str, int, int], list[ValidatorPenalized]] = {}  # one line per validator and reason
        for n in notices:
            if isinstance(n, ValidatorPenalized):
                penalties.setdefault((n.validator, n.round, n.reason), []).append(n)
        for (validator, round_, reason), cuts in penalties.items():
            times = f", {len(cuts)} times" if len(cuts) > 1 else ""
            self.say(f"the rollup penalised {self.who(validator)} in round {round_} "
                     f"({PENALTY_NAMES.get(reason, reason)}{times}): stake cut by "
                     f"{format_wei(sum(c.stake_cut for c in cuts))} to {format_wei(cuts[-1].stake)}")

    def _resolve_elected(self, elected: ProducerElected) -> None:
        """--silent-validator elected: the validator elected to close the first silent round goes silent."""
        if self.silent is None or self.silent_id is not None or elected.round != self.silent.from_round:
            return
        producer = elected.producer.lower()
        if producer in self.validator_addresses:
            self.silent_id = self.validator_addresses.index(producer)
            self.say(f"validator {self.silent_id}, elected to close round {elected.round}, goes silent from that "
                     f"round on")
            return
        self.say(f"the rollup elected {self.who(elected.producer)} to close round {elected.round}, not a "
                 f"validator: no validator goes silent")

    # ------------------------------------------------------------------ the end
    def withdraw_refund(self) -> int:
        """The publisher withdraws its balance on the rollup (what TaskFinished or a deposit credited it): a
        Withdraw input, answered with a voucher paid on L1 once its epoch's claim is accepted. Returns the
        wei withdrawn (0: nothing to withdraw, no input sent)."""
        self.finish()  # the last round's close first (a no-op once the run called it)
        publisher = L1.address(self.manager_key)
        answer = self.node.inspect(f"balance/{publisher}".encode())
        balance = int(json.loads(answer.reports[0])["balance_wei"]) if answer.reports else 0
        if balance == 0:
            self.say("the publisher has nothing to withdraw: the task spent its whole escrow")
            return 0
        index = self._confirm("the publisher's Withdraw", self._send(self.manager_key, Withdraw()))
        self.say(f"the publisher withdraws its refund of {format_wei(balance)} (input {index}): the rollup "
                 f"emitted a voucher, paid on L1 once its epoch's claim is accepted")
        return balance

    def _blocked(self, round_: int, seconds: float) -> None:
        while len(self.timings.per_round_s) < round_:
            self.timings.per_round_s.append(0.0)
        self.timings.per_round_s[round_ - 1] += seconds
