"""A client of the Cartesi Rollups node v2 reader: JSON-RPC `POST /rpc` and `POST /inspect/<app>`.

Speaks only the real node's public interface, so it works against `fedrollup chain` and a real node alike.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Iterator

import requests

from common.errors import ConfigError, FedrollupError
from rollups_node.outputs import NOTICE, VOUCHER

PAGE = 500
NOTICE_TYPE, VOUCHER_TYPE = "0x" + NOTICE.hex(), "0x" + VOUCHER.hex()  # cartesi_listOutputs output_type filters
ITEM_NOT_FOUND = -32002  # e.g. an input the node has not read yet


class NodeError(FedrollupError):
    """The node answered with a JSON-RPC error (code and message kept)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"the node answered error {code}: {message}")
        self.code = code


def hex_int(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return int(value, 16)


class NodeClient:
    def __init__(self, jsonrpc_url: str, inspect_url: str, app: str, timeout: float = 30.0) -> None:
        self.jsonrpc_url, self.inspect_url, self.app, self.timeout = jsonrpc_url, inspect_url, app, timeout
        self._ids = itertools.count(1)

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
        offset = 0
        while True:
            result = self.call(method, application=self.app, limit=PAGE, offset=offset, **params)
            yield from result["data"]
            offset += len(result["data"])
            if not result["data"] or offset >= result["pagination"]["total_count"]:
                return

    @staticmethod
    def _filters(**filters: Any) -> dict:
        return {k: (hex(v) if isinstance(v, int) else v) for k, v in filters.items() if v is not None}

    def inputs(self, epoch_index: int | None = None) -> list[dict]:
        return list(self._paged("cartesi_listInputs", **self._filters(epoch_index=epoch_index)))

    def outputs(self, input_index: int | None = None, output_type: str | None = None) -> list[dict]:
        return list(self._paged("cartesi_listOutputs",
                                **self._filters(input_index=input_index, output_type=output_type)))

    def output(self, index: int) -> dict:
        return self.call("cartesi_getOutput", application=self.app, output_index=hex(index))["data"]

    def reports(self, input_index: int | None = None) -> list[dict]:
        return list(self._paged("cartesi_listReports", **self._filters(input_index=input_index)))

    def epochs(self) -> list[dict]:
        return list(self._paged("cartesi_listEpochs"))

    def accepted_epochs(self) -> set[int]:
        """Indices of the epochs whose claim L1 has accepted (only their outputs can be proven yet)."""
        return {hex_int(e["index"]) for e in self.epochs() if e["status"] == "CLAIM_ACCEPTED"}

    def processed_input_count(self) -> int:
        return hex_int(self.call("cartesi_getProcessedInputCount", application=self.app)["data"])

    def inspect(self, payload: bytes) -> dict:
        """The node's inspect answer: {"status", "exception"?, "reports": [{"payload"}], "processed_input_count"}."""
        response = self._post(self.inspect_url, data=payload,
                              headers={"Content-Type": "application/octet-stream"})
        if response.status_code != 200:
            raise ConfigError(f"inspect at {self.inspect_url} answered HTTP {response.status_code}: "
                             f"{response.text.strip()[:200]}")
        return response.json()

    def inspect_json(self, path: str) -> Any:
        """Inspect `path` (a fedrollup route such as ``stakes/1``) and parse its one JSON report."""
        answer = self.inspect(path.encode())
        reports = answer.get("reports") or []
        if not reports:
            raise ConfigError(f"inspect {path!r} gave no report (status {answer.get('status')})")
        body = json.loads(bytes.fromhex(reports[0]["payload"][2:]).decode())
        if answer.get("status") != "Accepted":
            raise ConfigError(f"inspect {path!r}: {body.get('error', body)}")
        return body
