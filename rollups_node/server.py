"""The node's public HTTP server: JSON-RPC at `POST /rpc`, `POST /inspect/<app>`, and `GET /livez` health."""
from __future__ import annotations

from http.server import ThreadingHTTPServer
from typing import Callable

from rollups_node.http_handler import QuietHandler
from rollups_node.inspector import Inspector
from rollups_node.jsonrpc import JsonRpcReader

MAX_INSPECT_BYTES = 1 << 21  # the machine's CMIO buffer, as the real inspect server
MAX_RPC_BYTES = 1 << 20  # as the real JSON-RPC server


class NodeHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (a backend being restarted) is not worth a traceback."""

    def __init__(self, host: str, port: int, reader: JsonRpcReader, inspector: Inspector,
                 healthy: Callable[[], bool]) -> None:
        super().__init__((host, port), _Handler)
        self.reader, self.inspector, self.healthy = reader, inspector, healthy

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
        refusal = (400, "Bad request") if length < 0 else \
            (413, "Payload too large") if self.path.startswith("/inspect/") and length > MAX_INSPECT_BYTES else \
            (400, "Failed to read request body") if self.path == "/rpc" and length > MAX_RPC_BYTES else None
        if refusal:  # the body is not read, so the connection cannot be reused
            self._text(*refusal)
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if self.path == "/rpc":
            reply = self.server.reader.handle_bytes(body)
            self._json(200, reply or b"")
        elif self.path.startswith("/inspect/"):
            code, content_type, answer = self.server.inspector.inspect(self.path[len("/inspect/"):], body)
            self.reply(code, answer, content_type)
        else:
            self._text(404, "not found")
