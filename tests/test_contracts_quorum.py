"""The Quorum consensus of @cartesi/rollups 2.2.0 as fedrollup deploys it, played on anvil by its members and by
an attacker: who can settle a root, and what a forged root with a voucher paying its author achieves (nothing)."""
from __future__ import annotations

import pytest
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from common.accounts import claimer_address, claimer_key
from common.errors import ConfigError
from contracts_config import artifacts
from contracts_config.deploy import ANVIL_KEY_0, CANONICAL_ADDRESSES, ZERO_ADDRESS, deploy
from contracts_config.deployment import load, save
from contracts_config.transactions import call_function, connect, send_transaction
from node_fixtures import DEV_KEYS, running_anvil
from rollups_node.merkle import OutputsTree
from rollups_node.outputs import encode_notice, encode_voucher, output_hash

EPOCH = 5
MEMBERS = 3
INVALID_OUTPUTS_MERKLE_ROOT = "0x44a192ff"
NOT_FIRST_CLAIM = "0x7e942645"
OWNABLE_UNAUTHORIZED = "0x118cdaa7"
DEV_KEY_ADDRESSES = [Web3().eth.account.from_key(key).address for key in DEV_KEYS]


@pytest.fixture(scope="module")
def chain():
    with running_anvil(block_time=None) as url:  # a block per transaction; the test mines the rest
        w3 = connect(url)
        for member in range(1, MEMBERS + 1):
            send_transaction(w3, ANVIL_KEY_0, {"to": claimer_address(member), "value": 10 ** 18})
        yield url


_templates = iter(range(1, 1 << 20))


def quorum_deployment(url: str, members: int = MEMBERS):
    return deploy(url, ANVIL_KEY_0, epoch_length=EPOCH, consensus="quorum",
                  members=[claimer_address(i) for i in range(1, members + 1)],
                  member_roles=["manager"] + [f"validator {g}" for g in range(members - 1)],
                  template_hash="0x" + next(_templates).to_bytes(32, "big").hex())


def contracts(url: str, deployment):
    w3 = connect(url)
    return (w3, w3.eth.contract(address=deployment.consensus, abi=artifacts.abi("Quorum")),
            w3.eth.contract(address=deployment.application, abi=artifacts.abi("Application")))


def finished_epoch(w3: Web3) -> int:
    """Mine past the current epoch; return its last block (the `lastProcessedBlockNumber` of its claim)."""
    last = (w3.eth.block_number // EPOCH + 1) * EPOCH - 1
    w3.provider.make_request("anvil_mine", [hex(last + 1 - w3.eth.block_number + 1)])
    assert w3.eth.block_number > last
    return last


def vote(w3: Web3, quorum, app: str, member: int, last_block: int, root: bytes):
    return call_function(w3, claimer_key(member), quorum.functions.submitClaim(app, last_block, root))


def events(quorum, receipt) -> list[str]:
    found = [("ClaimSubmitted", e) for e in quorum.events.ClaimSubmitted().process_receipt(receipt, errors=DISCARD)]
    found += [("ClaimAccepted", e) for e in quorum.events.ClaimAccepted().process_receipt(receipt, errors=DISCARD)]
    return sorted(name for name, _ in found)


def revert_data(err: ContractLogicError) -> str:
    return str(err.data or err)


def test_the_quorum_is_the_canonical_factorys_and_nobody_can_swap_it(chain):
    deployment = quorum_deployment(chain)
    w3, quorum, app = contracts(chain, deployment)
    assert deployment.consensus_type == "QUORUM" and deployment.is_quorum
    assert deployment.contracts["QuorumFactory"] == CANONICAL_ADDRESSES["QuorumFactory"]
    factory = w3.eth.contract(address=deployment.contracts["QuorumFactory"], abi=artifacts.abi("QuorumFactory"))
    members = [m["address"] for m in deployment.members]
    assert factory.functions.calculateQuorumAddress(members, EPOCH, bytes(32)).call() == deployment.consensus
    assert quorum.functions.numOfValidators().call() == MEMBERS
    assert [quorum.functions.validatorById(i).call() for i in range(1, MEMBERS + 1)] == members
    assert quorum.functions.validatorId(w3.eth.account.from_key(ANVIL_KEY_0).address).call() == 0
    assert quorum.functions.getEpochLength().call() == EPOCH
    assert app.functions.getOutputsMerkleRootValidator().call() == deployment.consensus
    assert app.functions.owner().call() == ZERO_ADDRESS == deployment.owner
    assert deployment.member_role(members[0]) == "manager" and deployment.member_role(members[2]) == "validator 1"
    # the deployer (the old owner) cannot point the Application at a consensus it controls
    authority = deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH, template_hash="0x" + "ee" * 32).consensus
    with pytest.raises(ContractLogicError) as err:
        app.functions.migrateToOutputsMerkleRootValidator(authority).call({"from": deployment.deployer})
    assert OWNABLE_UNAUTHORIZED in revert_data(err.value)


def test_a_second_deploy_reuses_everything_and_the_file_round_trips(chain, tmp_path):
    first = quorum_deployment(chain)
    block = connect(chain).eth.block_number
    again = deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH, consensus="quorum",
                   members=[m["address"] for m in first.members], member_roles=[m["role"] for m in first.members],
                   template_hash=first.template_hash)
    assert again == first and connect(chain).eth.block_number == block  # nothing sent
    assert load(save(first, tmp_path / "q.json")) == first
    bound = deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH, consensus="quorum",
                   members=[m["address"] for m in first.members], member_accounts=[DEV_KEY_ADDRESSES[1]] * 3,
                   template_hash=first.template_hash)
    assert [m["role_address"] for m in bound.members] == [DEV_KEY_ADDRESSES[1]] * 3


@pytest.mark.parametrize("members, message", [([], "at least one member"),
                                              (["0x" + "11" * 20, "0x" + "11" * 20], "distinct"),
                                              (["not-an-address"], "not an address")])
def test_a_bad_member_list_is_refused_before_anything_is_sent(chain, members, message):
    block = connect(chain).eth.block_number
    with pytest.raises(ConfigError, match=message):
        deploy(chain, ANVIL_KEY_0, consensus="quorum", members=members)
    assert connect(chain).eth.block_number == block


def test_one_member_cannot_settle_and_the_majority_settles_once(chain):
    deployment = quorum_deployment(chain)
    w3, quorum, app = contracts(chain, deployment)
    address = deployment.application
    honest, forged = b"\x11" * 32, b"\x66" * 32
    last = finished_epoch(w3)

    assert events(quorum, vote(w3, quorum, address, 1, last, forged)) == ["ClaimSubmitted"]
    assert not quorum.functions.isOutputsMerkleRootValid(address, forged).call()
    assert events(quorum, vote(w3, quorum, address, 2, last, honest)) == ["ClaimSubmitted"]
    assert events(quorum, vote(w3, quorum, address, 3, last, honest)) == ["ClaimAccepted", "ClaimSubmitted"]
    assert quorum.functions.isOutputsMerkleRootValid(address, honest).call()
    assert not quorum.functions.isOutputsMerkleRootValid(address, forged).call()
    assert quorum.functions.numOfValidatorsInFavorOf(address, last, honest).call() == 2
    assert quorum.functions.numOfValidatorsInFavorOf(address, last, forged).call() == 1

    # the outvoted member cannot switch to the winning root, nor vote twice
    with pytest.raises(ContractLogicError) as err:
        quorum.functions.submitClaim(address, last, honest).call({"from": claimer_address(1)})
    assert NOT_FIRST_CLAIM in revert_data(err.value)
    # a member resending its own root changes nothing (a silent no-op in 2.2.0: the claimer never resends)
    receipt = vote(w3, quorum, address, 2, last, honest)
    assert events(quorum, receipt) == []
    assert quorum.functions.numOfValidatorsInFavorOf(address, last, honest).call() == 2
    # the deployer, anvil's account 0 (the Authority owner of a one-party run), is no member
    with pytest.raises(ContractLogicError, match="caller is not validator"):
        quorum.functions.submitClaim(address, last, forged).call({"from": deployment.deployer})


def test_a_late_vote_counts_without_a_second_acceptance(chain):
    deployment = quorum_deployment(chain)
    w3, quorum, _ = contracts(chain, deployment)
    root, last = b"\x22" * 32, finished_epoch(w3)
    vote(w3, quorum, deployment.application, 1, last, root)
    second = vote(w3, quorum, deployment.application, 2, last, root)
    assert events(quorum, second) == ["ClaimAccepted", "ClaimSubmitted"]
    assert events(quorum, vote(w3, quorum, deployment.application, 3, last, root)) == ["ClaimSubmitted"]
    assert quorum.functions.numOfValidatorsInFavorOf(deployment.application, last, root).call() == 3


def test_validity_is_per_root_so_an_empty_epoch_is_valid_before_its_majority(chain):
    """Why the claimer decides acceptance per epoch (votes or ClaimAccepted), never by isOutputsMerkleRootValid:
    an epoch without outputs repeats the previous cumulative root, which is already valid after one vote."""
    deployment = quorum_deployment(chain)
    w3, quorum, _ = contracts(chain, deployment)
    address, root = deployment.application, b"\x33" * 32
    first = finished_epoch(w3)
    vote(w3, quorum, address, 1, first, root)
    vote(w3, quorum, address, 2, first, root)
    empty = finished_epoch(w3)
    vote(w3, quorum, address, 1, empty, root)
    assert quorum.functions.isOutputsMerkleRootValid(address, root).call()
    assert quorum.functions.numOfValidatorsInFavorOf(address, empty, root).call() == 1  # not settled by a majority


def test_a_forged_root_paying_its_author_cannot_execute_while_the_honest_voucher_pays(chain):
    deployment = quorum_deployment(chain)
    w3, quorum, app = contracts(chain, deployment)
    address = deployment.application
    portal = w3.eth.contract(address=deployment.ether_portal, abi=artifacts.abi("EtherPortal"))
    call_function(w3, DEV_KEYS[2], portal.functions.depositEther(address, b""), value=3 * 10 ** 18)
    payee, liar = w3.eth.account.from_key(DEV_KEYS[3]).address, claimer_address(1)
    honest_outputs = [encode_notice(b"round 1"), encode_voucher(payee, 10 ** 18, b"")]
    forged_outputs = honest_outputs + [encode_voucher(liar, 2 * 10 ** 18, b"")]
    honest, forged = (OutputsTree([output_hash(o) for o in outs]) for outs in (honest_outputs, forged_outputs))
    last = finished_epoch(w3)
    vote(w3, quorum, address, 1, last, forged.root())  # the liar votes first
    vote(w3, quorum, address, 2, last, honest.root())
    vote(w3, quorum, address, 3, last, honest.root())

    before = w3.eth.get_balance(liar)
    with pytest.raises(ContractLogicError) as err:
        app.functions.executeOutput(forged_outputs[2], (2, forged.proof(2))).call({"from": liar})
    assert INVALID_OUTPUTS_MERKLE_ROOT in revert_data(err.value)
    payee_before = w3.eth.get_balance(payee)
    call_function(w3, DEV_KEYS[2], app.functions.executeOutput(honest_outputs[1], (1, honest.proof(1))))
    assert w3.eth.get_balance(payee) == payee_before + 10 ** 18
    assert w3.eth.get_balance(address) == 2 * 10 ** 18 and w3.eth.get_balance(liar) == before
