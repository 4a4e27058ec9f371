"""Helpers for the dapp tests: named addresses, a tiny 'chain' that feeds the state machine, task setup."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Iterable

from dapp.portal import CANONICAL_ETHER_PORTAL, decode_ether_deposit, encode_ether_deposit
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, Message, Register, RoundClose,
                         ValidatorReport, encode_deposit_data, normalize_address, pack_contribution)
from dapp.state import Accepted, Advance, Notice, Rejected, State, Voucher, apply
from rollups_node.rollup_http import refusal
from rollups_node.rollup_http_schema import REQUEST_BODIES

PORTAL = normalize_address(CANONICAL_ETHER_PORTAL)
ETH = 10**18
MILLI = 10**15


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


PUBLISHER = addr(0xA11CE)
STRANGER = addr(0xBAD)


def validator(group: int) -> str:
    return addr(0x7A110 + group)


def trainer(group: int, i: int) -> str:
    return addr(0x100 * (group + 1) + i)


@dataclass
class Chain:
    """Feeds inputs to `apply` in order, like the rollup does, and keeps every accepted output."""

    state: State = field(default_factory=State)
    index: int = 0
    notices: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    timestamp: int = 1_700_000_000
    prev_randao: bytes = bytes(32)
    block: int = 10  # the L1 block of the next input; every input moves one block on
    deposited: int = 0  # wei sent through the EtherPortal so far
    vouchered: int = 0  # wei paid out by the vouchers emitted so far
    audit: bool = False  # check after every input that no wei was created or lost

    def mine(self, blocks: int) -> None:
        """Let ``blocks`` L1 blocks pass without an input (the deadlines' clock)."""
        self.block += blocks

    def mine_to(self, block: int) -> None:
        """Let L1 blocks pass so that the next input lands in ``block``."""
        assert block >= self.block, f"block {block} is in the past (next input: block {self.block})"
        self.block = block

    def advance(self, sender: str, payload: bytes | Message) -> Advance:
        if isinstance(payload, Message):
            payload = payload.encode()
        adv = Advance(msg_sender=sender, payload=payload, input_index=self.index,
                      block_number=self.block, block_timestamp=self.timestamp + 12 * (self.block - 10),
                      prev_randao=self.prev_randao)
        self.index += 1
        self.block += 1
        return adv

    def send(self, sender: str, payload: bytes | Message) -> Accepted:
        advance = self.advance(sender, payload)
        result = apply(self.state, advance, PORTAL)
        self.state = result.state
        self.outputs.extend(result.outputs)
        self.notices.extend(o.message for o in result.outputs if isinstance(o, Notice))
        if sender == PORTAL:
            self.deposited += decode_ether_deposit(advance.payload).value
        self.vouchered += sum(o.value for o in result.outputs if isinstance(o, Voucher))
        if self.audit:
            assert self.wei_held() == self.deposited, f"wei created or lost by {result.summary}"
        return result

    def reject(self, sender: str, payload: bytes | Message) -> str:
        """Send an input that must be rejected; assert the state is untouched and return the reason."""
        before = copy.deepcopy(self.state)
        try:
            apply(self.state, self.advance(sender, payload), PORTAL)
        except Rejected as err:
            assert self.state == before, "a rejected input changed the state"
            return err.reason
        raise AssertionError("input was accepted but should have been rejected")

    def deposit(self, sender: str, value: int, data: bytes = b"") -> Accepted:
        return self.send(PORTAL, encode_ether_deposit(sender, value, data))

    def wei_held(self) -> int:
        """Wei the rollup accounts for: every balance, every escrow and every voucher it emitted."""
        state = self.state
        return sum(state.balances.values()) + sum(t.escrow for t in state.tasks.values()) + self.vouchered

    def of_type(self, cls: type) -> list:
        return [n for n in self.notices if isinstance(n, cls)]


def task_message(mad_bps: int = 2500, rounds: int = 3, groups: int = 2,
                 budget: int = 10 * MILLI, per_positive: int = 2 * MILLI, validator_reward: int = 1 * MILLI,
                 **terms) -> CreateTask:
    """A CreateTask (CreateTask's argument order) naming `validator(g)` for each group; other terms keep
    CreateTask's keyword defaults unless given."""
    return CreateTask(mad_bps, rounds, groups, budget, per_positive, validator_reward,
                      **{"validators": tuple(validator(g) for g in range(groups)), **terms})


def create_task(chain: Chain, task_id: int = 1, groups: int = 2, rounds: int = 3, mad_bps: int = 2500,
                budget: int = 10 * MILLI, per_positive: int = 2 * MILLI, validator_reward: int = 1 * MILLI,
                trainers_per_group: int = 3, fund: bool = True, seats: Iterable[int] | None = None,
                **terms) -> None:
    """Publish, fund (exactly the required escrow) and register N trainers per group and the named validator
    of every group in ``seats`` (default: all). ``task_id`` is the id the rollup is expected to assign."""
    created = chain.send(PUBLISHER, task_message(mad_bps, rounds, groups, budget, per_positive, validator_reward,
                                                 **terms))
    assert created.outputs[0].message.task_id == task_id, "the rollup assigned another task id"
    if fund:
        chain.deposit(PUBLISHER, rounds * (budget + validator_reward), encode_deposit_data(task_id))
    for g in range(groups):
        if seats is None or g in seats:
            chain.send(validator(g), Register(task_id, ROLE_VALIDATOR, g))
        for i in range(trainers_per_group):
            chain.send(trainer(g, i), Register(task_id, ROLE_TRAINER, g))


def report(task_id: int, round_: int, validator_bps: int, scores: dict[str, int],
           samples: int = 600) -> ValidatorReport:
    words = tuple(pack_contribution(t, bps, samples) for t, bps in scores.items())
    return ValidatorReport(task_id, round_, validator_bps, bytes([round_]) * 32, words)


def close(task_id: int, round_: int, global_bps: int, group_bps: list[int]) -> RoundClose:
    return RoundClose(task_id, round_, bytes([0xC0 + round_]) * 32, global_bps, tuple(group_bps))


def play_round(chain: Chain, task_id: int, round_: int, producer: str, groups: int = 2,
               trainers_per_group: int = 3, validator_bps: int = 9000, trainer_bps: int = 8800,
               global_bps: int = 9100, group_bps: list[int] | None = None) -> None:
    """Every validator reports all its trainers at the same accuracy; the producer closes the round."""
    for g in range(groups):
        scores = {trainer(g, i): trainer_bps for i in range(trainers_per_group)}
        chain.send(validator(g), report(task_id, round_, validator_bps, scores))
    chain.send(producer, close(task_id, round_, global_bps, group_bps or [9000 + g for g in range(groups)]))


# ------------------------------------------------------------------ a small rollup-server fake


class FakeRollupServer:
    """A minimal rollup HTTP API v2 server in a thread: hands out queued requests, records every call.

    ``/finish`` answers 202 ``idle_202s`` times before each request (host-mode behaviour), and, once the
    queue is empty, 202 (``when_empty="idle"``) or 500 (``"fail"``, to stop a backend that never exits).
    ``fail_routes`` maps a route to how many times it answers 500 before working again. A body the spec
    or the real server refuses (`rollups_node.rollup_http.refusal`) gets 400, as from the real server.
    """

    def __init__(self, when_empty: str = "idle", idle_202s: int = 0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.queue: list[dict] = []
        self.calls: list[tuple[str, dict]] = []
        self.when_empty, self.idle_202s = when_empty, idle_202s
        self.fail_routes: dict[str, int] = {}
        self.next_index = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                code, reply = fake.handle(self.path, body)
                data = json.dumps(reply).encode() if reply is not None else b""
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._idle_left = idle_202s
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def handle(self, route: str, body: dict) -> tuple[int, dict | None]:
        self.calls.append((route, body))
        if route in REQUEST_BODIES and refusal(route, body):  # as strict as the spec and the real server
            return 400, {"error": refusal(route, body)}
        if self.fail_routes.get(route, 0) > 0:
            self.fail_routes[route] -= 1
            return 500, {"error": "injected failure"}
        if route == "/finish":
            if self._idle_left > 0 or not self.queue:
                self._idle_left -= 1
                if not self.queue and self.when_empty == "fail":
                    return 500, {"error": "no more requests"}
                return 202, None
            self._idle_left = self.idle_202s
            return 200, self.queue.pop(0)
        if route in ("/notice", "/voucher"):
            self.next_index += 1
            return 201, {"index": self.next_index - 1}
        return 202, None

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_advance(self, sender: str, payload: bytes | Message, index: int, timestamp: int = 1_700_000_000,
                    prev_randao: bytes = bytes(32)) -> None:
        if isinstance(payload, Message):
            payload = payload.encode()
        self.queue.append({"request_type": "advance_state", "data": {
            "metadata": {"chain_id": 31337, "app_contract": addr(0xA99),
                         "msg_sender": sender, "block_number": 100 + index, "block_timestamp": timestamp,
                         "prev_randao": "0x" + prev_randao.hex(), "input_index": index},
            "payload": "0x" + payload.hex()}})

    def add_inspect(self, path: str) -> None:
        self.queue.append({"request_type": "inspect_state", "data": {"payload": "0x" + path.encode().hex()}})

    def routes(self) -> list[str]:
        return [route for route, _ in self.calls]

    def finish_statuses(self) -> list[str]:
        return [body["status"] for route, body in self.calls if route == "/finish"]

    def bodies(self, route: str) -> list[dict]:
        return [body for r, body in self.calls if r == route]
