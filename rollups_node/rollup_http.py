"""The rollup HTTP API v2 served to the backend, as strict as the machine's rollup-http-server.

Every body is checked against `rollup_http_schema` (the spec and the real server's limits) and refused as
the real server refuses it: 400 text/plain, in its words where it has words for the case. `/finish` hands
the backend the next request (or 202 after `finish_timeout` in host mode); `/notice`, `/voucher`,
`/delegate-call-voucher` answer 201 with the output's global index; `/report` and `/exception` 202; any
other path or method 404 with no body, as actix answers. An output or report one past the real node's count
limits (`rollup_http_schema.MAX_OUTPUTS`, `MAX_REPORTS`) ends the request there, as the node stops the
machine: the session finishes "outputs_limit" / "reports_limit" and the backend gets 400 saying why.

Only the backend the node started can reach it. Inside a Cartesi Machine the server listens inside the
machine and nothing outside can connect; here it listens on loopback, so every route lives under a
per-run secret path (`url` is http://127.0.0.1:PORT/<secret>), which the node gives the backend alone in
its `ROLLUP_HTTP_SERVER_URL`. A request outside it is a 404 before its body is read.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import queue
import re
import secrets
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Callable, Optional

from rollups_node.http_handler import QuietHandler
from rollups_node.outputs import encode_delegate_call_voucher, encode_notice, encode_voucher
from rollups_node.bounded_json import deeper_than
from rollups_node.rollup_http_schema import (MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_OUTPUTS, MAX_PAYLOAD_BYTES,
                                             MAX_REPORTS, ROLLUP_REQUEST_VALIDATOR, VALIDATORS)

log = logging.getLogger("rollups_node.rollup_http")


@dataclasses.dataclass
class Session:
    """One request handed to the backend and everything it emitted until it finished."""
    request: dict
    first_output_index: int = 0
    outputs: list[bytes] = dataclasses.field(default_factory=list)
    reports: list[bytes] = dataclasses.field(default_factory=list)
    status: Optional[str] = None  # "accept", "reject", "exception", "outputs_limit" or "reports_limit"
    exception: Optional[bytes] = None
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    @property
    def is_advance(self) -> bool:
        return self.request["request_type"] == "advance_state"

    def finish(self, status: str, exception: Optional[bytes] = None) -> None:
        self.status, self.exception = status, exception
        self.done.set()

    @property
    def input_index(self) -> Optional[int]:
        return self.request["data"]["metadata"]["input_index"] if self.is_advance else None


class Refused(ValueError):
    """A request the server refuses with 400 text/plain; the message is the body."""


# The real server's words (http_service.rs, rollup/mod.rs at v0.17.0, its typos kept): per route, how a
# failure starts, the payload named in its decode error, and the ioctl that answers -ENOBUFS (-105).
_ROUTE_WORDS = {
    "/notice": ("unable to insert notice", "notice payload, payload", "IOCTL_ROLLUP_WRITE_NOTICE"),
    "/voucher": ("unable to insert voucher", "voucher payload, it", "IOCTL_ROLLUP_WRITE_OUTPUT"),
    "/delegate-call-voucher": ("unable to insert voucher", "voucher payload, it", "IOCTL_ROLLUP_WRITE_OUTPUT"),
    "/report": ("unable to insert notice", "report payload, payload", "IOCTL_ROLLUP_WRITE_REPORT"),
    "/exception": ("unable to throw exception", "report payload, payload", "IOCTL_ROLLUP_THROW_EXCEPTION"),
}
_SERDE = "Payload error: Json deserialize error: "  # actix-web-validator around serde_json
_SERVER_VALUE = re.compile(r"0x[0-9a-fA-F]{1,64}\Z")  # the server's regex for `value` (Rust: unanchored start)
_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also takes '²', which int() refuses
_KINDS = {bool: "boolean", int: "integer", float: "floating point", str: "string", list: "sequence", dict: "map"}


def _rollup_error(route: str, detail: str) -> str:
    return f"{_ROUTE_WORDS[route][0]}, error details: 'rollup error: {detail}'"


def _kind(value: Any) -> str:
    return "null" if value is None else _KINDS.get(type(value), type(value).__name__)


def _words(route: str, error: Any) -> tuple[int, str]:
    """(the step of the real server that refuses the body, its words) for one schema violation."""
    field = error.path[0] if error.path else None
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in error.instance)
        return 0, f"{_SERDE}missing field `{missing}`"
    if error.validator == "type":
        return 0, f"{_SERDE}invalid type: {_kind(error.instance)}, expected " + ("a string" if field else "a map")
    if field == "status":
        return 1, "status must be 'accept' or 'reject'"
    if field == "destination":
        return 1, "address not valid"
    if field == "payload":
        return 2, _rollup_error(route, f"Error decoding {_ROUTE_WORDS[route][1]} must be in Ethereum hex binary format")
    value = error.instance  # `value`, the only other field with a pattern
    if not _SERVER_VALUE.search(value):
        return 1, "Validation errors in fields:\n\tvalue: regex"
    if len(value) % 2:
        return 3, "unable to insert voucher, error details: 'Odd number of digits'"
    return 3, "value must be 0x and 64 hex digits: a big-endian 32-byte unsigned integer (rollup.yaml Voucher)"


def refusal(route: str, body: Any) -> Optional[str]:
    """Why the real server (or the spec) refuses `body` on `route`, in the words of the step that refuses first."""
    found = [_words(route, error) for error in VALIDATORS[route].iter_errors(body)]
    if found:
        return min(found)[1]
    if route in MAX_PAYLOAD_BYTES:  # libcmt, last: the output would not fit the tx buffer
        size, largest = (len(body["payload"]) - 2) // 2, MAX_PAYLOAD_BYTES[route]
        if size > largest:  # the real server's words, then what they mean
            return (_rollup_error(route, f"{_ROUTE_WORDS[route][2]} returned error -105") +
                    f" (-ENOBUFS: a payload of {size:,} bytes; at most {largest:,} fit the machine's 2 MiB tx "
                    f"buffer on this route)")
    return None




def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) < len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise ValueError(f"duplicate field `{twice}`")
    return fields


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_body(raw: bytes) -> Any:
    """The JSON of a body, as serde_json reads it: UTF-8, bounded nesting, no NaN, no field twice."""
    if deeper_than(raw, MAX_JSON_DEPTH):  # json.loads recurses in C: see rollups_node.bounded_json
        raise Refused(f"{_SERDE}recursion limit exceeded")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_fields, parse_constant=_no_constant)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise Refused(f"{_SERDE}{err}") from None


def _payload(body: dict) -> bytes:
    return bytes.fromhex(body["payload"][2:])  # its form and size were checked by `refusal`


class RollupHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (a backend being restarted) is not worth a traceback."""

    def __init__(self, port: int = 0, finish_timeout: float = 10.0, secret: Optional[str] = None,
                 max_outputs: int = MAX_OUTPUTS, max_reports: int = MAX_REPORTS) -> None:
        """`max_outputs`, `max_reports`: per request, the real node's unless a test needs fewer."""
        super().__init__(("127.0.0.1", port), _Handler)
        self.finish_timeout = finish_timeout
        self.max_outputs, self.max_reports = max_outputs, max_reports
        self.prefix = "/" + (secret or secrets.token_urlsafe(32))
        self.requests: "queue.Queue[Session]" = queue.Queue()
        self.current: Optional[Session] = None
        self.lock = threading.Lock()
        self.backend_waiting = threading.Event()  # set by the backend's first /finish: it is ready
        self.outsiders = 0  # requests outside the secret path, answered 404

    @property
    def address(self) -> str:
        """Where the server listens, without the secret: what logs may show."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def url(self) -> str:
        """The backend's `ROLLUP_HTTP_SERVER_URL`: the address and the secret path. Give it to the backend only."""
        return self.address + self.prefix

    def route_of(self, path: str) -> Optional[str]:
        """The route of a request path under the secret prefix; None for any other path."""
        head = (self.prefix + "/").encode()
        raw = path.encode("latin-1", "replace")
        if not hmac.compare_digest(raw[:len(head)], head):
            self.outsiders += 1
            if (self.outsiders & (self.outsiders - 1)) == 0:  # the 1st, 2nd, 4th, 8th, …
                log.warning("refused %d request(s) to the rollup HTTP API outside its secret path",
                            self.outsiders)
            return None
        return path[len(self.prefix):]

    def submit(self, session: Session) -> None:
        errors = [e.message for e in ROLLUP_REQUEST_VALIDATOR.iter_errors(session.request)]
        if errors:
            raise ValueError(f"the node built a rollup request off the spec: {'; '.join(errors)}")
        self.requests.put(session)


class _Handler(QuietHandler):
    server: RollupHttpServer

    def end_headers(self) -> None:
        if self.close_connection:
            self.send_header("Connection", "close")
        super().end_headers()

    def _json(self, code: int, data: dict) -> None:
        self.reply(code, json.dumps(data).encode(), "application/json")

    def _not_found(self) -> None:
        self.close_connection = True  # its body, if any, is left unread
        self.reply(404)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_found

    def do_POST(self) -> None:
        route = self.server.route_of(self.path)
        routes: dict[str, Callable[[dict], None]] = {
            "/finish": self._finish, "/notice": self._notice, "/voucher": self._voucher,
            "/delegate-call-voucher": self._delegate_call_voucher, "/report": self._report,
            "/exception": self._exception}
        if route not in routes:
            self._not_found()
            return
        try:
            body = parse_body(self._read_body())
            words = refusal(route, body)
            if words:
                raise Refused(words)
            routes[route](body)
        except Refused as err:
            self.reply(400, str(err).encode())

    def _read_body(self) -> bytes:
        """The body, refused unread (and the connection closed) when its length is unknown or over the limit."""
        mime = (self.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
        if not (mime.endswith("/json") or mime.endswith("+json")):
            raise Refused("Payload error: Content type error")
        length = self.headers.get("Content-Length", "0").strip()
        if "Transfer-Encoding" in self.headers or not _DIGITS.fullmatch(length):
            self.close_connection = True
            raise Refused("Payload error: a body needs a Content-Length here")
        if len(length) > 9 or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            raise Refused(f"Payload error: JSON payload ({length} bytes) is larger than allowed "
                          f"(limit: {MAX_BODY_BYTES} bytes).")
        return self.rfile.read(int(length))

    def _session(self, advance_only: bool) -> Session:
        session = self.server.current
        if session is None:
            raise Refused("no rollup request is being processed")
        if advance_only and not session.is_advance:
            raise Refused("outputs can only be emitted while processing an advance-state request")
        return session

    def _finish(self, body: dict) -> None:
        with self.server.lock:
            if self.server.current is not None:
                self.server.current.finish(body["status"])
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

    def _over_limit(self, session: Session, route: str, kind: str, limit: int) -> Refused:
        """End `session` as the real node ends a request whose machine emits one of `kind` ("outputs",
        "reports") too many (an input's outputs dropped, the backend rebuilt from the accepted inputs); the
        refusal that tells the backend why. Call with the server's lock held."""
        status = f"{kind}_limit"  # the advancer's OUTPUTS_LIMIT_EXCEEDED / REPORTS_LIMIT_EXCEEDED
        what, ending = ((f"input {session.input_index}",
                         f"ends it {status.upper()}_EXCEEDED and keeps none of its outputs") if session.is_advance
                        else ("this inspect", "answers it as an exception"))
        reason = f"{kind} limit exceeded: {what} emitted more than {limit:,} {kind}; the node {ending}"
        session.finish(status, reason.encode())
        self.server.current = None
        return Refused(_rollup_error(route, reason))

    def _emit(self, route: str, output: bytes) -> None:
        with self.server.lock:
            session = self._session(advance_only=True)
            if len(session.outputs) >= self.server.max_outputs:
                raise self._over_limit(session, route, "outputs", self.server.max_outputs)
            index = session.first_output_index + len(session.outputs)
            session.outputs.append(output)
        self._json(201, {"index": index})

    def _notice(self, body: dict) -> None:
        self._emit("/notice", encode_notice(_payload(body)))

    def _voucher(self, body: dict) -> None:
        payload = _payload(body)
        destination = body["destination"].lower()  # any case, as the server hex-decodes it (no checksum)
        self._emit("/voucher", encode_voucher(destination, int(body["value"], 16), payload))

    def _delegate_call_voucher(self, body: dict) -> None:
        payload = _payload(body)
        destination = body["destination"].lower()
        self._emit("/delegate-call-voucher", encode_delegate_call_voucher(destination, payload))

    def _report(self, body: dict) -> None:
        payload = _payload(body)
        with self.server.lock:
            session = self._session(advance_only=False)
            if len(session.reports) >= self.server.max_reports:
                raise self._over_limit(session, "/report", "reports", self.server.max_reports)
            session.reports.append(payload)
        self.reply(202)

    def _exception(self, body: dict) -> None:
        payload = _payload(body)
        with self.server.lock:
            self._session(advance_only=False).finish("exception", payload)
            self.server.current = None
        self.reply(202)
