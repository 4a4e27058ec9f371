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
from attack_fixtures import (assert_all_closed_by_the_server, assert_beyond_sqlite_answered, assert_deep_array_refused,
                             assert_huge_batch_refused, chain_id_of, list_outputs_batch, open_silent_connections,
                             post_rpc)
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
    return post_rpc(url, body, timeout)


def still_answers(node) -> None:
    process, url = node
    assert process.poll() is None, f"the node died ({process.returncode}): {process.stderr.read().decode()[-500:]}"
    assert chain_id_of(url) == "0x7a69"


def test_a_body_nested_100000_deep_is_refused_not_fatal(node):
    """json.loads recursed 100,000 levels in C (the recursion limit eth_account sets): SIGSEGV."""
    assert_deep_array_refused(node[1])
    still_answers(node)


def test_a_batch_of_400_lists_of_10000_outputs_is_refused_before_any_work(node):
    """It built a 369 MiB answer; a batch now has at most 100 calls whose list limits add up to 10,000 items."""
    assert_huge_batch_refused(node[1])
    answer = rpc(node[1], list_outputs_batch(2, 6000))
    assert len(answer.content) < 1000
    error = answer.json()["error"]
    assert error["code"] == -32005 and "Batch list item limit exceeded" in error["message"]
    assert len(rpc(node[1], list_outputs_batch(2, 5000)).json()) == 2  # at the bound: answered
    still_answers(node)


def test_batch_length_and_body_size_are_bounded(node):
    calls = [{"jsonrpc": "2.0", "id": i, "method": "cartesi_getChainId"} for i in range(jsonrpc.MAX_BATCH + 1)]
    assert rpc(node[1], calls).json()["error"]["code"] == -32005
    assert len(rpc(node[1], calls[:jsonrpc.MAX_BATCH]).json()) == jsonrpc.MAX_BATCH
    assert rpc(node[1], b" " * (1 << 20) + b"{}").status_code == 400  # over 1 MiB: refused unread
    still_answers(node)


def test_offsets_and_indices_beyond_sqlite_get_json_rpc_answers(node):
    """Indices and offsets >= 2^63 gave -32603 (SQLite overflow)."""
    assert_beyond_sqlite_answered(node[1])
    still_answers(node)


def test_50_connections_sending_headers_and_no_body_do_not_hold_the_node(node):
    """They pinned 50 threads for ever; now the server drops a connection silent for its request timeout."""
    silent = open_silent_connections(int(node[1].rsplit(":", 1)[1]))
    try:
        still_answers(node)  # served while they wait
        time.sleep(TIMEOUT + 1)
    finally:
        assert_all_closed_by_the_server(silent)
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
