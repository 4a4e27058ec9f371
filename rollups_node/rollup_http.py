"""The rollup HTTP API v2 served to the backend, as the machine's rollup-http-server serves it.

`/finish` hands the backend the next request (or 202 after `finish_timeout` in host mode); `/notice`,
`/voucher`, `/delegate-call-voucher` answer 201 with the output's global index; `/report` and
`/exception` answer 202. Malformed bodies get 400 text/plain, as the real server does.
"""
from __future__ import annotations

import dataclasses
import json
import queue
import re
import threading
from http.server import ThreadingHTTPServer
from typing import Optional

from rollups_node.http_handler import QuietHandler
from rollups_node.outputs import encode_delegate_call_voucher, encode_notice, encode_voucher

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
VALUE = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")


@dataclasses.dataclass
class Session:
    """One request handed to the backend and everything it emitted until it finished."""
    request: dict
    first_output_index: int = 0
    outputs: list[bytes] = dataclasses.field(default_factory=list)
    reports: list[bytes] = dataclasses.field(default_factory=list)
    status: Optional[str] = None  # "accept", "reject" or "exception"
    exception: Optional[bytes] = None
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def is_advance(self) -> bool:
        return self.request["request_type"] == "advance_state"

    def finish(self, status: str, exception: Optional[bytes] = None) -> None:
        self.status, self.exception = status, exception
        self.done.set()


class BadRequest(ValueError):
    pass


def _hex_field(body: dict, name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str) or not HEX.match(value):
        raise BadRequest(f"{name} must be a 0x-prefixed hex string with an even number of digits")
    return bytes.fromhex(value[2:])


class RollupHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (a backend being restarted) is not worth a traceback."""

    def __init__(self, port: int = 0, finish_timeout: float = 10.0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.finish_timeout = finish_timeout
        self.requests: "queue.Queue[Session]" = queue.Queue()
        self.current: Optional[Session] = None
        self.lock = threading.Lock()
        self.backend_waiting = threading.Event()  # set by the backend's first /finish: it is ready

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def submit(self, session: Session) -> None:
        self.requests.put(session)


class _Handler(QuietHandler):
    server: RollupHttpServer

    def _json(self, code: int, data: dict) -> None:
        self.reply(code, json.dumps(data).encode(), "application/json")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        routes = {"/finish": self._finish, "/notice": self._notice, "/voucher": self._voucher,
                  "/delegate-call-voucher": self._delegate_call_voucher, "/report": self._report,
                  "/exception": self._exception}
        route = routes.get(self.path)
        if route is None:
            self.reply(404, b"not found")
            return
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise BadRequest("the body must be a JSON object")
            route(body)
        except (ValueError, BadRequest) as err:
            self.reply(400, str(err).encode())

    def _session(self, advance_only: bool) -> Session:
        session = self.server.current
        if session is None:
            raise BadRequest("no rollup request is being processed")
        if advance_only and not session.is_advance:
            raise BadRequest("outputs can only be emitted while processing an advance-state request")
        return session

    def _finish(self, body: dict) -> None:
        status = body.get("status")
        if status not in ("accept", "reject"):
            raise BadRequest(f"status must be accept or reject, got {status!r}")
        with self.server.lock:
            if self.server.current is not None:
                self.server.current.finish(status)
                self.server.current = None
        self.server.backend_waiting.set()
        try:
            session = self.server.requests.get(timeout=self.server.finish_timeout)
        except queue.Empty:
            self.reply(202, b"no rollup request available")
            return
        with self.server.lock:
            self.server.current = session
        self._json(200, session.request)

    def _emit(self, output: bytes) -> None:
        session = self._session(advance_only=True)
        index = session.first_output_index + len(session.outputs)
        session.outputs.append(output)
        self._json(201, {"index": index})

    def _notice(self, body: dict) -> None:
        self._emit(encode_notice(_hex_field(body, "payload")))

    def _voucher(self, body: dict) -> None:
        self._session(advance_only=True)
        destination, value = body.get("destination"), body.get("value", "0x0")
        if not isinstance(destination, str) or not ADDRESS.match(destination):
            raise BadRequest("destination must be a 0x-prefixed 20-byte address")
        if not isinstance(value, str) or not VALUE.match(value):
            raise BadRequest("value must match 0x[0-9a-fA-F]{1,64}")
        self._emit(encode_voucher(destination, int(value, 16), _hex_field(body, "payload")))

    def _delegate_call_voucher(self, body: dict) -> None:
        self._session(advance_only=True)
        destination = body.get("destination")
        if not isinstance(destination, str) or not ADDRESS.match(destination):
            raise BadRequest("destination must be a 0x-prefixed 20-byte address")
        self._emit(encode_delegate_call_voucher(destination, _hex_field(body, "payload")))

    def _report(self, body: dict) -> None:
        payload = _hex_field(body, "payload")
        self._session(advance_only=False).reports.append(payload)
        self.reply(202)

    def _exception(self, body: dict) -> None:
        payload = _hex_field(body, "payload")
        with self.server.lock:
            session = self._session(advance_only=False)
            session.finish("exception", payload)
            self.server.current = None
        self.reply(202)
