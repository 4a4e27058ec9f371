"""The running stack as an on-chain test's parties see it: anvil (a block per transaction), the official
@cartesi/rollups 2.2.0 contracts, the host-mode node and `python -m dapp`; each party a key of its own, each
input an `InputBox.addInput` from it, read back through the node's JSON-RPC (`rollups_client`), never from the
backend's state. Evidence (trainers' `Update`, validators' `Receipt`) is signed under the real chain id and
Application address, as the rollup checks it."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
from dapp_fixtures import LOGREG, TEST_SET, TEST_SET_SIZE, chunks, task_message, update_of, validator_model
from eth_account import Account
from eth_utils import keccak

from attack_fixtures import chain_id_of, ether_the_rules_hold
from common import accounts
from contracts_config.deploy import ANVIL_KEY_0
from contracts_config.deployment import Deployment
from contracts_config.transactions import call_function, connect, send_transaction
from dapp import qmodel
from dapp.eip712 import Domain, Receipt, Update
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, CreateTask, Message, ModelChunk, Register, RoundClose,
                         TaskFunded, ValidatorReport, Withdraw, Withdrawal, decode_notice, encode_deposit_data,
                         pack_contribution)
from dapp.schema import TestSetChunk as SetChunk  # a Test* name would be collected by pytest
from flower_sim.signatures import sign
from frontend_console.audit import audit
from node_fixtures import DAPP_BACKEND, fresh_deployment, node_process, running_anvil, wait_until
from rollups_client.l1 import L1
from rollups_client.node import NodeClient
from rollups_client.outputs import RollupOutput

MILLI = 10**15
EPOCH_LENGTH = 4
FUNDER, EXECUTOR = accounts.private_key(9), accounts.private_key(8)  # no role in any task


@dataclass
class Rollup:
    """The running stack as the test's parties see it: L1 to send and mine, the node to read back."""

    l1: L1
    node: NodeClient
    url: str
    keys: Iterator[int]

    def key(self) -> str:
        """A new party: a key of its own, with Ether for gas."""
        key = accounts.private_key(next(self.keys))
        send_transaction(self.l1.w3, FUNDER, {"to": Account.from_key(key).address, "value": 10**18})
        return key

    @property
    def domain(self) -> Domain:
        """The EIP-712 domain every advance of this rollup carries: the chain and the Application."""
        return Domain(self.l1.w3.eth.chain_id, self.l1.deployment.application)

    def _processed(self, index: int) -> int:
        wait_until(lambda: self.node.processed_input_count() > index, 60, f"the node to process input {index}")
        return index

    def send(self, key: str, message: Message | bytes) -> int:
        """`InputBox.addInput` from `key`; the input's index once the node has processed it."""
        payload = message.encode() if isinstance(message, Message) else message
        return self._processed(self.l1.add_input(key, payload))

    def deposit(self, key: str, task_id: int, value: int) -> int:
        return self._processed(self.l1.input_index(self.l1.send_deposit(key, value, encode_deposit_data(task_id))))

    def accepted(self, key: str, message: Message) -> list[Message]:
        """Send; the input must be ACCEPTED; its notices, read back through the node's JSON-RPC."""
        index = self.send(key, message)
        assert self.node.input_status(index) == "ACCEPTED", self.reason(index)
        return [o.message for o in self.node.notices(input_index=index)]

    def rejected(self, key: str, message: Message | bytes) -> str:
        """Send; the input must be REJECTED with no output; the reason the backend reported."""
        index = self.send(key, message)
        assert self.node.input_status(index) == "REJECTED"
        assert self.node.outputs(input_index=index) == []
        return self.reason(index)

    def reason(self, index: int) -> str:
        (report,) = self.node.reports(input_index=index)
        return json.loads(report.raw_data)["error"]

    def inspect(self, path: str) -> dict:
        answer = self.node.inspect(path.encode())
        assert answer.status == "Accepted", answer
        return json.loads(answer.reports[0])

    def turns(self, task_id: int) -> tuple[list[str], list[int], int]:
        """Who may close the task's current round, in turn (lowercase), until which block each, and the
        round's report deadline: as inspect `producer/<id>` answers."""
        answer = self.inspect(f"producer/{task_id}")
        return ([t["producer"].lower() for t in answer["turns"]], [t["until_block"] for t in answer["turns"]],
                answer["report_deadline"])

    def contest_deadline(self, task_id: int) -> int:
        """The current round's last block for reveals, contests and challenges (inspect `producer/<id>`)."""
        return self.inspect(f"producer/{task_id}")["contest_deadline"]

    def mine_to(self, block: int) -> None:
        """Mine until L1's latest block is `block`: the next input lands after it."""
        behind = block - self.l1.w3.eth.block_number
        if behind > 0:
            self.l1.mine(behind)

    def execute(self, voucher: RollupOutput) -> int:
        """Close the voucher's epoch, wait for its claim on L1, execute it from a bystander's key; the wei
        its destination received."""
        self.l1.mine(EPOCH_LENGTH + 1)
        proven = wait_until(lambda: self._proven(voucher.index), 60, f"the claim of voucher {voucher.index}")
        before = self.l1.balance(voucher.destination)
        self.l1.execute_output(EXECUTOR, proven.raw, proven.index, proven.siblings)
        return self.l1.balance(voucher.destination) - before

    def _proven(self, index: int) -> RollupOutput | None:
        out = self.node.output(index)
        return out if out.siblings and out.epoch_index in self.node.accepted_epochs() else None

    def assert_serving_and_audited(self) -> None:
        """The node still answers; the audit re-derives and proves the history so far (it has rejected
        inputs); the Application's L1 balance is what the rules hold (refunds executed or still owed)."""
        assert chain_id_of(self.url) == hex(self.l1.w3.eth.chain_id)
        result = audit(self.node, self.l1)
        assert result.accepted + result.rejected == result.inputs and result.rejected > 0
        assert result.outputs == result.proven > 0
        assert self.l1.balance(self.l1.deployment.application) == ether_the_rules_hold(self.l1)

    def voucher_of(self, index: int) -> RollupOutput:
        (voucher,) = [o for o in self.node.outputs(input_index=index) if o.type == "Voucher"]
        return voucher

    # ------------------------------------------------------------------ the issue-13 inputs, from a party's key
    def post_test_set(self, key: str, task_id: int) -> list[Message]:
        """The publisher posts `dapp_fixtures.TEST_SET` in chunks; the last chunk's notices."""
        parts = chunks(TEST_SET)
        for i, part in enumerate(parts):
            notices = self.accepted(key, SetChunk(task_id, i, len(parts), part))
        return notices

    def post_blob(self, key: str, task_id: int, round_: int, blob: bytes) -> list[Message]:
        """A model or an update as ModelChunks from `key`; the last chunk's notices (the rollup's score)."""
        parts, digest = chunks(blob), qmodel.digest(blob)
        for i, part in enumerate(parts):
            notices = self.accepted(key, ModelChunk(task_id, round_, digest, i, len(parts), part))
        return notices


@contextlib.contextmanager
def running_rollup(folder: Path, broker: str = "", broker_fee_bps: int = 0) -> Iterator[Rollup]:
    """A chain mining on every transaction, so an input's L1 block is known and the deadlines (a few blocks) are
    passed with `anvil_mine` instead of waiting; its Application deployed with the market's `broker` and fee."""
    with running_anvil(block_time=None) as chain:  # a block per transaction; deadlines passed by mining
        deployment = dataclasses.replace(fresh_deployment(chain, epoch_length=EPOCH_LENGTH), broker=broker,
                                         broker_fee_bps=broker_fee_bps)
        with node_process(deployment, folder, backend=DAPP_BACKEND) as (url, process):
            yield Rollup(L1(chain, deployment), NodeClient.at(url, deployment.application), url, iter(range(20, 1000)))
            assert process.poll() is None, "the node died"


@pytest.fixture(scope="module")
def rollup(tmp_path_factory) -> Iterator[Rollup]:
    """One chain for the test module (`running_rollup`, no broker)."""
    with running_rollup(tmp_path_factory.mktemp("rollup")) as started:
        yield started


def task(validators: tuple[str, ...], rounds: int = 2, **terms) -> CreateTask:
    """Budget 4 mETH a round (2 mETH per group), 1 mETH per Positive, validator reward 1 mETH; the public test set
    `dapp_fixtures.TEST_SET`, logreg models. Deadlines (blocks) longer than the claims mined in between."""
    deadlines = {"registration_blocks": 20, "report_blocks": 8, "close_blocks": 5, "contest_blocks": 10}
    return CreateTask(2500, rounds, len(validators), 4 * MILLI, 1 * MILLI, 1 * MILLI, validators=validators,
                      test_set_digest=keccak(TEST_SET), test_set_size=TEST_SET_SIZE, model_arch=LOGREG,
                      trainers_per_group=3, **{**deadlines, **terms})


@dataclass(frozen=True)
class Entry:
    """One trainer in a validator's report: its key (it signs its update), the accuracy reported, its update."""

    key: str
    bps: int
    update: bytes
    samples: int = 600
    measures: tuple[int, int] = (0, 0)  # a trust task's (cosine bps, size hundredths)


def signed_report(domain: Domain, task_id: int, round_: int, group: int, validator_bps: int, model: bytes,
                  entries: list[Entry]) -> ValidatorReport:
    """A validator's report committing to `model`, each entry signed by its trainer (EIP-712 `Update`)."""
    sigs = [sign(e.key, domain, Update(task_id, round_, group, qmodel.digest(e.update), e.samples)) for e in entries]
    return ValidatorReport(task_id, round_, validator_bps, qmodel.digest(model),
                           tuple(pack_contribution(L1.address(e.key), e.bps, e.samples, *e.measures) for e in entries),
                           tuple(qmodel.digest(e.update) for e in entries),
                           tuple(s[:32] for s in sigs), tuple(s[32:] for s in sigs))


def receipt(domain: Domain, validator_key: str, task_id: int, round_: int, trainer_key: str, update: bytes,
            samples: int = 600) -> bytes:
    """A validator's EIP-712 `Receipt` for a trainer's update: the trainer's evidence if it is left out."""
    return sign(validator_key, domain, Receipt(task_id, round_, L1.address(trainer_key), qmodel.digest(update),
                                               samples))


def of(notices: list[Message], kind: type) -> list:
    return [n for n in notices if isinstance(n, kind)]


def a_round_pays_a_trainer_on_l1(d: Deployment, node_url: str) -> None:
    """On a stack `fedrollup chain up` started (anvil mining a block every interval, the official contracts, the
    node and `python -m dapp`): a task funded through the real EtherPortal and its public test set posted, a round
    played from each role's own key (the trainer's signature under the real chain id and Application, the
    validator's model revealed, the close after the contest window), and the trainer's Withdraw voucher executed
    on L1 paying real Ether."""
    w3 = connect(d.rpc_url)
    app = d.contracts["Application"]
    input_box = w3.eth.contract(address=d.contracts["InputBox"], abi=d.abi("InputBox"))
    portal = w3.eth.contract(address=d.contracts["EtherPortal"], abi=d.abi("EtherPortal"))
    application = w3.eth.contract(address=app, abi=d.abi("Application"))
    validator, trainer = Account.create(), Account.create()
    for account in (validator, trainer):
        send_transaction(w3, ANVIL_KEY_0, {"to": account.address, "value": 10**18})

    def send(key: str, message) -> None:
        call_function(w3, key, input_box.functions.addInput(app, message.encode()))

    created = task_message(2500, 1, 1, 4 * MILLI, 3 * MILLI, 1 * MILLI, validators=(validator.address.lower(),))
    send(ANVIL_KEY_0, created)
    send(ANVIL_KEY_0, SetChunk(1, 0, 1, TEST_SET))
    call_function(w3, ANVIL_KEY_0, portal.functions.depositEther(app, encode_deposit_data(1)), value=5 * MILLI)
    send(validator.key.hex(), Register(1, ROLE_VALIDATOR, 0))
    send(trainer.key.hex(), Register(1, ROLE_TRAINER, 0))
    model = validator_model(0, 1)
    entry = Entry(trainer.key.hex(), 8000, update_of(trainer.address.lower(), 1))
    send(validator.key.hex(), signed_report(Domain(w3.eth.chain_id, app), 1, 1, 0, 9000, model, [entry]))
    send(validator.key.hex(), ModelChunk(1, 1, qmodel.digest(model), 0, 1, model))
    w3.provider.make_request("anvil_mine", [hex(created.contest_blocks + 1)])  # past the contest window
    send(ANVIL_KEY_0, RoundClose(1, 1))
    send(trainer.key.hex(), Withdraw())

    def call(method: str, **params):
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return requests.post(node_url + "/rpc", json=body, timeout=10).json()["result"]["data"]

    deadline = time.monotonic() + 60
    while int(call("cartesi_getProcessedInputCount", application="fedrollup"), 16) < 9:
        assert time.monotonic() < deadline, "the node did not process the 9 inputs within 60 s"
        time.sleep(0.1)
    assert [i["status"] for i in call("cartesi_listInputs", application="fedrollup")] == ["ACCEPTED"] * 9
    outputs = call("cartesi_listOutputs", application="fedrollup")
    notices = [decode_notice(bytes.fromhex(o["decoded_data"]["payload"][2:])) for o in outputs
               if o["decoded_data"]["type"] == "Notice"]
    funded = next(n for n in notices if isinstance(n, TaskFunded))
    assert funded.funder == Account.from_key(ANVIL_KEY_0).address.lower() and funded.funded
    assert notices[-1] == Withdrawal(trainer.address.lower(), 3 * MILLI)

    (voucher,) = [o for o in outputs if o["decoded_data"]["type"] == "Voucher"]
    while call("cartesi_getEpoch", application="fedrollup",
               epoch_index=voucher["epoch_index"])["status"] != "CLAIM_ACCEPTED":
        assert time.monotonic() < deadline + 60, "the epoch holding the voucher was not claimed"
        time.sleep(0.1)
    proven = call("cartesi_getOutput", application="fedrollup", output_index=voucher["index"])
    proof = (int(proven["index"], 16), [bytes.fromhex(s[2:]) for s in proven["output_hashes_siblings"]])
    before = w3.eth.get_balance(trainer.address)
    call_function(w3, ANVIL_KEY_0, application.functions.executeOutput(bytes.fromhex(proven["raw_data"][2:]), proof))
    assert w3.eth.get_balance(trainer.address) - before == 3 * MILLI
