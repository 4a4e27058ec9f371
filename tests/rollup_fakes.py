"""A stand-in for L1 and the node that runs the rollup's own rules (`dapp.state.apply`, the inspect routes) on a
clock that moves one block per input and one per look at the block number (a chain that mines while a run
waits), and the real `RollupRecorder` wired to it. Unit tests only: the recorder runs against anvil and the
node in tests/test_e2e_demo.py."""
from __future__ import annotations

import json
import threading
from types import SimpleNamespace

from dapp.inspect_routes import InspectError, answer
from dapp.portal import encode_ether_deposit
from dapp.schema import MessageDecodeError, decode_input
from dapp.state import Notice, Rejected, Voucher
from dapp_fixtures import DOMAIN, PORTAL, Chain
from flower_sim import rollup_roles
from flower_sim.cheating import CheatingValidator
from flower_sim.config import SimulationConfig
from flower_sim.rollup_roles import RUN_OPEN_ROUNDS, RollupRecorder, TaskTerms
from flower_sim.rollup_schedule import SilentValidator
from rollups_client.l1 import L1
from rollups_client.node import InspectAnswer
from rollups_client.outputs import RollupOutput, decode_output
from rollups_node.outputs import encode_notice, encode_voucher


class FakeRollup:
    """L1 and the node in one: each input is applied by the rollup's rules at the current block; the block
    moves one per input and one per look at the block number (a chain that mines while the run waits)."""

    def __init__(self) -> None:
        self.chain = Chain()
        self.statuses: dict[int, str] = {}
        self.reasons: dict[int, bytes] = {}
        self.outputs: dict[int, tuple] = {}
        self.blocks_of: dict[int, int] = {}
        self.priority_fee = 2
        self.seconds_per_block = 1.0  # what `block_time` answers (anvil at 1-s blocks; 12.0: a public chain)
        # ("sent" | "confirmed", message type name, round) in the order the recorder's threads did them
        self.events: list[tuple[str, str, int | None]] = []
        self.kinds: dict[int, tuple[str, int | None]] = {}  # input index -> (message type name, round)
        self.senders: dict[int, str] = {}  # input index -> who sent it (L1's msg.sender)
        self.lock = threading.Lock()  # the recorder's worker and the round loop may both call (one at a time)

    # L1
    def balance(self, address: str) -> int:
        return 10**18

    def send_input(self, key: str, payload: bytes, tip: int | None = None) -> int:
        return self._apply(L1.address(key), payload)

    def send_deposit(self, key: str, value: int, data: bytes) -> int:
        return self._apply(PORTAL, encode_ether_deposit(L1.address(key), value, data))

    def _apply(self, sender: str, payload: bytes) -> int:
        with self.lock:
            self.kinds[self.chain.index] = ("deposit", None) if sender == PORTAL else self.kind_of(payload)
            self.events.append(("sent", *self.kinds[self.chain.index]))
            self.senders[self.chain.index] = sender
            return self._apply_now(sender, payload)

    @staticmethod
    def kind_of(payload: bytes) -> tuple[str, int | None]:
        """An input's message type and round (None: not a round's input)."""
        try:
            message = decode_input(payload)
        except MessageDecodeError:
            return "undecodable", None
        return type(message).__name__, getattr(message, "round", None)

    def _apply_now(self, sender: str, payload: bytes) -> int:
        index, block = self.chain.index, self.chain.block
        self.blocks_of[index] = block
        try:
            self.outputs[index] = self.chain.send(sender, payload).outputs
            self.statuses[index] = "ACCEPTED"
        except Rejected as err:
            self.statuses[index], self.reasons[index] = "REJECTED", err.reason.encode()
        return index

    def input_index(self, tx_hash: int) -> int:
        return tx_hash

    def gas_limit(self) -> int:
        return 30_000_000  # anvil's default

    def block_time(self) -> float:
        return self.seconds_per_block  # a block per look at the block number: what the runs' deadlines last

    def block_number(self) -> int:
        with self.lock:
            self.chain.mine(1)
            return self.chain.block - 1

    # the node
    def input_status(self, index: int) -> str:
        status = self.statuses.get(index, "NONE")
        if status != "NONE":
            self.confirmed(index)
        return status

    def confirmed(self, index: int) -> None:
        """The recorder learns input `index`'s fate (a hook for tests that hold a close's confirmation)."""
        self.events.append(("confirmed", *self.kinds[index]))

    def reports(self, input_index: int) -> list:
        return [SimpleNamespace(raw_data=self.reasons[input_index])]

    def notices(self, input_index: int) -> list:
        return [SimpleNamespace(message=o.message) for o in self.outputs.get(input_index, ()) if isinstance(o, Notice)]

    def input_count(self) -> int:
        return self.processed_input_count()

    def processed_input_count(self) -> int:
        with self.lock:  # an input is applied as it is sent, its outputs stored with it (as the node does, atomically)
            return self.chain.index

    def inspect(self, payload: bytes) -> InspectAnswer:
        try:
            body = json.dumps(answer(self.chain.state, payload.decode())).encode()
        except InspectError as err:
            return InspectAnswer("Rejected", [str(err).encode()], None, None, {})
        return InspectAnswer("Accepted", [body], None, None, {})

    def of_input(self, index: int, kind: type) -> list:
        return [o.message for o in self.outputs.get(index, ()) if isinstance(o, Notice) and isinstance(o.message, kind)]

    def all(self, kind: type) -> list:
        return [n for i in sorted(self.outputs) for n in self.of_input(i, kind)]


    def decoded(self) -> list[RollupOutput]:
        """Every output as the node's reader gives it (indices in emission order)."""
        outs, n = [], 0
        for i in sorted(self.outputs):
            for o in self.outputs[i]:
                raw = encode_notice(o.payload) if isinstance(o, Notice) else \
                    encode_voucher(o.destination, o.value, o.payload) if isinstance(o, Voucher) else None
                if raw is not None:
                    outs.append(decode_output(raw, index=n, input_index=i))
                    n += 1
        return outs


class RefusesClose(FakeRollup):
    """A node that reports round 1's RoundClose rejected."""

    def input_status(self, index: int) -> str:
        if self.kinds.get(index) == ("RoundClose", 1):
            self.reasons[index] = b"round 1 cannot be closed"
            return "REJECTED"
        return super().input_status(index)


CFG = SimulationConfig(trainers=4, validators=2, rounds=3, model="logreg")
# 8 rounds open (the runs' least, here every round of CFG): the worker looks at the block number (a block each, here)
# while the round loop sends the next rounds' reports and reveals: their report and contest windows must outlast those
# looks. (A run's default sizes openRounds at most rounds - 1: tests/test_fl_open_rounds_sizing.py.)
TERMS = TaskTerms(registration_blocks=50, report_blocks=60, close_blocks=4, contest_blocks=20,
                  open_rounds=RUN_OPEN_ROUNDS)


def recorder_on(rollup: FakeRollup, monkeypatch, silent: SilentValidator | None, terms: TaskTerms = TERMS,
                cheating: CheatingValidator | None = None, cfg: SimulationConfig = CFG,
                remote_validators: tuple[str, ...] = (), remote_trainers: tuple[str, ...] = ()
                ) -> tuple[RollupRecorder, list]:
    monkeypatch.setattr(rollup_roles, "L1", type("FakeL1", (L1,), {"__new__": lambda cls, *a: rollup}))
    said: list[str] = []
    deployment = SimpleNamespace(rpc_url="fake", chain_id=DOMAIN.chain_id, application=DOMAIN.verifying_contract)
    recorder = RollupRecorder(cfg, deployment, rollup, terms=terms, say=said.append, silent=silent,
                              cheating=cheating, remote_validators=remote_validators,
                              remote_trainers=remote_trainers)
    recorder._fund_roles = lambda: None
    recorder.POLL_S = 0
    return recorder, said
