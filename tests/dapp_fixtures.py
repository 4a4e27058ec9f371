"""Helpers for the dapp tests: named addresses, a tiny 'chain' that feeds the state machine, task setup."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Iterable

import numpy as np
from eth_keys import keys
from eth_utils import keccak

from dapp import qmodel
from dapp.eip712 import Domain, Receipt, Update
from dapp.portal import CANONICAL_ETHER_PORTAL, decode_ether_deposit, encode_ether_deposit
from dapp.qmodel import Q_MAX, QLayer, QModel
from dapp.schema import (CHUNK_DATA, ROLE_TRAINER, ROLE_VALIDATOR, Contest, CreateTask, Message, ModelChunk,
                         Register, RoundClose, TestSetChunk, ValidatorReport, encode_deposit_data,
                         normalize_address, pack_contribution)
from dapp.state import ZERO_ADDRESS, Accepted, Advance, Notice, Rejected, State, Voucher, apply
from flower_sim.signatures import sign
from rollups_node.rollup_http import refusal
from rollups_node.rollup_http_schema import REQUEST_BODIES

PORTAL = normalize_address(CANONICAL_ETHER_PORTAL)
ETH = 10**18
MILLI = 10**15


def addr(n: int) -> str:
    return "0x" + f"{n:040x}"


PUBLISHER = addr(0xA11CE)
STRANGER = addr(0xBAD)


# Validators and trainers sign (their Update, their Receipt): each has a private key, derived from its name.
_KEYS: dict[str, bytes] = {}  # address -> private key
_GROUP: dict[str, int] = {}  # trainer address -> its group


@cache
def keyed(name: str) -> str:
    """The address of the test key named ``name`` (registered in _KEYS)."""
    key = keccak(text=f"fedrollup test key {name}")
    address = keys.PrivateKey(key).public_key.to_address().lower()
    _KEYS[address] = key
    return address


def key_of(address: str) -> bytes:
    return _KEYS[address]


def validator(group: int) -> str:
    return keyed(f"validator {group}")


def trainer(group: int, i: int) -> str:
    address = keyed(f"trainer {group} {i}")
    _GROUP[address] = group
    return address


DOMAIN = Domain(0, ZERO_ADDRESS)  # what `Chain.advance` delivers: chain id 0, application 0x0


# ------------------------------------------------------------------ a public test set and models that score exactly

PER_CLASS = 3


def band_test_set(per_class: int = PER_CLASS) -> bytes:
    """Images of class k light up rows 4 + 2k and 5 + 2k only (linearly separable), in dapp.qnn's test-set format."""
    labels = bytes(k for k in range(10) for _ in range(per_class))
    pixels = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, k in enumerate(labels):
        pixels[i, 4 + 2 * k:6 + 2 * k, :] = 255
    return labels + pixels.tobytes()


TEST_SET = band_test_set()
TEST_SET_SIZE = 10 * PER_CLASS
LOGREG = qmodel.arch_named("logreg").id


def band_model(dead: Iterable[int] = (), salt: int = 0) -> bytes:
    """An FRQ1 logreg that detects every band but those of the ``dead`` classes: on `TEST_SET` it scores exactly
    10,000 - 1,000 x (dead classes other than 0) bps (a dead class's images tie at 0 and go to class 0). ``salt``
    shifts every bias alike: another digest, the same predictions."""
    q = np.zeros((28, 28, 10), dtype=np.int64)
    for k in set(range(10)) - set(dead):
        q[4 + 2 * k:6 + 2 * k, :, k] = Q_MAX
    layer = QLayer("dense", q.reshape(784, 10), (1 << 24,), (salt,) * 10, False)
    return qmodel.encode(QModel(LOGREG, (layer,)))


def band_bps(dead: Iterable[int] = ()) -> int:
    return 10_000 - 1_000 * len(set(dead) - {0})


def validator_model(group: int, round_: int) -> bytes:
    """The model validator ``group`` commits to and reveals in ``round_`` by default (a perfect one)."""
    return band_model(salt=1_000 * round_ + group)


def update_of(trainer_address: str, round_: int) -> bytes:
    """The update a trainer hands its validator in ``round_`` by default (a perfect one, its own digest)."""
    return band_model(salt=-(int(trainer_address, 16) % 100_000) - 100_000 * round_)


def chunks(blob: bytes) -> list[bytes]:
    return [blob[i:i + CHUNK_DATA] for i in range(0, len(blob), CHUNK_DATA)] or [b""]


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

    def task(self, task_id: int = 1):
        return self.state.tasks[task_id]

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
    """A CreateTask (CreateTask's argument order) naming `validator(g)` for each group, committing to
    `TEST_SET` and the logreg architecture, with 5-block contest windows; other terms keep CreateTask's keyword
    defaults unless given."""
    defaults = {"validators": tuple(validator(g) for g in range(groups)), "test_set_digest": keccak(TEST_SET),
                "test_set_size": TEST_SET_SIZE, "model_arch": LOGREG, "contest_blocks": 5}
    return CreateTask(mad_bps, rounds, groups, budget, per_positive, validator_reward, **{**defaults, **terms})


def post_test_set(chain: Chain, task_id: int, data: bytes = TEST_SET, sender: str | None = None) -> Accepted:
    parts = chunks(data)
    results = [chain.send(sender or PUBLISHER, TestSetChunk(task_id, i, len(parts), part))
               for i, part in enumerate(parts)]
    return results[-1]


def create_task(chain: Chain, task_id: int = 1, groups: int = 2, rounds: int = 3, mad_bps: int = 2500,
                budget: int = 10 * MILLI, per_positive: int = 2 * MILLI, validator_reward: int = 1 * MILLI,
                trainers_per_group: int = 3, fund: bool = True, seats: Iterable[int] | None = None,
                test_set: bytes = TEST_SET, **terms) -> None:
    """Publish, fund (exactly the required escrow) and register N trainers per group and the named validator
    of every group in ``seats`` (default: all). ``task_id`` is the id the rollup is expected to assign."""
    created = chain.send(PUBLISHER, task_message(mad_bps, rounds, groups, budget, per_positive, validator_reward,
                                                 **terms))
    assert created.outputs[0].message.task_id == task_id, "the rollup assigned another task id"
    post_test_set(chain, task_id, test_set)
    if fund:
        chain.deposit(PUBLISHER, rounds * (budget + validator_reward), encode_deposit_data(task_id))
    for g in range(groups):
        if seats is None or g in seats:
            chain.send(validator(g), Register(task_id, ROLE_VALIDATOR, g))
        for i in range(trainers_per_group):
            chain.send(trainer(g, i), Register(task_id, ROLE_TRAINER, g))


def signed(trainer_address: str, task_id: int, round_: int, update_digest: bytes, samples: int,
           group: int | None = None, domain: Domain = DOMAIN) -> bytes:
    """The trainer's EIP-712 Update signature (64 bytes) as the rollup checks it in a report (an address without a
    test key gets a stranger's signature)."""
    group = _GROUP.get(trainer_address, 0) if group is None else group
    key = _KEYS.get(trainer_address) or key_of(keyed("stranger"))
    return sign(key, domain, Update(task_id, round_, group, update_digest, samples))


def receipt(group: int, trainer_address: str, task_id: int, round_: int, update_digest: bytes,
            samples: int) -> bytes:
    """Validator ``group``'s EIP-712 Receipt signature for a trainer's update."""
    return sign(key_of(validator(group)), DOMAIN, Receipt(task_id, round_, trainer_address, update_digest, samples))


def report(task_id: int, round_: int, validator_bps: int, scores: dict[str, int], samples: int = 600,
           model: bytes | None = None, updates: dict[str, bytes] | None = None,
           domain: Domain = DOMAIN, group: int | None = None,
           measures: dict[str, tuple[int, int]] | None = None,
           shares: dict[str, int] | None = None) -> ValidatorReport:
    """A validator's signed report: every trainer signs its update (`update_of` unless given); the validator
    commits to ``model`` (default `validator_model` of ``group``, else of the first trainer's group, else 0:
    name the group of an empty report, or two empty reports commit to the same model). ``measures``: a trust task's
    (cosine bps, size centi) per trainer (default 0, 0); ``shares``: a shapley task's share (bps) per trainer (default
    0)."""
    words, digests, sigs = [], [], []
    for t, bps in scores.items():
        digest = qmodel.digest((updates or {}).get(t) or update_of(t, round_))
        words.append(pack_contribution(t, bps, samples, *(measures or {}).get(t, (0, 0)), (shares or {}).get(t, 0)))
        digests.append(digest)
        sigs.append(signed(t, task_id, round_, digest, samples, domain=domain))
    group = group if group is not None else _GROUP.get(next(iter(scores), ""), 0)
    model = model if model is not None else validator_model(group, round_)
    return ValidatorReport(task_id, round_, validator_bps, qmodel.digest(model), tuple(words), tuple(digests),
                           tuple(s[:32] for s in sigs), tuple(s[32:] for s in sigs))


def post_blob(chain: Chain, sender: str, task_id: int, round_: int, blob: bytes) -> Accepted:
    """Send ``blob`` (a model or an update) as ModelChunks; the last chunk's result."""
    parts = chunks(blob)
    digest = qmodel.digest(blob)
    results = [chain.send(sender, ModelChunk(task_id, round_, digest, i, len(parts), part))
               for i, part in enumerate(parts)]
    return results[-1]


def contest(task_id: int, round_: int, trainer_address: str, update: bytes, samples: int = 600,
            receipt_signature: bytes = bytes(64)) -> Contest:
    return Contest(task_id, round_, qmodel.digest(update), samples, receipt_signature[:32], receipt_signature[32:])


def close(task_id: int, round_: int) -> RoundClose:
    return RoundClose(task_id, round_)


def close_when_due(chain: Chain, task_id: int, round_: int, producer: str) -> Accepted:
    """Let the reveal and contest window pass (to the first block the round may close), then close it."""
    due = chain.task(task_id).contest_deadline() + 1
    if chain.block < due:
        chain.mine_to(due)
    return chain.send(producer, close(task_id, round_))


def settle(chain: Chain, task_id: int, round_: int, producer: str) -> Accepted:
    """Reveal every reported group's default model (`validator_model`), then close when due: what a round
    needs after its reports for the payments to happen."""
    for g, rep in enumerate(chain.task(task_id).reports):
        model = validator_model(g, round_)
        if rep is not None and rep.model_digest == qmodel.digest(model):
            post_blob(chain, validator(g), task_id, round_, model)
    return close_when_due(chain, task_id, round_, producer)


def played_round_one(audit: bool = False, **terms) -> Chain:
    """Task 1 (2 groups of 3 trainers, 5 mETH per group and round, 2 mETH per Positive, 20-block windows: room for
    every input of a test, each taking a block), round 1 played honestly: validator 0 then has a stake of 1 mETH
    (a penalty has something to cut) and closes round 2."""
    c = Chain(audit=audit)
    create_task(c, rounds=3, contest_blocks=20, **terms)
    for g in (0, 1):
        c.send(validator(g), report(1, 1, 9000, {trainer(g, i): 8800 for i in range(3)}, model=validator_model(g, 1)))
    for g in (0, 1):
        post_blob(c, validator(g), 1, 1, validator_model(g, 1))
    close_when_due(c, 1, 1, PUBLISHER)
    assert c.task().stakes[validator(0)] == 1 * MILLI
    return c


def play_round(chain: Chain, task_id: int, round_: int, producer: str, groups: int = 2,
               trainers_per_group: int = 3, validator_bps: int = 9000, trainer_bps: int = 8800,
               models: dict[int, bytes] | None = None) -> Accepted:
    """Every validator reports all its trainers at the same accuracy and reveals its model (default
    `validator_model`, a perfect one); once the contest window has passed, the producer closes the round."""
    models = {g: (models or {}).get(g) or validator_model(g, round_) for g in range(groups)}
    for g in range(groups):
        scores = {trainer(g, i): trainer_bps for i in range(trainers_per_group)}
        chain.send(validator(g), report(task_id, round_, validator_bps, scores, model=models[g]))
    for g in range(groups):
        post_blob(chain, validator(g), task_id, round_, models[g])
    return close_when_due(chain, task_id, round_, producer)


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

    CHAIN_ID, APP = 31337, addr(0xA99)
    DOMAIN = Domain(CHAIN_ID, APP)  # what its advances deliver: sign with it

    def add_advance(self, sender: str, payload: bytes | Message, index: int, timestamp: int = 1_700_000_000,
                    prev_randao: bytes = bytes(32), block: int | None = None) -> None:
        if isinstance(payload, Message):
            payload = payload.encode()
        self.queue.append({"request_type": "advance_state", "data": {
            "metadata": {"chain_id": self.CHAIN_ID, "app_contract": self.APP, "msg_sender": sender,
                         "block_number": 100 + index if block is None else block, "block_timestamp": timestamp,
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
