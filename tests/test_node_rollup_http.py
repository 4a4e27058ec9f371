"""The rollup HTTP API v2 the node serves to the backend: shapes, status codes, global output indices, as strict
as the spec (rollup.yaml) and the real rollup-http-server (machine-guest-tools 0.17.0), reachable only under
the per-run secret path the backend is given."""
from __future__ import annotations

import json
import logging
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from dapp.rollup_client import RollupClient, to_uint256
from node_fixtures import ECHO_BACKEND
from rollups_node.advancer import Advancer
from rollups_node.inspector import INSPECT_STATUS
from rollups_node.machine import HostMachine
from rollups_node.merkle import OutputsTree
from rollups_node.model import Application, Input
from rollups_node.outputs import encode_notice, encode_voucher, unpack_output
from rollups_node.rollup_http import RollupHttpServer, Session, refusal
from rollups_node.sqlite_repository import SqliteRepository
from rollups_node.rollup_http_schema import (INDEX_RESPONSE_VALIDATOR, MAX_BODY_BYTES, MAX_OUTPUTS,
                                             MAX_PAYLOAD_BYTES, MAX_REPORTS, ROLLUP_REQUEST_VALIDATOR,
                                             TX_BUFFER_BYTES)

DEST = "0x" + "11" * 20
ZERO = "0x" + "00" * 32
MILLI_ETHER = 10**15  # 0x38d7ea4c68000: 13 hex digits


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


def in_advance(server: RollupHttpServer, first_output_index: int = 0) -> Session:
    """Hand the backend an advance and take it, as the backend's /finish does; return the session."""
    session = Session(advance(), first_output_index)
    server.submit(session)
    assert requests.post(server.url + "/finish", json={"status": "accept"}).status_code == 200
    return session


def test_the_url_holds_a_secret_path_that_differs_per_server(server):
    other = RollupHttpServer(0)
    try:
        assert server.url.startswith(server.address + "/") and len(server.url) - len(server.address) > 40
        assert other.url[len(other.address):] != server.url[len(server.address):]
    finally:
        other.server_close()


def test_finish_answers_202_when_no_request_arrives(server):
    reply = requests.post(server.url + "/finish", json={"status": "accept"})
    assert reply.status_code == 202
    assert server.backend_waiting.is_set()


def test_finish_rejects_an_unknown_status_with_400_in_the_real_servers_words(server):
    reply = requests.post(server.url + "/finish", json={"status": "maybe"})
    assert (reply.status_code, reply.text) == (400, "status must be 'accept' or 'reject'")
    assert requests.post(server.url + "/finish", data=b"not json").status_code == 400
    assert not server.backend_waiting.is_set()  # a refused /finish is no finish


def test_an_advance_collects_outputs_with_global_indices_and_the_finish_status(server):
    session = Session(advance(3), first_output_index=41)
    server.submit(session)
    request = requests.post(server.url + "/finish", json={"status": "accept"})
    assert request.status_code == 200 and request.json() == advance(3)
    assert not list(ROLLUP_REQUEST_VALIDATOR.iter_errors(request.json()))
    notice = requests.post(server.url + "/notice", json={"payload": "0xbeef"})
    assert notice.status_code == 201 and notice.json() == {"index": 41}
    assert not list(INDEX_RESPONSE_VALIDATOR.iter_errors(notice.json()))
    voucher = requests.post(server.url + "/voucher",
                            json={"destination": DEST, "value": "0x" + f"{10:064x}", "payload": "0x"})
    assert voucher.status_code == 201 and voucher.json() == {"index": 42}
    checksum_free = requests.post(server.url + "/voucher",  # any case: the server hex-decodes, no checksum
                                  json={"destination": "0x" + "aB" * 20, "value": ZERO, "payload": "0x"})
    assert checksum_free.status_code == 201 and checksum_free.json() == {"index": 43}
    report = requests.post(server.url + "/report", json={"payload": "0x01"})
    assert report.status_code == 202 and report.content == b""
    assert requests.post(server.url + "/finish", json={"status": "reject"}).status_code == 202
    assert session.done.is_set() and session.status == "reject"
    assert session.outputs == [encode_notice(b"\xbe\xef"), encode_voucher(DEST, 10, b""),
                               encode_voucher("0x" + "ab" * 20, 0, b"")]
    assert session.reports == [b"\x01"]


def test_a_withdraw_of_a_milli_ether_from_the_backends_client_is_a_32_byte_value(server):
    """The voucher bug: `hex(10**15)` has 13 digits, which the real server's hex decoder refuses."""
    session = in_advance(server, first_output_index=5)
    odd = requests.post(server.url + "/voucher", json={"destination": DEST, "value": hex(MILLI_ETHER), "payload": "0x"})
    assert (odd.status_code, odd.text) == (400, "unable to insert voucher, error details: 'Odd number of digits'")
    assert RollupClient(server.url).voucher(DEST, MILLI_ETHER) == 5
    assert unpack_output(session.outputs[0]).value == MILLI_ETHER


@given(st.integers(0, 2**256 - 1))
def test_every_value_the_backend_can_send_is_on_the_spec_and_means_the_same(value):
    body = {"destination": DEST, "value": to_uint256(value), "payload": "0x"}
    assert refusal("/voucher", body) is None and int(body["value"], 16) == value


@pytest.mark.parametrize("value", [-1, 2**256])
def test_a_value_beyond_uint256_is_not_sent(value):
    with pytest.raises(ValueError, match="uint256"):
        to_uint256(value)


VALUE = {"destination": DEST, "payload": "0x"}


@pytest.mark.parametrize("route, body, words", [
    # the real server's own refusals, in its words
    ("/notice", {"payload": "0xabc"},
     "unable to insert notice, error details: 'rollup error: Error decoding notice payload, payload must be in "
     "Ethereum hex binary format'"),
    ("/notice", {"payload": "0x" + "zz"}, None),
    ("/notice", {"payload": ""}, None),  # the real server's handler would panic slicing it
    ("/notice", {}, "Payload error: Json deserialize error: missing field `payload`"),
    ("/notice", {"payload": 7}, "Payload error: Json deserialize error: invalid type: integer, expected a string"),
    ("/notice", [], None),
    ("/voucher", {"destination": "0x1234", "value": ZERO, "payload": "0x"}, "address not valid"),
    ("/voucher", {"destination": "0X" + "11" * 20, "value": ZERO, "payload": "0x"}, "address not valid"),
    ("/voucher", {"destination": "0x" + "1" * 39 + "g", "value": ZERO, "payload": "0x"}, "address not valid"),
    ("/voucher", {**VALUE, "value": "0x38d7ea4c68000"},
     "unable to insert voucher, error details: 'Odd number of digits'"),
    ("/voucher", {**VALUE, "value": "0x" + "f" * 65}, "Validation errors in fields:\n\tvalue: regex"),
    ("/voucher", {**VALUE, "value": "0x"}, "Validation errors in fields:\n\tvalue: regex"),
    ("/voucher", {**VALUE, "value": ZERO, "payload": "0x0"}, None),
    ("/delegate-call-voucher", {"destination": "nope", "payload": "0x"}, "address not valid"),
    ("/report", {"payload": "0x1"}, None),
    ("/exception", {"payload": "0x1"}, None),
    ("/finish", {"status": 1}, None),
    ("/finish", {}, "Payload error: Json deserialize error: missing field `status`"),
    ("/notice", {"payload": "0x01\n"}, None),  # '$' of a Python regex matches before a final newline
    ("/voucher", {**VALUE, "destination": DEST + "\n", "value": ZERO}, "address not valid"),
    ("/voucher", {**VALUE, "value": ZERO + "\n"}, "Validation errors in fields:\n\tvalue: regex"),
    # accepted by the real server, refused by the spec (rollup.yaml)
    ("/notice", {"payload": "zz6869"}, None),  # the real server drops the first two characters unchecked
    ("/voucher", {**VALUE, "value": "0x0a"}, None),  # the spec's value is exactly 32 bytes
    ("/voucher", {**VALUE}, "Payload error: Json deserialize error: missing field `value`"),  # and required
])
def test_malformed_bodies_get_400_and_change_nothing(server, route, body, words):
    session = in_advance(server)
    reply = requests.post(server.url + route, json=body)
    assert reply.status_code == 400 and reply.headers["Content-Type"] == "text/plain"
    if words:
        assert reply.text == words
    assert session.outputs == [] and session.reports == [] and not session.done.is_set()
    assert server.current is session


@pytest.mark.parametrize("raw, words", [
    (b'{"payload": "0x01", "payload": "0x02"}', "Payload error: Json deserialize error: duplicate field `payload`"),
    (b'{"payload": NaN}', None),
    (b"[" * 100_000 + b"]" * 100_000, "Payload error: Json deserialize error: recursion limit exceeded"),
    (b'{"payload": "0x01", "x": ' + b"[" * 129 + b"]" * 129 + b"}", None),
    (b'{"payload": "0x\xff"}', None),
    (b"", None),
])
def test_json_the_real_server_would_not_read_gets_400(server, raw, words):
    session = in_advance(server)
    reply = requests.post(server.url + "/notice", data=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400 and (words is None or reply.text == words)
    assert session.outputs == []
    assert requests.post(server.url + "/notice", json={"payload": "0x01"}).status_code == 201  # still serving


def test_nesting_inside_strings_and_unknown_fields_are_fine(server):
    session = in_advance(server)
    body = {"payload": "0x01", "note": "[" * 500, "extra": [[1]]}
    assert requests.post(server.url + "/notice", json=body).status_code == 201
    assert session.outputs == [encode_notice(b"\x01")]


def test_a_body_that_is_not_json_by_content_type_gets_400(server):
    in_advance(server)
    reply = requests.post(server.url + "/notice", data=b'{"payload": "0x01"}', headers={"Content-Type": "text/plain"})
    assert (reply.status_code, reply.text) == (400, "Payload error: Content type error")


def test_a_body_over_5_mib_is_refused_unread(server):
    session = in_advance(server)
    with socket.create_connection(server.server_address, timeout=5) as conn:
        conn.sendall(f"POST {server.prefix}/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
        answer = b"".join(iter(lambda: conn.recv(4096), b"")).decode()  # until the server closes
    assert answer.startswith("HTTP/1.1 400") and "Connection: close" in answer
    assert f"JSON payload ({MAX_BODY_BYTES + 1} bytes) is larger than allowed (limit: 5242880 bytes)." in answer
    assert session.reports == []


@pytest.mark.parametrize("length", ["9" * 5000, "\u00b2", "-1", "0x10"])
def test_a_content_length_that_is_no_length_gets_400(server, length):
    session = in_advance(server)
    with socket.create_connection(server.server_address, timeout=5) as conn:
        conn.sendall(f"POST {server.prefix}/report HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
                     .encode())
        assert b"".join(iter(lambda: conn.recv(4096), b"")).startswith(b"HTTP/1.1 400")
    assert session.reports == [] and requests.post(server.url + "/report", json={"payload": "0x"}).status_code == 202


def test_outputs_must_fit_the_machines_2_mib_tx_buffer(server):
    session = in_advance(server)
    fits = (TX_BUFFER_BYTES - 4 - 32 - 32) // 32 * 32  # Notice(bytes): selector, offset, length, padded bytes
    assert fits == MAX_PAYLOAD_BYTES["/notice"] == 2_097_056
    too_big = requests.post(server.url + "/notice", json={"payload": "0x" + "00" * (fits + 1)})
    assert (too_big.status_code, too_big.text) == (400, "unable to insert notice, error details: 'rollup error: "
                                                        "IOCTL_ROLLUP_WRITE_NOTICE returned error -105' (-ENOBUFS: "
                                                        "a payload of 2,097,057 bytes; at most 2,097,056 fit the "
                                                        "machine's 2 MiB tx buffer on this route)")
    assert requests.post(server.url + "/notice", json={"payload": "0x" + "00" * fits}).status_code == 201
    assert len(session.outputs) == 1 and len(session.outputs[0]) == TX_BUFFER_BYTES - 28
    assert requests.post(server.url + "/report", json={"payload": "0x" + "00" * TX_BUFFER_BYTES}).status_code == 202
    assert requests.post(server.url + "/report",
                         json={"payload": "0x" + "00" * (TX_BUFFER_BYTES + 1)}).status_code == 400


@pytest.mark.parametrize("route,largest", [("/voucher", 2_096_992), ("/delegate-call-voucher", 2_097_024)])
def test_a_voucher_payload_fits_the_tx_buffer_with_its_head_words(server, route, largest):
    """libcmt (machine-guest-tools v0.17.1 rollup.c) writes the call encoding, payload padded to 32 bytes."""
    session = in_advance(server)
    body = {"destination": DEST, "value": ZERO} if route == "/voucher" else {"destination": DEST}
    assert MAX_PAYLOAD_BYTES[route] == largest
    too_big = requests.post(server.url + route, json={**body, "payload": "0x" + "00" * (largest + 1)})
    assert too_big.status_code == 400 and too_big.text.startswith(
        "unable to insert voucher, error details: 'rollup error: IOCTL_ROLLUP_WRITE_OUTPUT returned error -105' "
        f"(-ENOBUFS: a payload of {largest + 1:,} bytes; at most {largest:,} fit")
    assert session.outputs == []
    assert requests.post(server.url + route, json={**body, "payload": "0x" + "00" * largest}).status_code == 201
    assert len(session.outputs[0]) == TX_BUFFER_BYTES - 28  # 28 bytes of padding short of the buffer's end


def test_output_65537_ends_the_input_outputs_limit_exceeded_as_the_node_stops_the_machine(server):
    session = in_advance(server, first_output_index=10)
    session.outputs.extend([b"earlier"] * (MAX_OUTPUTS - 1))  # as if the backend had posted them
    last = requests.post(server.url + "/notice", json={"payload": "0x01"})
    assert last.status_code == 201 and last.json() == {"index": 10 + MAX_OUTPUTS - 1}
    over = requests.post(server.url + "/notice", json={"payload": "0x02"})
    assert over.status_code == 400 and over.text == (
        "unable to insert notice, error details: 'rollup error: outputs limit exceeded: input 0 emitted more than "
        "65,536 outputs; the node ends it OUTPUTS_LIMIT_EXCEEDED and keeps none of its outputs'")
    assert session.done.is_set() and session.status == "outputs_limit" and len(session.outputs) == MAX_OUTPUTS
    assert server.current is None  # nothing more is taken for this input; the backend's next /finish waits
    late = requests.post(server.url + "/voucher", json={"destination": DEST, "value": ZERO, "payload": "0x"})
    assert (late.status_code, late.text) == (400, "no rollup request is being processed")


def test_report_65537_ends_the_input_reports_limit_exceeded(server):
    session = in_advance(server)
    session.reports.extend([b"earlier"] * (MAX_REPORTS - 1))
    assert requests.post(server.url + "/report", json={"payload": "0x01"}).status_code == 202
    over = requests.post(server.url + "/report", json={"payload": "0x02"})
    assert over.status_code == 400 and "reports limit exceeded: input 0 emitted more than 65,536 reports" in over.text
    assert session.status == "reports_limit" and len(session.reports) == MAX_REPORTS and server.current is None


def test_the_advancer_keeps_no_output_of_an_input_over_the_limit_and_rebuilds_the_backend(tmp_path):
    """With a limit of 3 outputs (the real one is 65,536): the input ends OUTPUTS_LIMIT_EXCEEDED, none of its
    outputs enter the tree, the backend is restarted from the accepted inputs, and the next input goes on."""
    repo = SqliteRepository(tmp_path / "node.sqlite")
    app = "0x" + "a9" * 20
    repo.save_application(Application(name="t", address=app, consensus="0x" + "c0" * 20, input_box="0x" + "b0" * 20,
                                      input_box_block=1, template_hash="0x" + "00" * 32, epoch_length=10,
                                      data_availability="0x", chain_id=31337))
    payloads = [b"notices:3", b"notices:4", b"after"]
    repo.add_inputs([Input(index=i, epoch_index=0, block_number=10 + i, block_timestamp=1_700_000_000, chain_id=31337,
                           app_contract=app, sender="0x" + "cd" * 20, prev_randao=0, payload=payload,
                           raw_data=payload, transaction_reference=f"0x{i:064x}")
                     for i, payload in enumerate(payloads)], 100)
    machine = HostMachine(ECHO_BACKEND, finish_timeout=0.5, max_outputs=3)
    machine.start()
    try:
        tree = OutputsTree([])
        assert Advancer(repo, machine, tree, threading.Lock()).step() == 3
        statuses = [item.status for item in repo.list_inputs(limit=10)[0]]
        assert statuses == ["ACCEPTED", "OUTPUTS_LIMIT_EXCEEDED", "ACCEPTED"]
        outputs, _ = repo.list_outputs(limit=10)
        assert [(o.index, o.input_index) for o in outputs] == [(0, 0), (1, 0), (2, 0), (3, 2)] and len(tree) == 4
        assert machine.inspect(b"n").reports == [b"n|accepted=2"]  # rebuilt: the over-limit input left no trace
    finally:
        machine.stop()
        repo.close()


def test_the_node_never_hands_the_backend_a_request_off_the_spec(server):
    bad = advance()
    bad["data"]["metadata"]["prev_randao"] = "0x01"
    with pytest.raises(ValueError, match="off the spec"):
        server.submit(Session(bad))


def test_unknown_routes_and_methods_get_404(server):
    assert requests.post(server.url + "/gio", json={"domain": 16, "id": "0x"}).status_code == 404
    assert requests.get(server.url + "/finish").status_code == 404


def test_inspect_cannot_emit_notices_but_can_report_and_exception_ends_it(server):
    session = Session({"request_type": "inspect_state", "data": {"payload": "0x"}})
    server.submit(session)
    requests.post(server.url + "/finish", json={"status": "accept"})
    assert requests.post(server.url + "/notice", json={"payload": "0x01"}).status_code == 400
    assert requests.post(server.url + "/report", json={"payload": "0x02"}).status_code == 202
    assert requests.post(server.url + "/exception", json={"payload": "0x6f6f7073"}).status_code == 202
    assert session.status == "exception" and session.exception == b"oops" and session.reports == [b"\x02"]


# ------------------------------------------------------------------ an outsider on loopback


ATTACKS = [("/voucher", {"destination": DEST, "value": "0x" + "ff" * 32, "payload": "0x"}),
           ("/delegate-call-voucher", {"destination": DEST, "payload": "0x"}),
           ("/notice", {"payload": "0x01"}), ("/report", {"payload": "0x02"}),
           ("/exception", {"payload": "0x03"}), ("/finish", {"status": "accept"})]


def outsider_urls(server: RollupHttpServer) -> list[str]:
    """Where a local process that found the port, but not the secret, might POST."""
    secret = server.prefix[1:]
    last_changed = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    return [server.address, server.address + "/" + secret[:-1], server.address + "/" + last_changed,
            server.address + "/x/" + secret, server.address + "/" + secret.upper(),
            server.address + "/" + secret.lower()]


def test_an_outsider_during_an_input_is_refused_and_changes_nothing(server):
    session = in_advance(server, first_output_index=7)
    for base in outsider_urls(server):
        for route, body in ATTACKS:
            reply = requests.post(base + route, json=body, timeout=5)
            assert reply.status_code == 404 and reply.content == b"", (base, route)
    assert session.outputs == [] and session.reports == [] and not session.done.is_set()
    assert server.current is session and server.outsiders == len(outsider_urls(server)) * len(ATTACKS)
    assert requests.post(server.url + "/notice", json={"payload": "0x0a"}).json() == {"index": 7}  # the backend
    assert requests.post(server.url + "/finish", json={"status": "accept"}).status_code == 202
    assert session.status == "accept" and session.outputs == [encode_notice(b"\x0a")]


def test_an_outsider_between_inputs_cannot_take_the_next_request(server):
    requests.post(server.url + "/finish", json={"status": "accept"})  # the backend is up, waiting
    session = Session(advance(1))
    server.submit(session)
    for route, body in ATTACKS:
        assert requests.post(server.address + route, json=body, timeout=5).status_code == 404
    assert server.current is None and not server.requests.empty()
    taken = requests.post(server.url + "/finish", json={"status": "accept"})
    assert taken.status_code == 200 and taken.json() == advance(1) and server.current is session
    raw = json.dumps({"status": "accept"}).encode()
    with socket.create_connection(server.server_address, timeout=5) as conn:  # a raw request, odd path bytes
        conn.sendall(b"POST /\xff\xfe/finish HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(raw), raw))
        assert conn.recv(4096).startswith(b"HTTP/1.1 404")
    assert server.current is session and not session.done.is_set()


def test_the_machine_gives_the_secret_to_its_backend_only_and_never_logs_it(tmp_path, caplog):
    log_path = tmp_path / "backend.log"
    log_path.write_bytes(b"")
    log_path.chmod(0o644)
    machine = HostMachine(ECHO_BACKEND, finish_timeout=0.5, log_path=log_path)
    caplog.set_level(logging.INFO, logger="rollups_node.machine")
    machine.start()
    try:
        secret = machine.server.prefix[1:]
        environ = Path(f"/proc/{machine.process.pid}/environ").read_bytes()
        assert f"ROLLUP_HTTP_SERVER_URL={machine.server.url}".encode() in environ
        assert secret not in os.environ.get("ROLLUP_HTTP_SERVER_URL", "")  # not the node's own environment
        assert machine.inspect(b"ping").reports == [b"ping|accepted=0"]  # the backend reaches it
        assert machine.server.address in caplog.text and secret not in caplog.text
        assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    finally:
        machine.stop()


def test_an_inspect_over_the_reports_limit_is_answered_as_an_exception(server):
    session = Session({"request_type": "inspect_state", "data": {"payload": "0x"}})
    server.submit(session)
    assert requests.post(server.url + "/finish", json={"status": "accept"}).status_code == 200
    session.reports.extend([b"earlier"] * MAX_REPORTS)
    over = requests.post(server.url + "/report", json={"payload": "0x02"})
    assert over.status_code == 400 and "this inspect emitted more than 65,536 reports" in over.text
    assert session.status == "reports_limit" and INSPECT_STATUS[session.status] == "Exception"
