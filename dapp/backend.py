"""The backend loop: takes requests from the rollup HTTP API, runs the state machine, posts its outputs.

Per advance input: decode the v2 metadata, `state.apply`, then post every notice/voucher/report and
`/finish accept`; or, on `Rejected`, one JSON error report and `/finish reject` with the state as before;
or, on any unexpected error, `/exception` with the error text, state as before. The new state is kept only
after all outputs were posted, so the loop never dies and never half-applies an input.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from dapp.advance_request import parse_advance
from dapp.inspect_routes import InspectError, answer
from dapp.rollup_client import RollupClient, from_hex
from dapp.schema import normalize_address
from dapp.state import Notice, Rejected, Report, State, Voucher, apply, short

log = logging.getLogger("dapp")


class Backend:
    """Holds the rollup state between requests and turns each request into rollup API calls."""

    def __init__(self, client: RollupClient, ether_portal: str, state: State | None = None) -> None:
        self.client = client
        self.ether_portal = normalize_address(ether_portal)
        self.state = state or State()

    def advance(self, data: Any) -> str:
        """Process one advance request; returns the status for the next ``/finish``."""
        where = "an advance input"
        try:
            where = f"input {data['metadata']['input_index']}"
            adv = parse_advance(data)
            where = f"input {adv.input_index} from {short(adv.msg_sender)}"
            try:
                result = apply(self.state, adv, self.ether_portal)
            except Rejected as err:
                self.client.report(json.dumps({"error": err.reason, "input_index": adv.input_index}).encode())
                log.info("%s: rejected — %s", where, err.reason)
                return "reject"
            for out in result.outputs:
                if isinstance(out, Notice):
                    self.client.notice(out.payload)
                elif isinstance(out, Voucher):
                    self.client.voucher(out.destination, out.value, out.payload)
                elif isinstance(out, Report):
                    self.client.report(out.payload)
            self.state = result.state
            log.info("%s: %s", where, result.summary)
            return "accept"
        except Exception as err:  # the loop must survive anything; this input alone fails
            return self._exception(where, err)

    def _exception(self, where: str, err: Exception) -> str:
        text = f"internal error on {where}: {type(err).__name__}: {err}"
        log.error("%s — state left as before", text)
        try:
            self.client.exception(text.encode())
        except Exception as post_err:
            log.error("could not post the exception either: %s", post_err)
        return "reject"

    def inspect(self, data: Any) -> str:
        """Answer one inspect request with one JSON report; unknown paths are rejected with a report."""
        path = None
        try:
            try:
                path = from_hex(data["payload"]).decode("utf-8")
            except (KeyError, TypeError, ValueError) as err:  # UnicodeDecodeError is a ValueError
                body, status = {"error": f"inspect payload is not a UTF-8 path: {err}"}, "reject"
            else:
                try:
                    body, status = answer(self.state, path), "accept"
                except InspectError as err:
                    body, status = {"error": str(err)}, "reject"
            self.client.report(json.dumps(body).encode())
        except Exception as err:  # inspect never changes the state; only this request fails
            return self._exception(f"inspect {path!r}", err)
        log.info("inspect %s: %s", path, "answered" if status == "accept" else body["error"])
        return status


def run(backend: Backend) -> int:
    """Serve requests until the rollup server has none left (only with ``exit_when_idle``) or is gone.

    Returns the number of requests handled.
    """
    status, handled = "accept", 0
    while True:
        request = backend.client.finish(status)
        if request is None:
            return handled
        handled += 1
        kind = request.get("request_type") if isinstance(request, dict) else None
        if kind == "advance_state":
            status = backend.advance(request.get("data"))
        elif kind == "inspect_state":
            status = backend.inspect(request.get("data"))
        else:
            log.error("unknown rollup request %.200r, rejecting it", request)
            status = "reject"
