"""Attacks on the node's public HTTP server, each bounded and on loopback: after each one the node still
answers `cartesi_getChainId`. The server runs as its own process with the node's imports
(tests/reader_server.py), so an attack that would kill the node shows as a dead process."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from contracts_config.anvil import free_port
from reader_fixtures import call, seeded_repository
from rollups_node import jsonrpc
from rollups_node.jsonrpc import JsonRpcReader

REPO = Path(__file__).resolve().parents[1]
TIMEOUT, DEADLINE = 1.0, 2.0  # the server's request timeout and deadline in these tests (10 s and 30 s by default)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(REPO / "tests" / "reader_server.py"),
                                str(tmp_path_factory.mktemp("node") / "node.sqlite"), str(port), str(TIMEOUT),
                                str(DEADLINE)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert process.stdout.readline().strip() == b"ready", process.stderr.read().decode()[-2000:]
    yield process, f"http://127.0.0.1:{port}"
    process.kill()
    process.wait()


def rpc(url: str, body: bytes | dict | list, timeout: float = 30) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + "/rpc", data=data, headers={"Content-Type": "application/json"}, timeout=timeout)


def still_answers(node) -> None:
    process, url = node
    assert process.poll() is None, f"the node died ({process.returncode}): {process.stderr.read().decode()[-500:]}"
    answer = rpc(url, {"jsonrpc": "2.0", "id": 1, "method": "cartesi_getChainId"}, timeout=5).json()
    assert answer["result"] == {"data": "0x7a69"}


def test_a_body_nested_100000_deep_is_refused_not_fatal(node):
    """json.loads recursed 100,000 levels in C (the recursion limit eth_account sets): SIGSEGV."""
    answer = rpc(node[1], b"[" * 100_000 + b"]" * 100_000).json()
    assert answer["error"]["code"] == -32600 and "nested deeper" in answer["error"]["message"]
    still_answers(node)


def test_a_batch_of_400_lists_of_10000_outputs_is_refused_before_any_work(node):
    """It built a 369 MiB answer; a batch now has at most 100 calls whose list limits add up to 10,000 items."""
    def lists(count: int, limit: int) -> list[dict]:
        return [{"jsonrpc": "2.0", "id": i, "method": "cartesi_listOutputs",
                 "params": {"application": "fedrollup", "limit": limit}} for i in range(count)]

    for batch, why in ((lists(400, 10_000), "batch of 400 requests"),
                       (lists(2, 6000), "Batch list item limit exceeded")):
        answer = rpc(node[1], batch)
        assert len(answer.content) < 1000
        error = answer.json()["error"]
        assert error["code"] == -32005 and why in error["message"]
    assert len(rpc(node[1], lists(2, 5000)).json()) == 2  # at the bound: answered
    still_answers(node)


def test_batch_length_and_body_size_are_bounded(node):
    calls = [{"jsonrpc": "2.0", "id": i, "method": "cartesi_getChainId"} for i in range(jsonrpc.MAX_BATCH + 1)]
    assert rpc(node[1], calls).json()["error"]["code"] == -32005
    assert len(rpc(node[1], calls[:jsonrpc.MAX_BATCH]).json()) == jsonrpc.MAX_BATCH
    assert rpc(node[1], b" " * (1 << 20) + b"{}").status_code == 400  # over 1 MiB: refused unread
    still_answers(node)


def test_offsets_and_indices_beyond_sqlite_get_json_rpc_answers(node):
    """Indices and offsets >= 2^63 gave -32603 (SQLite overflow)."""
    big = 1 << 63
    replies = rpc(node[1], [
        {"jsonrpc": "2.0", "id": 1, "method": "cartesi_getInput", "params": {"application": "fedrollup",
                                                                             "input_index": hex(big)}},
        {"jsonrpc": "2.0", "id": 2, "method": "cartesi_listOutputs", "params": {"application": "fedrollup",
                                                                                "offset": big}},
        {"jsonrpc": "2.0", "id": 3, "method": "cartesi_listReports", "params": {"application": "fedrollup",
                                                                                "epoch_index": hex(big)}},
        {"jsonrpc": "2.0", "id": 4, "method": "cartesi_listInputs", "params": {"application": "fedrollup",
                                                                               "offset": 1 << 64}}]).json()
    assert replies[0]["error"]["code"] == -32001
    assert replies[1]["result"]["data"] == [] and replies[2]["result"]["data"] == []
    assert replies[3]["error"]["code"] == -32602
    still_answers(node)


def test_50_connections_sending_headers_and_no_body_do_not_hold_the_node(node):
    """They pinned 50 threads for ever; now the server drops a connection silent for its request timeout."""
    url = node[1]
    port = int(url.rsplit(":", 1)[1])
    silent = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        silent.append(sock)
    try:
        still_answers(node)  # served while they wait
        time.sleep(TIMEOUT + 1)
        for sock in silent:
            sock.settimeout(5)
            assert sock.recv(100) == b"", "the server still holds a silent connection"
    finally:
        for sock in silent:
            sock.close()
    still_answers(node)


def test_a_request_sent_a_byte_at_a_time_is_dropped_at_its_deadline(node):
    """Each byte within the silence timeout, for ever: the connection held a thread (and enough of them, every
    connection slot). The whole request must now arrive within the deadline."""
    port = int(node[1].rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    started, closed = time.monotonic(), False
    try:
        for byte in b"POST /rpc HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            sock.settimeout(TIMEOUT / 2)
            try:
                if sock.recv(100) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
            if time.monotonic() - started > DEADLINE + 5:
                break
    finally:
        sock.close()
    assert closed and time.monotonic() - started < DEADLINE + 3
    still_answers(node)


def test_an_answer_is_built_within_its_byte_bound(monkeypatch, tmp_path):
    """A list whose answer would exceed the bound gets -32005; in a batch, the calls after the bound too."""
    repo = seeded_repository(tmp_path / "node.sqlite")
    reader = JsonRpcReader(repo, 31337)
    monkeypatch.setattr(jsonrpc, "MAX_ANSWER_BYTES", 1500)
    assert call(reader, "cartesi_listOutputs", {"application": "fedrollup"})["error"]["code"] == -32005
    replies = json.loads(reader.handle_bytes(json.dumps(
        [{"jsonrpc": "2.0", "id": i, "method": "cartesi_getOutput",
          "params": {"application": "fedrollup", "output_index": "0x0"}} for i in range(5)]).encode()))
    assert "result" in replies[0] and replies[-1]["error"]["code"] == -32005
    assert len(json.dumps(replies)) < 1500 + 500
    repo.close()
