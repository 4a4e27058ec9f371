"""The attacks of issue 11 on a node's public HTTP server and on the backend's rollup HTTP API, each bounded in
count and time and on loopback, shared by the tests that play them (against a server over a seeded database,
and against a whole running node with a recorded history); and the Ether the rules say the Application holds,
which every attack on a running chain must leave equal to its L1 balance."""
from __future__ import annotations

import json
import socket
import threading
import time

import requests

from frontend_console.audit import deployment_market, rederive
from rollups_client.l1 import L1
from rollups_client.outputs import decode_output

ONE_ETHER = 10**18
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000  # killed the node: SIGSEGV in json.loads
MAX_OUTSIDER_REQUESTS = 3000  # the outsider's loop also stops when told
BIG = 1 << 63  # the first index SQLite cannot hold
BEYOND_SQLITE = [  # offsets and indices >= 2^63: they gave -32603 (SQLite overflow)
    {"jsonrpc": "2.0", "id": 1, "method": "cartesi_getInput",
     "params": {"application": "fedrollup", "input_index": hex(BIG)}},
    {"jsonrpc": "2.0", "id": 2, "method": "cartesi_listOutputs", "params": {"application": "fedrollup", "offset": BIG}},
    {"jsonrpc": "2.0", "id": 3, "method": "cartesi_listReports",
     "params": {"application": "fedrollup", "epoch_index": hex(BIG)}},
    {"jsonrpc": "2.0", "id": 4, "method": "cartesi_listInputs",
     "params": {"application": "fedrollup", "offset": BIG * 2}}]
SILENT_REQUEST = b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"


def post_rpc(url: str, body: bytes | dict | list, timeout: float = 30) -> requests.Response:
    """POST `body` (raw bytes, or JSON) to the node's `/rpc`."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + "/rpc", data=data, headers={"Content-Type": "application/json"}, timeout=timeout)


def chain_id_of(url: str) -> str:
    """The node's `cartesi_getChainId` answer: the proof, after each attack, that it still serves."""
    answer = post_rpc(url, {"jsonrpc": "2.0", "id": 1, "method": "cartesi_getChainId"}, timeout=5).json()
    return answer["result"]["data"]


def list_outputs_batch(count: int, limit: int) -> list[dict]:
    return [{"jsonrpc": "2.0", "id": i, "method": "cartesi_listOutputs",
             "params": {"application": "fedrollup", "limit": limit}} for i in range(count)]


def assert_deep_array_refused(url: str) -> None:
    answer = post_rpc(url, DEEP_ARRAY).json()
    assert answer["error"]["code"] == -32600 and "nested deeper" in answer["error"]["message"]


def assert_huge_batch_refused(url: str) -> None:
    """400 × listOutputs(limit 10000) built a 369 MiB answer; now a short -32005 before any work."""
    answer = post_rpc(url, list_outputs_batch(400, 10_000))
    assert len(answer.content) < 1000
    error = answer.json()["error"]
    assert error["code"] == -32005 and "batch of 400 requests" in error["message"]


def assert_beyond_sqlite_answered(url: str) -> None:
    replies = post_rpc(url, BEYOND_SQLITE).json()
    assert replies[0]["error"]["code"] == -32001  # not found
    assert replies[1]["result"]["data"] == [] and replies[2]["result"]["data"] == []
    assert replies[3]["error"]["code"] == -32602  # beyond uint64: invalid params


def open_silent_connections(port: int, count: int = 50) -> list[socket.socket]:
    """`count` connections that send a request's headers and never its body (they pinned a thread each)."""
    silent = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(SILENT_REQUEST)
        silent.append(sock)
    return silent


def assert_all_closed_by_the_server(silent: list[socket.socket]) -> None:
    """Each silent connection was closed by the server, unanswered; then they are closed here too."""
    try:
        for sock in silent:
            sock.settimeout(5)
            assert sock.recv(100) == b"", "the server still holds a silent connection"
    finally:
        for sock in silent:
            sock.close()


class Outsider:
    """A local process that found the port of the rollup HTTP API: one thread per route POSTs, in a loop and
    without the secret path, a voucher of 1 ETH to `thief`, a notice, a report, an exception, a finish and a
    delegate-call voucher (a thread each, so a `/finish` held open by the server slows no other route)."""

    def __init__(self, port: int, thief: str) -> None:
        base = f"http://127.0.0.1:{port}"
        voucher = {"destination": thief, "value": "0x" + f"{ONE_ETHER:064x}", "payload": "0x"}
        self.attacks = [(base + "/voucher", voucher), (base + "/notice", {"payload": "0x6f776e6564"}),
                        (base + "/exception", {"payload": "0x6f776e6564"}), (base + "/finish", {"status": "accept"}),
                        (base + "/delegate-call-voucher", {"destination": thief, "payload": "0x"}),
                        (base + "/report", {"payload": "0x6f776e6564"})]
        self.stop = threading.Event()
        self.answers: list[int] = []  # HTTP status codes, 0 for no answer
        self.threads = [threading.Thread(target=self._post, args=attack, daemon=True) for attack in self.attacks]

    def _post(self, url: str, body: dict) -> None:
        session = requests.Session()
        while not self.stop.is_set() and len(self.answers) < MAX_OUTSIDER_REQUESTS:
            try:
                self.answers.append(session.post(url, json=body, timeout=5).status_code)
            except requests.RequestException:
                self.answers.append(0)

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


def wait_seconds_since(start: float, seconds: float) -> None:
    time.sleep(max(0.0, start + seconds - time.monotonic()))


def ether_the_rules_hold(l1: L1) -> int:
    """Wei the Application must hold by the rules: withdrawable balances, escrows, and the vouchers not yet
    executed on L1 (an output's index is its place among every accepted input's outputs, in order)."""
    expected, state = rederive(l1.inputs(), l1.deployment.ether_portal, deployment_market(l1.deployment))
    assert all(e.status != "EXCEPTION" for e in expected)
    outputs = [decode_output(raw) for e in expected for raw in e.outputs]
    owed = sum(out.value for index, out in enumerate(outputs)
               if out.type == "Voucher" and not l1.application.functions.wasOutputExecuted(index).call())
    return sum(state.balances.values()) + sum(t.escrow for t in state.tasks.values()) + owed
