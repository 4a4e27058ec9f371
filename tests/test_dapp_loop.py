"""The backend loop over the rollup HTTP API, against a small rollup-server fake: outputs, rejects,
202 retries, exceptions, inspect routes, and `python -m dapp` as a child process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from dapp_fixtures import (MILLI, PORTAL, PUBLISHER, STRANGER, TEST_SET, FakeRollupServer, close, report,
                           task_message, trainer, validator, validator_model)

import dapp.backend
from dapp import qmodel
from dapp.backend import Backend, run
from dapp.portal import encode_ether_deposit
from dapp.rollup_client import RollupClient, RollupServerError, from_hex
from dapp.schema import (ROLE_TRAINER, ROLE_VALIDATOR, ModelChunk, Register, RewardPaid, TaskCreated, TestSetChunk,
                         Withdraw, Withdrawal, decode_notice, encode_deposit_data)


@pytest.fixture
def server():
    fake = FakeRollupServer()
    yield fake
    fake.close()


def queue_one_round(server: FakeRollupServer) -> int:
    """A 1-group, 1-round task with one trainer, played to the end (the close after the contest window's 5 blocks),
    then a withdrawal."""
    model = validator_model(0, 1)
    inputs = [
        (PUBLISHER, task_message(2500, 1, 1, 4 * MILLI, 3 * MILLI, 1 * MILLI)),
        (PUBLISHER, TestSetChunk(1, 0, 1, TEST_SET)),
        (PORTAL, encode_ether_deposit(PUBLISHER, 5 * MILLI, encode_deposit_data(1))),
        (validator(0), Register(1, ROLE_VALIDATOR, 0)),
        (trainer(0, 0), Register(1, ROLE_TRAINER, 0)),
        (validator(0), report(1, 1, 9000, {trainer(0, 0): 8000}, model=model, domain=server.DOMAIN)),
        (validator(0), ModelChunk(1, 1, qmodel.digest(model), 0, 1, model)),
        (PUBLISHER, close(1, 1)),
        (trainer(0, 0), Withdraw()),
    ]
    for i, (sender, payload) in enumerate(inputs):
        server.add_advance(sender, payload, i, block=100 + i + (10 if i >= 7 else 0))
    return len(inputs)


def serve(server: FakeRollupServer, state=None) -> Backend:
    backend = Backend(RollupClient(server.url, exit_when_idle=True), PORTAL, state)
    run(backend)
    return backend


def test_a_round_through_the_http_api_posts_notices_and_a_voucher(server):
    n = queue_one_round(server)
    backend = serve(server)
    assert server.finish_statuses() == ["accept"] * (n + 1)
    notices = [decode_notice(from_hex(b["payload"])) for b in server.bodies("/notice")]
    assert isinstance(notices[0], TaskCreated)
    assert [type(x).__name__ for x in notices if isinstance(x, RewardPaid)] == ["RewardPaid"]
    assert notices[-1] == Withdrawal(trainer(0, 0), 3 * MILLI)
    (voucher,) = server.bodies("/voucher")
    assert voucher == {"destination": trainer(0, 0), "value": "0x" + f"{3 * MILLI:064x}", "payload": "0x"}
    assert backend.state.balance(trainer(0, 0)) == 0


def test_a_rejected_input_gets_one_error_report_and_no_outputs(server):
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 0)
    server.add_advance(STRANGER, task_message(0, 1, 1, 0, 0, 0), 1)
    backend = serve(server)
    assert server.finish_statuses() == ["accept", "accept", "reject"]
    assert server.routes() == ["/finish", "/notice", "/finish", "/report", "/finish"]
    assert json.loads(from_hex(server.bodies("/report")[0]["payload"])) == {
        "error": "MAD 0 bps is not in (0, 10000)", "input_index": 1}
    assert backend.state.tasks[1].publisher == PUBLISHER


def test_finish_is_retried_on_202(server):
    server.idle_202s, server.when_empty = 3, "fail"
    server._idle_left = 3
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 0)
    backend = Backend(RollupClient(server.url), PORTAL)
    with pytest.raises(RollupServerError, match="500"):
        run(backend)
    assert server.finish_statuses()[:5] == ["accept"] * 5  # 3 x 202, the request, then the status
    assert 1 in backend.state.tasks


def test_failure_while_posting_becomes_an_exception_and_state_stays(server):
    server.fail_routes["/notice"] = 1
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 0)
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 1)
    backend = serve(server)
    (exc,) = server.bodies("/exception")
    assert "internal error on input 0" in from_hex(exc["payload"]).decode()
    assert sorted(backend.state.tasks) == [1], "the failed input left no trace (its id is free again); the next one went through"


def test_internal_error_in_the_state_machine_is_an_exception_for_that_input_only(server, monkeypatch):
    real_apply = dapp.backend.apply

    def apply_that_breaks_on_withdraw(state, adv, portal):
        if adv.payload == Withdraw().encode():
            raise ZeroDivisionError("simulated bug")
        return real_apply(state, adv, portal)

    monkeypatch.setattr(dapp.backend, "apply", apply_that_breaks_on_withdraw)
    server.add_advance(STRANGER, Withdraw(), 0)
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 1)
    backend = serve(server)
    (exc,) = server.bodies("/exception")
    assert "ZeroDivisionError: simulated bug" in from_hex(exc["payload"]).decode()
    assert 1 in backend.state.tasks


def test_malformed_request_metadata_is_an_exception_not_a_crash(server):
    server.queue.append({"request_type": "advance_state", "data": {"metadata": {}, "payload": "0x"}})
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 1)
    backend = serve(server)
    assert len(server.bodies("/exception")) == 1 and 1 in backend.state.tasks


def inspect_reports(server: FakeRollupServer) -> list[dict]:
    return [json.loads(from_hex(b["payload"])) for b in server.bodies("/report")]


def test_inspect_routes_answer_in_json(server):
    n = queue_one_round(server)
    for path in ("task/1", "stakes/1", "rounds/1?from=1&to=1", "rounds/1?from=2", "producer/1",
                 f"balance/{PUBLISHER}", "nonsense/1", "task/9", "rounds/1?limit=3"):
        server.add_inspect(path)
    serve(server)
    task, stakes, rounds, no_rounds, producer, balance, *errors = inspect_reports(server)
    assert task["finished"] and task["escrow_wei"] == "0" and task["required_escrow_wei"] == str(5 * MILLI)
    assert [p["role"] for p in stakes["participants"]] == ["validator", "trainer"]
    assert stakes["participants"][1]["stake_wei"] == str(3 * MILLI)
    assert stakes["participants"][1]["balance_wei"] == "0", "the trainer withdrew"
    (r1,) = rounds["rounds"]
    assert (r1["global_accuracy_bps"], r1["groups"][0]["positives"], r1["rewarded_group"]) == (10_000, 1, 0)
    assert (r1["groups"][0]["reported_accuracy_bps"], r1["groups"][0]["public_accuracy_bps"]) == (9000, 10_000)
    assert no_rounds["rounds"] == []
    assert producer == {"task_id": 1, "finished": True, "round": None, "producer": None, "stake_wei": None,
                        "report_deadline": None, "turns": [], "open": []}
    assert balance["balance_wei"] == str(5 * MILLI - 3 * MILLI - 1 * MILLI)  # refund of the unspent escrow
    assert [e["error"].split(";")[0] for e in errors] == [
        "unknown inspect path 'nonsense/1'", "task 9 does not exist", "unknown filter(s) limit"]
    assert server.finish_statuses()[n + 1:] == ["accept"] * 6 + ["reject"] * 3


def test_python_m_dapp_serves_the_rollup_api_as_a_child_process():
    fake = FakeRollupServer(when_empty="fail")
    try:
        fake.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 0)
        fake.add_advance(STRANGER, b"\x00\x00\x00\x00", 1)
        env = dict(os.environ, ROLLUP_HTTP_SERVER_URL=fake.url)
        proc = subprocess.run([sys.executable, "-m", "dapp"], env=env, capture_output=True, text=True,
                              timeout=60)
    finally:
        fake.close()
    assert proc.returncode == 1 and "stopping" in proc.stderr  # the fake ends with a 500 on /finish
    lines = proc.stderr.splitlines()
    assert any("input 0 from 0x000000…: CreateTask 1" in line and "accepted" in line for line in lines)
    assert any("input 1 from" in line and "rejected — unknown input tag 0x00000000" in line for line in lines)
    assert fake.finish_statuses()[:3] == ["accept", "accept", "reject"]


def test_junk_requests_from_the_server_do_not_stop_the_loop(server):
    junk = [{"request_type": "advance_state", "data": []},
            {"request_type": "advance_state", "data": {"metadata": {"input_index": 0}, "payload": "0x"}},
            {"request_type": "advance_state"},
            {"request_type": "inspect_state", "data": {"payload": "0xzz"}},
            {"request_type": "inspect_state", "data": {"payload": "0xff"}},
            {"request_type": "inspect_state", "data": None},
            {"request_type": "shutdown"},
            ["not", "an", "object"]]
    server.queue.extend(junk)
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 1)
    backend = serve(server)
    assert 1 in backend.state.tasks, "the valid input after the junk was processed"
    assert server.finish_statuses() == ["accept"] + ["reject"] * len(junk) + ["accept"]
    assert len(server.bodies("/exception")) == 3
    errors = [json.loads(from_hex(b["payload"]))["error"] for b in server.bodies("/report")]
    assert len(errors) == 3 and all(e.startswith("inspect payload is not a UTF-8 path") for e in errors)


@pytest.mark.parametrize("path", ["task/" + "9" * 5000, "task/" + "9" * 200, "task/²", "stakes/١", "producer/-1",
                                  "rounds/1?from=" + "7" * 30, "rounds/1?to=³", "/" * 300])
def test_every_malformed_inspect_path_is_a_clean_rejection(server, path):
    """A 5,000-digit id (int() refuses > 4,300 digits) and `task/²` ("²".isdigit()) raised: EXCEPTION."""
    server.add_advance(PUBLISHER, task_message(2500, 1, 1, 0, 0, 0), 0)
    server.add_inspect(path)
    serve(server)
    assert server.finish_statuses()[-2:] == ["accept", "reject"]  # the task created, the inspect rejected
    assert not server.bodies("/exception")
    (error,) = inspect_reports(server)
    assert len(error["error"]) < 400
