"""A client for the Cartesi Rollups v2 rollup HTTP API that a backend talks to (`ROLLUP_HTTP_SERVER_URL`).

`/finish` is retried on 202 (host mode: "no rollup request available"); any other 2xx is success on
every route, because implementations differ (the real server answers 201/202, others 200).
Every body is what the spec (cartesi/openapi-interfaces `rollup.yaml`) requires: payloads as ``0x`` and pairs
of hex digits, a voucher's value as ``0x`` and 64 digits (a big-endian 32-byte integer: the real server's
hex decoder refuses an odd digit count, so ``hex(10**15)`` would fail there).
"""
from __future__ import annotations

import time
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:5004"


class RollupServerError(RuntimeError):
    """The rollup server answered a route with a non-2xx status, or stayed unreachable."""


def to_hex(data: bytes) -> str:
    return "0x" + data.hex()


def to_uint256(value: int) -> str:
    """A voucher value as the spec writes it: ``0x`` and 64 hex digits."""
    if not 0 <= value < 1 << 256:
        raise ValueError(f"a voucher value is a uint256, got {value}")
    return "0x" + value.to_bytes(32, "big").hex()


def from_hex(text: str) -> bytes:
    """Bytes of a ``0x`` hex string (the prefix is optional, as the real server only strips 2 chars)."""
    if text.startswith(("0x", "0X")):
        text = text[2:]
    return bytes.fromhex(text)


class RollupClient:
    def __init__(self, url: str = DEFAULT_URL, exit_when_idle: bool = False, connect_wait: float = 60.0,
                 timeout: float = 60.0) -> None:
        """``exit_when_idle``: `finish` returns None instead of retrying on 202 (tests, benchmarks).
        ``connect_wait``: seconds of consecutive connection failures tolerated before giving up."""
        self.url = url.rstrip("/")
        self.exit_when_idle = exit_when_idle
        self.connect_wait = connect_wait
        self.timeout = timeout
        self.session = requests.Session()

    def _post(self, route: str, body: dict[str, Any]) -> requests.Response:
        try:
            response = self.session.post(self.url + route, json=body, timeout=self.timeout)
        except requests.ConnectionError as err:
            raise RollupServerError(f"rollup server at {self.url} unreachable: {err}") from None
        if not 200 <= response.status_code < 300:
            raise RollupServerError(f"POST {route} answered {response.status_code}: {response.text[:200]}")
        return response

    def finish(self, status: str) -> dict[str, Any] | None:
        """Finish the current request with ``status`` ("accept"/"reject") and return the next one."""
        gave_up_at = None
        while True:
            try:
                response = self._post("/finish", {"status": status})
            except RollupServerError as err:
                if "unreachable" not in str(err):
                    raise
                now = time.monotonic()  # only paces reconnection; never reaches the state machine
                gave_up_at = gave_up_at or now + self.connect_wait
                if now >= gave_up_at:
                    raise
                time.sleep(0.2)
                continue
            gave_up_at = None
            if response.status_code == 202:
                if self.exit_when_idle:
                    return None
                continue
            return response.json()

    def notice(self, payload: bytes) -> int | None:
        return self._index(self._post("/notice", {"payload": to_hex(payload)}))

    def voucher(self, destination: str, value: int, payload: bytes = b"") -> int | None:
        body = {"destination": destination, "value": to_uint256(value), "payload": to_hex(payload)}
        return self._index(self._post("/voucher", body))

    def report(self, payload: bytes) -> None:
        self._post("/report", {"payload": to_hex(payload)})

    def exception(self, payload: bytes) -> None:
        self._post("/exception", {"payload": to_hex(payload)})

    @staticmethod
    def _index(response: requests.Response) -> int | None:
        """The output's index in the outputs tree, when the server says it (the real v2 server does)."""
        try:
            return int(response.json()["index"])
        except (ValueError, KeyError, TypeError):
            return None
