"""The node's public HTTP server: JSON-RPC at `POST /rpc`, `POST /inspect/<app>`, and `GET /livez` health."""
from __future__ import annotations

import json
import logging
from http.server import ThreadingHTTPServer
from typing import Callable

from rollups_node.http_handler import QuietHandler
from rollups_node.jsonrpc import JsonRpcReader
from rollups_node.machine import HostMachine, MachineError
from rollups_node.repository import Repository

log = logging.getLogger("rollups_node.server")

MAX_INSPECT_BYTES = 1 << 21  # the machine's CMIO buffer, as the real inspect server
MAX_RPC_BYTES = 1 << 20  # as the real JSON-RPC server
INSPECT_STATUS = {"accept": "Accepted", "reject": "Rejected", "exception": "Exception", "halted": "Exception"}


class NodeHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (a backend being restarted) is not worth a traceback."""

    def __init__(self, host: str, port: int, reader: JsonRpcReader, repository: Repository,
                 machine: HostMachine, healthy: Callable[[], bool]) -> None:
        super().__init__((host, port), _Handler)
        self.reader, self.repository, self.machine, self.healthy = reader, repository, machine, healthy

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(QuietHandler):
    server: NodeHttpServer

    def _json(self, code: int, body: bytes) -> None:
        self.reply(code, body, "application/json")

    def _text(self, code: int, text: str) -> None:
        self.reply(code, text.encode())

    def do_GET(self) -> None:
        if self.path == "/livez" or self.path == "/readyz":
            ok = self.server.healthy()
            self._text(200 if ok else 503, "ok" if ok else "not ready")
        elif self.path == "/rpc" or self.path.startswith("/inspect"):
            self._text(405, "Method not allowed")
        else:
            self._text(404, "not found")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._text(400, "Bad request")
            self.close_connection = True
            return
        if self.path.startswith("/inspect/") and length > MAX_INSPECT_BYTES:
            self._text(413, "Payload too large")
            self.close_connection = True
            return
        if self.path == "/rpc" and length > MAX_RPC_BYTES:
            self._text(400, "Failed to read request body")
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if self.path == "/rpc":
            reply = self.server.reader.handle_bytes(body)
            self._json(200, reply or b"")
        elif self.path.startswith("/inspect/"):
            self._inspect(self.path[len("/inspect/"):], body)
        else:
            self._text(404, "not found")

    def _inspect(self, name: str, payload: bytes) -> None:
        app = self.server.repository.application()
        if app is None or name.lower() not in (app.name, app.address.lower()):
            self._text(404, "Application not found")
            return
        if not self.server.machine.ready:
            self._text(503, "Machine not ready")
            return
        try:
            result = self.server.machine.inspect(payload)
        except MachineError:
            self._text(503, "Machine not ready")
            return
        answer: dict = {"status": INSPECT_STATUS[result.status]}
        if result.exception is not None:
            answer["exception"] = ("Error on the machine while inspecting: "
                                   + result.exception.decode(errors="replace"))
        answer["reports"] = [{"payload": "0x" + r.hex()} for r in result.reports] or None
        answer["processed_input_count"] = self.server.repository.processed_input_count()
        self._json(200, json.dumps(answer).encode())
