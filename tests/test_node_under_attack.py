"""Every attack of issue 11, in turn, on one running `fedrollup node` (anvil, the official contracts, the real
backend) with a recorded federated history and an Ether deposit; then the auditors' audit.

After each attack the node answers `cartesi_getChainId`; after all of them nothing is lost: the audit
re-derives every input from L1 to the same outputs and proves each on L1, the Application holds the Ether the
rules account for, and one more honest input is processed (the node is not wedged). The 50 silent connections
stay open while the other attacks run (the node serves them meanwhile) and must be closed by the node at its
request timeout.
"""
from __future__ import annotations

import re
import time

import pytest
import requests

from attack_fixtures import (ONE_ETHER, Outsider, assert_all_closed_by_the_server, assert_beyond_sqlite_answered,
                             assert_deep_array_refused, assert_huge_batch_refused, chain_id_of, ether_the_rules_hold,
                             open_silent_connections, wait_seconds_since)
from common import accounts
from console_fixtures import record_history
from contracts_config.transactions import connect
from dapp.schema import Withdraw
from flower_sim.config import SimulationConfig
from flower_sim.rollup_roles import RollupRecorder
from frontend_console.audit import audit
from node_fixtures import (DAPP_BACKEND, add_input, deposit_ether, fresh_deployment, node_process, processed,
                           running_anvil, wait_until)
from rollups_client.l1 import L1
from rollups_client.node import NodeClient
from rollups_node.server import REQUEST_TIMEOUT

pytestmark = pytest.mark.slow
CFG = SimulationConfig(trainers=4, validators=2, rounds=2, model="logreg")
DEPOSITOR = accounts.private_key(9)  # no role in the history: its balance is the deposit alone
THIEF = accounts.private_key(8)
MALFORMED_INSPECTS = ["task/" + "9" * 5000, "task/²"]  # int() refuses > 4,300 digits; "²".isdigit() is True


def rollup_http_port(log_text: str) -> int:
    """The port of the backend's rollup HTTP API, from the node's log (which shows it without the secret)."""
    found = re.findall(r"rollup HTTP API at http://127\.0\.0\.1:(\d+)\b(\S*)", log_text)
    assert found and found[-1][1] == "", f"no secret-free rollup HTTP API address in the node's log: {found}"
    return int(found[-1][0])


def inspect_status(url: str, path: str) -> str:
    answer = requests.post(url + "/inspect/fedrollup", data=path.encode(), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["status"]


def test_every_attack_in_turn_leaves_the_node_serving_and_the_audit_passing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with running_anvil() as chain:
        deployment = fresh_deployment(chain, epoch_length=4)
        with node_process(deployment, tmp_path, backend=DAPP_BACKEND) as (url, process):
            node, l1 = NodeClient.at(url, deployment.application), L1(chain, deployment)
            chain_id = hex(connect(chain).eth.chain_id)
            record_history(RollupRecorder(CFG, deployment, node), CFG, run_dir)
            deposit_ether(deployment, ONE_ETHER, key=DEPOSITOR)
            wait_until(lambda: processed(url, "fedrollup") == len(l1.inputs()), 60, "the deposit processed")
            before, funded = [o.raw for o in node.outputs()], l1.balance(deployment.application)

            def still_serving(after: str) -> None:
                assert process.poll() is None, f"the node died after {after} ({process.returncode})"
                assert chain_id_of(url) == chain_id, f"after {after}"

            silent_since = time.monotonic()
            silent = open_silent_connections(int(url.rsplit(":", 1)[1]))
            try:
                still_serving("50 connections sent headers and no body")

                assert_deep_array_refused(url)
                still_serving("a JSON array nested 100,000 deep")

                assert_huge_batch_refused(url)
                still_serving("a batch of 400 × listOutputs(limit 10000)")

                for path in MALFORMED_INSPECTS:
                    assert inspect_status(url, path) == "Rejected"  # was Exception
                    still_serving(f"inspect {path[:12]}…")

                assert_beyond_sqlite_answered(url)
                still_serving("offsets and indices >= 2^63")

                outsider = Outsider(rollup_http_port((tmp_path / "node.log").read_text()), L1.address(THIEF))
                inputs = len(l1.inputs())
                outsider.start()
                try:  # the outsider POSTs /voucher, /exception, … while the node advances a deposit
                    deposit_ether(deployment, ONE_ETHER, key=DEPOSITOR)
                    wait_until(lambda: processed(url, "fedrollup") == inputs + 1, 60, "the deposit under attack")
                    wait_until(lambda: len(outsider.answers) >= 50, 20, "50 requests by the outsider")
                finally:
                    outsider.halt()
                assert set(outsider.answers) == {404}  # without the secret path: nothing to find
                log = (tmp_path / "node.log").read_text()
                assert "request(s) to the rollup HTTP API outside its secret path" in log  # the node saw them
                still_serving("an outsider POSTing to the rollup HTTP API during an input")

                wait_seconds_since(silent_since, REQUEST_TIMEOUT + 1)
                assert_all_closed_by_the_server(silent)
                still_serving("the silent connections timed out")
            finally:
                for sock in silent:
                    sock.close()

            report = audit(node, l1, run_dir=run_dir)
            assert report.inputs == inputs + 1 and report.accepted == report.inputs
            assert report.outputs == report.proven == len(before) + 1  # the second deposit's DepositCredited
            assert [o.raw for o in node.outputs()][:len(before)] == before
            assert report.files_checked == CFG.rounds * (1 + CFG.validators)
            assert node.input_statuses()[inputs] == "ACCEPTED"
            assert l1.balance(deployment.application) == funded + ONE_ETHER == ether_the_rules_hold(l1)

            add_input(deployment, Withdraw().encode(), key=DEPOSITOR)  # one more honest input: its two deposits
            wait_until(lambda: processed(url, "fedrollup") == inputs + 2, 60, "the honest input after the attacks")
            assert node.input_status(inputs + 1) == "ACCEPTED"
            vouchers = [o for o in node.outputs(input_index=inputs + 1) if o.type == "Voucher"]
            assert [(v.destination.lower(), v.value) for v in vouchers] == [(L1.address(DEPOSITOR), 2 * ONE_ETHER)]
            assert l1.balance(deployment.application) == ether_the_rules_hold(l1)  # the voucher is owed, unpaid
