"""A client of the Cartesi Rollups node v2 reader: JSON-RPC `POST /rpc` and `POST /inspect/<app>`.

Speaks only the real node's public interface, so it works against `fedrollup chain` and a real node alike.
This is the JSON-RPC edge: what it hands out is typed (ints, bytes, decoded outputs), never hex.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import requests

from common.errors import ConfigError, FedrollupError
from rollups_client.outputs import RollupOutput, decode_output
from rollups_node.openrpc import LIMIT_EXCEEDED, RESOURCE_NOT_FOUND
from rollups_node.model import EPOCH_CLAIM_ACCEPTED, INPUT_NONE, Report
from rollups_node.outputs import NOTICE

PAGE = 500


class NodeError(FedrollupError):
    """The node answered with a JSON-RPC error (code and message kept)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"the node answered error {code}: {message}")
        self.code, self.message = code, message

    @property
    def item_not_found(self) -> bool:
        """An epoch, input, output or report the node does not have (yet), as opposed to an unknown application:
        the released node answers -32001 for both (told apart by its message), newer nodes -32002 for the latter."""
        return self.code == RESOURCE_NOT_FOUND and "application" not in self.message.lower()


def _int(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value, 16)


def _bytes(text: str | None) -> bytes:
    return bytes.fromhex(text[2:]) if text else b""


def _hex(value: int | bytes | None) -> str | None:
    if value is None:
        return None
    return hex(value) if isinstance(value, int) else "0x" + value.hex()


def _output(out: dict) -> RollupOutput:
    siblings = out.get("output_hashes_siblings")
    return decode_output(_bytes(out["raw_data"]), index=_int(out["index"]), input_index=_int(out["input_index"]),
                         epoch_index=_int(out.get("epoch_index")) or 0,
                         siblings=[_bytes(s) for s in siblings] if siblings else None)


def _report(rep: dict) -> Report:
    return Report(index=_int(rep["index"]), input_index=_int(rep["input_index"]),
                  epoch_index=_int(rep.get("epoch_index")) or 0, raw_data=_bytes(rep["raw_data"]))


@dataclass(frozen=True)
class InspectAnswer:
    status: str  # "Accepted" | "Rejected" | "Exception"
    reports: list[bytes]
    exception: str | None
    processed_input_count: int | None
    json: dict  # the answer as the node sent it


class NodeClient:
    def __init__(self, jsonrpc_url: str, inspect_url: str, app: str, timeout: float = 30.0) -> None:
        self.jsonrpc_url, self.inspect_url, self.app, self.timeout = jsonrpc_url, inspect_url, app, timeout
        self._ids = itertools.count(1)

    @classmethod
    def at(cls, node_url: str, app: str) -> NodeClient:
        """The client of application `app` on the node whose base URL (serving /rpc and /inspect) is `node_url`."""
        base = node_url.rstrip("/")
        return cls(base + "/rpc", f"{base}/inspect/{app}", app)

    def _post(self, url: str, **kwargs: Any) -> requests.Response:
        try:
            return requests.post(url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise ConfigError(f"no rollups node answers at {url} (is `fedrollup chain up` running?)") from None
        except requests.Timeout:
            raise ConfigError(f"the rollups node at {url} did not answer within {self.timeout:.0f} s") from None

    def call(self, method: str, **params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        response = self._post(self.jsonrpc_url, json=body)
        try:
            answer = response.json()
        except ValueError:
            raise ConfigError(f"{self.jsonrpc_url} answered HTTP {response.status_code} without JSON-RPC") from None
        if "error" in answer:
            raise NodeError(answer["error"].get("code", 0), answer["error"].get("message", ""))
        return answer["result"]

    def _paged(self, method: str, **params: Any) -> Iterator[dict]:
        """Every item of a list method, a page at a time. A page whose answer would pass the node's size bound
        (inputs carrying model chunks, model notices: ~130 KB each in hex) is asked again with half the items."""
        offset, limit = 0, PAGE
        while True:
            try:
                result = self.call(method, application=self.app, limit=limit, offset=offset, **params)
            except NodeError as err:
                if err.code != LIMIT_EXCEEDED or limit == 1:
                    raise
                limit //= 2
                continue
            yield from result["data"]
            offset += len(result["data"])
            if not result["data"] or offset >= result["pagination"]["total_count"]:
                return

    @staticmethod
    def _filters(**filters: Any) -> dict:
        return {k: _hex(v) for k, v in filters.items() if v is not None}

    def input_statuses(self, epoch_index: int | None = None) -> dict[int, str]:
        """Each input's status ("ACCEPTED", "REJECTED", …) by input index."""
        return {_int(i["index"]): i["status"]
                for i in self._paged("cartesi_listInputs", **self._filters(epoch_index=epoch_index))}

    def input_status(self, index: int) -> str:
        """Input `index`'s status; "NONE" while the node has not read it yet."""
        try:
            return self.call("cartesi_getInput", application=self.app, input_index=hex(index))["data"]["status"]
        except NodeError as err:
            if not err.item_not_found:
                raise
            return INPUT_NONE

    def outputs(self, input_index: int | None = None, output_type: bytes | None = None) -> list[RollupOutput]:
        """The outputs, decoded; `output_type` is a selector (`rollups_node.outputs.NOTICE`, `VOUCHER`)."""
        return [_output(o) for o in self._paged("cartesi_listOutputs",
                                                **self._filters(input_index=input_index, output_type=output_type))]

    def notices(self, input_index: int | None = None) -> list[RollupOutput]:
        return self.outputs(input_index=input_index, output_type=NOTICE)

    def output(self, index: int) -> RollupOutput:
        return _output(self.call("cartesi_getOutput", application=self.app, output_index=hex(index))["data"])

    def reports(self, input_index: int | None = None) -> list[Report]:
        return [_report(r) for r in self._paged("cartesi_listReports", **self._filters(input_index=input_index))]

    def accepted_epochs(self) -> set[int]:
        """Indices of the epochs whose claim L1 has accepted (only their outputs can be proven yet)."""
        return {_int(e["index"]) for e in self._paged("cartesi_listEpochs") if e["status"] == EPOCH_CLAIM_ACCEPTED}

    def processed_input_count(self) -> int:
        return _int(self.call("cartesi_getProcessedInputCount", application=self.app)["data"])

    def inspect(self, payload: bytes) -> InspectAnswer:
        """The node's answer to an inspect of `payload`."""
        response = self._post(self.inspect_url, data=payload,
                              headers={"Content-Type": "application/octet-stream"})
        if response.status_code != 200:
            raise ConfigError(f"inspect at {self.inspect_url} answered HTTP {response.status_code}: "
                             f"{response.text.strip()[:200]}")
        answer = response.json()
        return InspectAnswer(status=answer.get("status"), exception=answer.get("exception"),
                             reports=[_bytes(r["payload"]) for r in answer.get("reports") or []],
                             processed_input_count=_int(answer.get("processed_input_count")), json=answer)
