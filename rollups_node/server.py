"""The node's public HTTP server: JSON-RPC at `POST /rpc`, `POST /inspect/<app>`, and `GET /livez` health.

Bounded as the real node's HTTP servers (cartesi/rollups-node `pkg/service/http_server.go`,
`http_cors.go`): a client silent for `REQUEST_TIMEOUT` mid-request is dropped (headers with no body cannot
hold a thread), so is one still sending its request after `REQUEST_DEADLINE` (a byte at a time), bodies are
capped, at most `MAX_CONNECTIONS` are served at once, and CORS is granted
only to the configured origins (a preflight from any other origin gets 204 without grant headers).
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Callable, Iterable

from rollups_node.http_handler import QuietHandler
from rollups_node.inspector import Inspector
from rollups_node.jsonrpc import JsonRpcReader

MAX_INSPECT_BYTES = 1 << 21  # the machine's CMIO buffer, as the real inspect server
MAX_RPC_BYTES = 1 << 20  # as the real JSON-RPC server
REQUEST_TIMEOUT = 10.0  # seconds a client may stay silent mid-request (the real node: 10 s for headers)
REQUEST_DEADLINE = 30.0  # seconds to send a whole request, however slowly (the real node's ReadTimeout)
MAX_CONNECTIONS = 256  # connections served at once (a thread each); more are closed unanswered
CORS_METHODS, CORS_HEADERS, CORS_MAX_AGE = "POST, OPTIONS", "Content-Type", "3600"


def cors_origins(text: str | Iterable[str]) -> frozenset[str]:
    """The allowed origins of a comma-separated list, as the real node validates them: "null" and origins
    with a path, query or fragment are dropped, one trailing slash is stripped, all is lowercased."""
    entries = text.split(",") if isinstance(text, str) else text
    origins = set()
    for raw in entries:
        entry = raw.strip().removesuffix("/")
        rest = entry.partition("://")[2] if "://" in entry else entry
        if entry and entry.lower() != "null" and not any(c in rest for c in "/?#"):
            origins.add(entry.lower())
    return frozenset(origins)


class NodeHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # socketserver's 5 made a burst of connections wait seconds for SYN retries

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up or times out (a backend being restarted) is not worth a traceback."""

    def __init__(self, host: str, port: int, reader: JsonRpcReader, inspector: Inspector,
                 healthy: Callable[[], bool], cors: Iterable[str] = (), request_timeout: float = REQUEST_TIMEOUT,
                 request_deadline: float = REQUEST_DEADLINE, max_connections: int = MAX_CONNECTIONS) -> None:
        super().__init__((host, port), _Handler)
        self.reader, self.inspector, self.healthy = reader, inspector, healthy
        self.cors, self.request_timeout, self.request_deadline = cors_origins(cors), request_timeout, request_deadline
        self._slots = threading.BoundedSemaphore(max_connections)
        self._reading: dict[socket.socket, float] = {}  # connections still sending a request -> their deadline
        self._reading_lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._drop_late_requests, name="request-deadline", daemon=True).start()

    def reading(self, connection: socket.socket, started: bool) -> None:
        """Mark `connection` as sending a request (its deadline starts now) or as done sending it."""
        with self._reading_lock:
            if started:
                self._reading[connection] = time.monotonic() + self.request_deadline
            else:
                self._reading.pop(connection, None)

    def server_close(self) -> None:
        super().server_close()
        self._closed = True

    def _drop_late_requests(self) -> None:
        while not self._closed:
            time.sleep(min(1.0, self.request_deadline / 4))
            now = time.monotonic()
            with self._reading_lock:
                late = [c for c, deadline in self._reading.items() if deadline < now]
            for connection in late:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns: it ends

    def process_request(self, request: socket.socket, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(QuietHandler):
    server: NodeHttpServer

    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # StreamRequestHandler applies it to the socket
        super().setup()

    def handle_one_request(self) -> None:
        self.server.reading(self.connection, True)
        try:
            super().handle_one_request()
        finally:
            self.server.reading(self.connection, False)

    def parse_request(self) -> bool:
        """Headers read; a request without a body (GET, OPTIONS) is then whole."""
        parsed = super().parse_request()
        if self.command != "POST":
            self.server.reading(self.connection, False)
        return parsed

    def end_headers(self) -> None:
        headers = getattr(self, "headers", None)  # absent when the request line itself was refused
        origin = headers.get("Origin") if headers else None
        if origin:
            self.send_header("Vary", "Origin")
            if origin.lower() in self.server.cors:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Methods", CORS_METHODS)
                self.send_header("Access-Control-Allow-Headers", CORS_HEADERS)
                if self.command == "OPTIONS":
                    self.send_header("Access-Control-Max-Age", CORS_MAX_AGE)
        super().end_headers()

    def _text(self, code: int, text: str) -> None:
        self.reply(code, text.encode())

    def do_OPTIONS(self) -> None:
        """A CORS preflight for /rpc or /inspect: 204, with grant headers only for an allowed origin."""
        if self.path == "/rpc" or self.path.startswith("/inspect/"):
            self.reply(204)
        else:
            self._text(404, "not found")

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
        self.server.reading(self.connection, False)  # what follows is the node's work, not the client's
        if len(body) < length:  # the client hung up mid-body
            self.close_connection = True
            return
        if self.path == "/rpc":
            self.reply(200, self.server.reader.handle_bytes(body) or b"", "application/json")
        elif self.path.startswith("/inspect/"):
            code, content_type, answer = self.server.inspector.inspect(self.path[len("/inspect/"):], body)
            self.reply(code, answer, content_type)
        else:
            self._text(404, "not found")
