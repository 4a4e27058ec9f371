"""A Quorum of three members, each with its own node, claim key and database, on anvil: a lying member is
outvoted and its voucher cannot execute, a killed member does not stop settlement and catches up, a minority
settles nothing, a node that computes another root stops voting, and a non-member cannot vote at all.

anvil mines a block per transaction here; the tests mine the blocks that close an epoch, so nothing waits on
wall-clock block times.
"""
from __future__ import annotations

import subprocess
import sys

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError

from common.accounts import claimer_address, claimer_key
from contracts_config import artifacts
from contracts_config.deploy import ANVIL_KEY_0, deploy
from contracts_config.transactions import connect, send_transaction
from node_fixtures import (DEV_KEYS, ECHO_BACKEND, add_input, deposit_ether, node_process, node_processes, outputs_of,
                           proof_of, rpc, running_anvil, wait_until)
from rollups_client.l1 import L1
from rollups_node.merkle import OutputsTree
from rollups_node.outputs import encode_notice, encode_voucher, output_hash

pytestmark = pytest.mark.slow

EPOCH = 4
MEMBERS = 3
INVALID_OUTPUTS_MERKLE_ROOT = "0x44a192ff"


@pytest.fixture(scope="module")
def chain():
    with running_anvil(block_time=None) as url:
        w3 = connect(url)
        for member in range(1, MEMBERS + 1):
            send_transaction(w3, ANVIL_KEY_0, {"to": claimer_address(member), "value": 10 ** 18})
        yield url


_templates = iter(range(1, 1 << 20))


@pytest.fixture()
def deployment(chain):
    return deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH, consensus="quorum", name="test",
                  members=[claimer_address(i) for i in range(1, MEMBERS + 1)],
                  template_hash="0x" + (0x9000 + next(_templates)).to_bytes(32, "big").hex())


class Quorum:
    """The test's view of L1: votes, mining, epochs."""

    def __init__(self, deployment) -> None:
        self.d = deployment
        self.w3 = connect(deployment.rpc_url)
        self.contract = self.w3.eth.contract(address=deployment.consensus, abi=artifacts.abi("Quorum"))
        self.app = self.w3.eth.contract(address=deployment.application, abi=artifacts.abi("Application"))

    def start_epoch(self) -> None:
        """Mine to the last block of an epoch, so the next transactions land at the start of the next one."""
        target = (self.w3.eth.block_number // EPOCH + 1) * EPOCH - 1
        if target > self.w3.eth.block_number:
            self.w3.provider.make_request("anvil_mine", [hex(target - self.w3.eth.block_number)])

    def close_epoch(self) -> int:
        """Mine past the current epoch; its last block (the claim's `lastProcessedBlockNumber`)."""
        last = (self.w3.eth.block_number // EPOCH + 1) * EPOCH - 1
        self.w3.provider.make_request("anvil_mine", [hex(last + 2 - self.w3.eth.block_number)])
        return last

    def votes(self, last_block: int, root: bytes) -> int:
        return self.contract.functions.numOfValidatorsInFavorOf(self.d.application, last_block, root).call()

    def voted(self, last_block: int, member: int) -> bool:
        return self.contract.functions.isValidatorInFavorOfAnyClaimInEpoch(self.d.application, last_block,
                                                                          member).call()

    def accepted(self, last_block: int) -> list[bytes]:
        events = self.contract.events.ClaimAccepted().get_logs(
            argument_filters={"appContract": self.d.application}, from_block=0)
        return [bytes(e["args"]["outputsMerkleRoot"]) for e in events
                if e["args"]["lastProcessedBlockNumber"] == last_block]


def epoch_status(url: str, app: str, index: int) -> str:
    """The epoch's status on that node ("" until its reader has seen the epoch)."""
    try:
        return rpc(url, "cartesi_getEpoch", application=app, epoch_index=hex(index))["data"]["status"]
    except AssertionError as err:
        if "Epoch not found" in str(err):
            return ""
        raise


def epoch_of(last_block: int) -> int:
    return last_block // EPOCH


def member_node(deployment, tmp_path, member: int, folder: str | None = None, backend=ECHO_BACKEND, extra=()):
    return node_process(deployment, tmp_path / (folder or f"member-{member}"), backend=backend,
                        key=claimer_key(member), extra=extra)


def member_nodes(deployment, tmp_path, *members: int, backends: dict[int, list[str]] | None = None):
    """The members' nodes started together (each as `member_node` starts it); their URLs and processes."""
    return node_processes(deployment, *(dict(folder=tmp_path / f"member-{m}", key=claimer_key(m),
                                             backend=(backends or {}).get(m, ECHO_BACKEND)) for m in members))


def test_a_lying_member_is_outvoted_and_its_voucher_cannot_execute(deployment, tmp_path):
    q = Quorum(deployment)
    payee, liar = Web3.to_checksum_address("0x" + "ab" * 20), claimer_address(1)
    q.start_epoch()
    deposit_ether(deployment, 5 * 10 ** 18)
    add_input(deployment, b"voucher:" + payee[2:].lower().encode())
    last = q.close_epoch()
    # member 1 runs no node: from the inputs on L1 it builds the honest outputs, appends a voucher paying itself
    # the Application's whole balance, and votes that root before anyone else
    inputs = L1(deployment.rpc_url, deployment).inputs()
    honest = [encode_notice(inputs[0].payload), encode_voucher(payee, 1, b"")]
    forged = honest + [encode_voucher(liar, 5 * 10 ** 18, b"")]
    honest_tree, forged_tree = (OutputsTree([output_hash(o) for o in outs]) for outs in (honest, forged))
    send_transaction(q.w3, claimer_key(1), q.contract.functions.submitClaim(
        deployment.application, last, forged_tree.root()).build_transaction({"from": liar}))

    with member_nodes(deployment, tmp_path, 2, 3) as nodes:
        urls = [url for url, _ in nodes]
        for url in urls:
            wait_until(lambda: epoch_status(url, deployment.application, epoch_of(last)) == "CLAIM_ACCEPTED", 60,
                       "the honest members' claim to be accepted")
        outputs = outputs_of(urls[0], deployment.application)
        application = rpc(urls[0], "cartesi_getApplication", application=deployment.application)["data"]
    assert q.accepted(last) == [honest_tree.root()]
    assert q.votes(last, honest_tree.root()) == 2 and q.votes(last, forged_tree.root()) == 1
    assert application["consensus_type"] == "QUORUM" and application["state"] == "ENABLED"
    assert [bytes.fromhex(o["raw_data"][2:]) for o in outputs] == honest  # the nodes computed the honest outputs

    with pytest.raises(ContractLogicError) as err:  # the forged voucher's proof is against an unaccepted root
        q.app.functions.executeOutput(forged[2], (2, forged_tree.proof(2))).call({"from": liar})
    assert INVALID_OUTPUTS_MERKLE_ROOT in str(err.value.data or err.value)
    before = q.w3.eth.get_balance(payee)
    send_transaction(q.w3, DEV_KEYS[3], q.app.functions.executeOutput(
        honest[1], proof_of(outputs[1])).build_transaction({"from": q.w3.eth.account.from_key(DEV_KEYS[3]).address}))
    assert q.w3.eth.get_balance(payee) == before + 1
    assert q.w3.eth.get_balance(deployment.application) == 5 * 10 ** 18 - 1


def test_settlement_goes_on_with_a_member_killed_and_the_member_catches_up(deployment, tmp_path):
    q = Quorum(deployment)
    with member_nodes(deployment, tmp_path, 1, 2, 3) as ((url1, _), _, (url3, process3)):
        add_input(deployment, b"round 1")
        first = q.close_epoch()
        wait_until(lambda: epoch_status(url3, deployment.application, epoch_of(first)) == "CLAIM_ACCEPTED", 60,
                   "epoch 1 accepted by all three")
        process3.kill()  # SIGKILL: no clean stop
        process3.wait()
        add_input(deployment, b"round 2")
        second = q.close_epoch()
        wait_until(lambda: epoch_status(url1, deployment.application, epoch_of(second)) == "CLAIM_ACCEPTED", 60,
                   "epoch 2 accepted with member 3 down")
        assert not q.voted(second, 3) and len(q.accepted(second)) == 1
        root = q.accepted(second)[0]
        assert q.votes(second, root) == 2

        # member 3 restarts on its database, then on a fresh one: it votes late on the epoch it missed
        with member_node(deployment, tmp_path, 3) as (url3, _):
            wait_until(lambda: epoch_status(url3, deployment.application, epoch_of(second)) == "CLAIM_ACCEPTED", 60,
                       "member 3 to catch up on its database")
        assert q.voted(second, 3) and q.votes(second, root) == 3 and len(q.accepted(second)) == 1
        with member_node(deployment, tmp_path, 3, folder="member-3-fresh") as (fresh, _):
            for last in (first, second):
                wait_until(lambda: epoch_status(fresh, deployment.application, epoch_of(last)) == "CLAIM_ACCEPTED",
                           60, "member 3 to catch up from L1 alone")
            state = rpc(fresh, "cartesi_getApplication", application=deployment.application)["data"]["state"]
        assert state == "ENABLED"  # it found its own earlier votes equal to what it recomputed


def test_a_minority_settles_nothing_until_a_majority_is_back(deployment, tmp_path):
    q = Quorum(deployment)
    with member_node(deployment, tmp_path, 1) as (url1, _):
        add_input(deployment, b"only the manager is up")
        last = q.close_epoch()
        wait_until(lambda: epoch_status(url1, deployment.application, epoch_of(last)) == "CLAIM_SUBMITTED", 60,
                   "member 1 to vote")
        assert q.voted(last, 1)
        q.close_epoch()  # L1 moves on; one vote of three is still no settlement
        assert q.accepted(last) == []
        assert epoch_status(url1, deployment.application, epoch_of(last)) == "CLAIM_SUBMITTED"
        with member_node(deployment, tmp_path, 2):
            wait_until(lambda: epoch_status(url1, deployment.application, epoch_of(last)) == "CLAIM_ACCEPTED", 60,
                       "the epoch to be accepted once two members voted")
    assert len(q.accepted(last)) == 1


def test_a_node_that_computes_another_root_stops_voting_and_keeps_serving_reads(deployment, tmp_path):
    q = Quorum(deployment)
    other = [*ECHO_BACKEND, "--prefix", "other:"]  # a backend that diverges: its outputs differ
    with member_nodes(deployment, tmp_path, 1, 2, 3, backends={3: other}) as (_, _, (url3, _)):
        add_input(deployment, b"hello")
        last = q.close_epoch()
        wait_until(lambda: epoch_status(url3, deployment.application, epoch_of(last)) == "CLAIM_REJECTED", 60,
                   "the diverging node to see another root settled")
        application = rpc(url3, "cartesi_getApplication", application=deployment.application)["data"]
        assert application["state"] == "INOPERABLE" and "L1 settled" in application["reason"]
        assert q.votes(last, q.accepted(last)[0]) == 2  # the two agreeing members settled
        add_input(deployment, b"again")
        again = q.close_epoch()
        wait_until(lambda: len(q.accepted(again)) == 1, 60, "the next epoch to settle without member 3")
        assert not q.voted(again, 3)  # an INOPERABLE node votes no more
        assert outputs_of(url3, deployment.application)  # and still answers reads


def test_a_non_member_key_cannot_start_a_voting_node_but_can_read(deployment, tmp_path):
    folder = tmp_path / "outsider"
    folder.mkdir()
    (folder / "deployment.json").write_text(deployment.to_json())
    command = [sys.executable, "-m", "fedrollup", "node", "--deployment", str(folder / "deployment.json"),
               "--db", str(folder / "node.sqlite"), "--port", "0", "--key", ANVIL_KEY_0,
               "--backend-command", " ".join(ECHO_BACKEND)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    message = (result.stderr or result.stdout).strip().splitlines()[-1]
    assert "is not a member of the Quorum" in message and claimer_address(1) in message
    assert "Traceback" not in result.stderr
    with node_process(deployment, folder, key=ANVIL_KEY_0, extra=("--no-claims",)) as (url, _):
        add_input(deployment, b"read me")
        wait_until(lambda: outputs_of(url, deployment.application), 60, "the reader node to process the input")
