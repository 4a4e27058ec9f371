"""Who settled each epoch, read from L1 alone: `L1.consensus_info()`/`L1.claims()`, `fedrollup console votes`, and
the audit's Settle check, on anvil with the votes played straight from the members' claim keys (no node).

One Quorum history is shared by the module: two epochs with an Ether deposit each, both settled on the honest
root; in the first the validator of group 1 votes a forged root (dissenting), in the second it does not vote
(silent). The Authority tests deploy applications of their own.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from types import SimpleNamespace
from pathlib import Path

import pytest
from rich.console import Console
from web3 import Web3

from common.accounts import claimer_address, claimer_key
from contracts_config import artifacts
from contracts_config.deploy import ANVIL_KEY_0, ZERO_ADDRESS, deploy
from contracts_config.deployment import Deployment
from contracts_config.transactions import address_of, call_function, connect, send_transaction
from frontend_console.audit import (AuditFailure, AuditReport, check_consensus, rederive, settle,
                                     voteless_validators)
from frontend_console.views import votes_table
from node_fixtures import deposit_ether, running_anvil
from rollups_client.l1 import L1, ConsensusInfo, EpochClaims
from rollups_node.merkle import OutputsTree
from rollups_node.outputs import encode_voucher, output_hash

EPOCH = 5
ROLES = ["manager", "validator of group 0", "validator of group 1"]
MEMBERS = [claimer_address(i) for i in range(1, len(ROLES) + 1)]
FORGED = b"\x66" * 32
FRONTEND_CONSOLE = str(Path(sys.executable).parent / "frontend-console")  # the installed console script
_templates = iter(range(1, 1 << 20))


@pytest.fixture(scope="module")
def chain():
    with running_anvil(block_time=None) as url:  # a block per transaction; the tests mine the rest
        w3 = connect(url)
        for member in MEMBERS:
            send_transaction(w3, ANVIL_KEY_0, {"to": member, "value": 10 ** 18})
        yield url


def template() -> str:
    return "0x" + next(_templates).to_bytes(32, "big").hex()


def finish_epoch(w3: Web3) -> int:
    """Mine past the current epoch; return its last block (the `lastProcessedBlockNumber` of its claim)."""
    last = (w3.eth.block_number // EPOCH + 1) * EPOCH - 1
    w3.provider.make_request("anvil_mine", [hex(last + 1 - w3.eth.block_number)])
    assert w3.eth.block_number > last
    return last


def honest_root(deployment: Deployment) -> bytes:
    """The outputs root of every input so far, re-derived by the audit's own replay."""
    l1 = L1(deployment.rpc_url, deployment)
    expected, _ = rederive(l1.inputs(), deployment.ether_portal)
    return OutputsTree([output_hash(raw) for exp in expected for raw in exp.outputs]).root()


def submit(deployment: Deployment, key: str, last_block: int, root: bytes) -> None:
    w3 = connect(deployment.rpc_url)
    consensus = w3.eth.contract(address=deployment.consensus, abi=artifacts.abi(deployment.consensus_abi_name))
    call_function(w3, key, consensus.functions.submitClaim(deployment.application, last_block, root))


def settled_by_audit(deployment: Deployment) -> AuditReport:
    """The audit's Settle check alone (the node's outputs are not needed: it works from its own replay)."""
    l1 = L1(deployment.rpc_url, deployment)
    read_block = l1.block_number()
    inputs = l1.inputs()
    expected, _ = rederive(inputs, deployment.ether_portal)
    report = AuditReport()
    settle(l1, inputs, expected, read_block, report)
    return report


@dataclass
class Played:
    deployment: Deployment
    epochs: tuple[int, int]  # the last blocks of the two epochs
    roots: tuple[bytes, bytes]  # their honest roots


@pytest.fixture(scope="module")
def played(chain) -> Played:
    deployment = deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH, consensus="quorum", members=MEMBERS,
                        member_roles=ROLES, template_hash=template())
    w3 = connect(chain)
    epochs, roots = [], []
    for dissent in (True, False):
        deposit_ether(deployment, 10 ** 15)
        last, root = finish_epoch(w3), honest_root(deployment)
        submit(deployment, claimer_key(1), last, root)
        if dissent:
            submit(deployment, claimer_key(3), last, FORGED)
        submit(deployment, claimer_key(2), last, root)
        epochs.append(last)
        roots.append(root)
    return Played(deployment, tuple(epochs), tuple(roots))


def test_l1_reads_the_quorum_and_every_members_vote(played):
    l1 = L1(played.deployment.rpc_url, played.deployment)
    info = l1.consensus_info()
    assert info.type == "QUORUM" and info.validator == played.deployment.consensus
    assert info.members == tuple(MEMBERS) and info.majority == 2 and info.epoch_length == EPOCH
    assert info.app_owner == ZERO_ADDRESS and info.migrations == ()
    assert info.factory_code_matches and info.factory_predicts_validator
    (dissent, silent), (first, second) = played.epochs, played.roots
    claims = l1.claims()
    assert list(claims) == [dissent, silent]
    assert claims[dissent].accepted == [first]
    assert claims[dissent].votes == {MEMBERS[0]: first, MEMBERS[1]: first, MEMBERS[2]: FORGED}
    assert claims[silent].accepted == [second] and claims[silent].votes == {MEMBERS[0]: second, MEMBERS[1]: second}


def test_the_audit_settles_on_the_true_root_and_names_the_dissenting_and_the_silent_member(played):
    report = settled_by_audit(played.deployment)
    (dissent, silent), length = played.epochs, EPOCH
    assert (report.consensus, report.settled_epochs, report.dissenting_votes, report.silent_votes) == \
        ("QUORUM", 2, 1, 1)
    assert report.notes == [
        f"epoch {dissent // length}: validator of group 1 ({MEMBERS[2]}) voted 0x{FORGED.hex()}, not the settled "
        f"0x{played.roots[0].hex()}",
        f"epoch {silent // length}: validator of group 1 ({MEMBERS[2]}) did not vote"]
    assert report.verdict().startswith("AUDIT PASSED: ")
    assert report.verdict().endswith("; 2 epochs settled by the Quorum (1 dissenting vote, 1 silent)")


def test_the_audit_refuses_a_deployment_file_whose_members_are_not_the_quorums(played):
    l1 = L1(played.deployment.rpc_url, played.deployment)
    swapped = Deployment(**{**played.deployment.__dict__, "members": list(reversed(played.deployment.members))})
    with pytest.raises(AuditFailure, match="the Quorum's members on L1 .* are not the deployment's"):
        check_consensus(l1.consensus_info(), swapped)


def test_console_votes_prints_one_row_per_epoch(played, tmp_path):
    path = tmp_path / "deployment.json"
    path.write_text(played.deployment.to_json())
    shown = subprocess.run([FRONTEND_CONSOLE, "votes", "--deployment", str(path)], capture_output=True, text=True,
                           timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert shown.returncode == 0, shown.stderr
    (dissent, silent), (first, second) = played.epochs, played.roots
    rows = [line for line in shown.stdout.splitlines() if re.match(r"│ +\d+ │", line)]
    assert len(rows) == 2
    assert re.search(rf"│ +{dissent // EPOCH} │ {dissent - EPOCH + 1}–{dissent} +│ 0x{first.hex()[:8]}… +│ "
                     rf"2/3 \(needs 2\) +│ manager ✓, validator of group 0 ✓, validator of group 1 ✗ 0x66666666…",
                     rows[0]), rows[0]
    assert "validator of group 1 silent" in rows[1] and f"0x{second.hex()[:8]}…" in rows[1]
    as_json = json.loads(subprocess.run([FRONTEND_CONSOLE, "votes", "--deployment", str(path), "--json"],
                                        capture_output=True, text=True, timeout=120).stdout)
    assert [(e["epoch"], e["in_favour"], e["needs"]) for e in as_json] == [(dissent // EPOCH, 2, 2),
                                                                            (silent // EPOCH, 2, 2)]
    assert as_json[0]["members"][2] == {"member": MEMBERS[2], "role": "validator of group 1",
                                        "vote": "✗ 0x66666666…", "root": "0x" + FORGED.hex()}


def test_console_votes_says_in_one_line_when_the_deployment_or_the_chain_is_missing(played, tmp_path):
    missing = subprocess.run([FRONTEND_CONSOLE, "votes", "--deployment", str(tmp_path / "none.json")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"frontend-console: error: no deployment file at {tmp_path / 'none.json'}: run `fedrollup chain up` or "
        "`fedrollup chain deploy`"]
    path = tmp_path / "deployment.json"
    path.write_text(played.deployment.to_json())
    no_chain = subprocess.run([FRONTEND_CONSOLE, "votes", "--deployment", str(path), "--rpc", "http://127.0.0.1:9"],
                              capture_output=True, text=True, timeout=60)
    assert no_chain.returncode == 2
    assert no_chain.stderr.strip().splitlines() == [
        "frontend-console: error: no Ethereum JSON-RPC node answers at http://127.0.0.1:9"]


def test_votes_table_marks_each_members_vote_and_an_epoch_not_settled_yet():
    info = ConsensusInfo(validator="0x" + "aa" * 20, type="QUORUM", members=tuple(MEMBERS), epoch_length=10,
                         app_owner=ZERO_ADDRESS, migrations=())
    settled, pending = b"\xab\x12" * 16, b"\xcd" * 32
    claims = {39: EpochClaims(39, [settled], {MEMBERS[0]: settled, MEMBERS[1]: settled, MEMBERS[2]: FORGED}),
              49: EpochClaims(49, [], {MEMBERS[1]: pending})}
    out = io.StringIO()
    Console(file=out, width=300).print(votes_table(claims, info, dict(zip(MEMBERS, ROLES)).get))
    lines = [line for line in out.getvalue().splitlines() if re.match(r"│ +\d+ │", line)]
    assert re.sub(r" +", " ", lines[0]) == ("│ 3 │ 30–39 │ 0xab12ab12… │ 2/3 (needs 2) │ manager ✓, validator of "
                                            "group 0 ✓, validator of group 1 ✗ 0x66666666… │")
    assert re.sub(r" +", " ", lines[1]) == ("│ 4 │ 40–49 │ not settled │ 1/3 (needs 2) │ manager silent, validator "
                                            "of group 0 voted 0xcdcdcdcd…, validator of group 1 silent │")
    assert "the Quorum of 3 members" in out.getvalue() and "a root settles with 2 votes" in out.getvalue()


def authority_with_a_deposit(chain) -> tuple[Deployment, int, bytes]:
    """An Authority application owned by anvil's account 0, one Ether deposit in a finished epoch."""
    deployment = deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH, template_hash=template())
    deposit_ether(deployment, 10 ** 15)
    return deployment, finish_epoch(connect(chain)), honest_root(deployment)


def test_the_audit_catches_an_authority_that_settled_extra_outputs(chain):
    deployment, last, _ = authority_with_a_deposit(chain)
    l1 = L1(deployment.rpc_url, deployment)
    expected, _ = rederive(l1.inputs(), deployment.ether_portal)
    outputs = [raw for exp in expected for raw in exp.outputs]
    owner = address_of(ANVIL_KEY_0)
    drain = outputs + [encode_voucher(owner, 10 ** 15, b"")]  # the owner pays itself the deposit
    forged = OutputsTree([output_hash(raw) for raw in drain]).root()
    submit(deployment, ANVIL_KEY_0, last, forged)
    assert l1.claims()[last].accepted == [forged]
    with pytest.raises(AuditFailure) as failure:
        settled_by_audit(deployment)
    assert str(failure.value) == (
        f"epoch {last // EPOCH} (blocks {last - EPOCH + 1}–{last}): L1 settled the outputs root 0x{forged.hex()} "
        f"(voted by the Authority's owner ({owner})), but the outputs re-derived from L1's inputs give "
        f"0x{honest_root(deployment).hex()}")


def test_the_audit_accepts_an_authority_that_settled_the_true_root_and_fails_an_unsettled_epoch(chain):
    deployment, last, root = authority_with_a_deposit(chain)
    with pytest.raises(AuditFailure, match=rf"epoch {last // EPOCH} \(blocks .*\) has inputs but no claim accepted"):
        settled_by_audit(deployment)
    submit(deployment, ANVIL_KEY_0, last, root)
    report = settled_by_audit(deployment)
    assert (report.consensus, report.settled_epochs, report.notes) == ("AUTHORITY", 1, [])
    assert report.verdict().endswith("; 1 epoch settled by the Authority")


def test_the_audit_refuses_an_application_whose_validator_was_swapped(chain):
    deployment, _, _ = authority_with_a_deposit(chain)
    other = deploy(chain, ANVIL_KEY_0, epoch_length=EPOCH + 1).consensus  # another Authority of the same owner
    w3 = connect(chain)
    app = w3.eth.contract(address=deployment.application, abi=artifacts.abi("Application"))
    call_function(w3, ANVIL_KEY_0, app.functions.migrateToOutputsMerkleRootValidator(other))
    l1 = L1(deployment.rpc_url, deployment)
    assert l1.consensus_info().migrations == (other,)
    with pytest.raises(AuditFailure, match=f"settled by {other}, not by the deployment's Authority"):
        check_consensus(l1.consensus_info(), deployment)
    back = Deployment(**{**deployment.__dict__, "contracts": {**deployment.contracts, "Authority": other}})
    with pytest.raises(AuditFailure, match=rf"validator was changed after its deployment \(to {other}\)"):
        check_consensus(l1.consensus_info(), back)


def test_a_task_validator_outside_the_quorum_is_named_as_having_no_vote():
    member, outsider = "0x" + "aa" * 20, "0x" + "bb" * 20
    deployment = Deployment(name="t", chain_id=1, rpc_url="", application_name="a", deployment_block=0,
                            input_box_block=0, epoch_length=EPOCH, template_hash="0x" + "00" * 32, owner=ZERO_ADDRESS,
                            contracts={}, abis={}, consensus_type="QUORUM",
                            members=[{"address": "0x" + "11" * 20, "role": "validator of group 0",
                                      "role_address": Web3.to_checksum_address(member)}])
    state = SimpleNamespace(tasks={3: SimpleNamespace(task_id=3, seats=(member, outsider))})
    assert voteless_validators(state, deployment) == [
        f"task 3: the validator of group 1 ({outsider}) has no vote on settlement: it is no Quorum member"]
    unbound = Deployment(**{**deployment.__dict__, "members": [{"address": "0x" + "11" * 20, "role": "member 1"}]})
    assert voteless_validators(state, unbound) == []  # a file that does not bind members to role accounts
