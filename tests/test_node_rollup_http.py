"""The rollup HTTP API v2 the node serves to the backend: shapes, status codes, global output indices."""
from __future__ import annotations

import threading

import pytest
import requests

from rollups_node.outputs import encode_notice, encode_voucher
from rollups_node.rollup_http import RollupHttpServer, Session


@pytest.fixture
def server():
    srv = RollupHttpServer(0, finish_timeout=0.3)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def advance(index: int = 0) -> dict:
    return {"request_type": "advance_state",
            "data": {"metadata": {"chain_id": 31337, "app_contract": "0x" + "ab" * 20, "msg_sender": "0x" + "cd" * 20,
                                  "block_number": 7, "block_timestamp": 1700000000, "prev_randao": "0x" + "00" * 32,
                                  "input_index": index},
                     "payload": "0x6869"}}


def test_finish_answers_202_when_no_request_arrives(server):
    reply = requests.post(server.url + "/finish", json={"status": "accept"})
    assert reply.status_code == 202
    assert server.backend_waiting.is_set()


def test_finish_rejects_an_unknown_status_with_400(server):
    assert requests.post(server.url + "/finish", json={"status": "maybe"}).status_code == 400
    assert requests.post(server.url + "/finish", data=b"not json").status_code == 400


def test_an_advance_collects_outputs_with_global_indices_and_the_finish_status(server):
    session = Session(advance(3), first_output_index=41)
    server.submit(session)
    request = requests.post(server.url + "/finish", json={"status": "accept"})
    assert request.status_code == 200 and request.json() == advance(3)
    notice = requests.post(server.url + "/notice", json={"payload": "0xbeef"})
    assert notice.status_code == 201 and notice.json() == {"index": 41}
    voucher = requests.post(server.url + "/voucher",
                            json={"destination": "0x" + "11" * 20, "value": "0x0a", "payload": "0x"})
    assert voucher.status_code == 201 and voucher.json() == {"index": 42}
    no_value = requests.post(server.url + "/voucher", json={"destination": "0x" + "11" * 20, "payload": "0x"})
    assert no_value.status_code == 201 and no_value.json() == {"index": 43}
    report = requests.post(server.url + "/report", json={"payload": "0x01"})
    assert report.status_code == 202 and report.content == b""
    assert requests.post(server.url + "/finish", json={"status": "reject"}).status_code == 202
    assert session.done.is_set() and session.status == "reject"
    assert session.outputs == [encode_notice(b"\xbe\xef"), encode_voucher("0x" + "11" * 20, 10, b""),
                               encode_voucher("0x" + "11" * 20, 0, b"")]
    assert session.reports == [b"\x01"]


@pytest.mark.parametrize("route, body", [
    ("/notice", {"payload": "beef"}),                     # no 0x prefix
    ("/notice", {"payload": "0xabc"}),                    # odd number of digits
    ("/voucher", {"destination": "0x1234", "payload": "0x"}),
    ("/voucher", {"destination": "0x" + "11" * 20, "value": "0x" + "f" * 65, "payload": "0x"}),
    ("/delegate-call-voucher", {"destination": "nope", "payload": "0x"}),
])
def test_malformed_outputs_get_400(server, route, body):
    server.submit(Session(advance()))
    requests.post(server.url + "/finish", json={"status": "accept"})
    assert requests.post(server.url + route, json=body).status_code == 400


def test_inspect_cannot_emit_notices_but_can_report_and_exception_ends_it(server):
    session = Session({"request_type": "inspect_state", "data": {"payload": "0x"}})
    server.submit(session)
    requests.post(server.url + "/finish", json={"status": "accept"})
    assert requests.post(server.url + "/notice", json={"payload": "0x01"}).status_code == 400
    assert requests.post(server.url + "/report", json={"payload": "0x02"}).status_code == 202
    assert requests.post(server.url + "/exception", json={"payload": "0x6f6f7073"}).status_code == 202
    assert session.status == "exception" and session.exception == b"oops" and session.reports == [b"\x02"]
