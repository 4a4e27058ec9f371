"""The v2 JSON-RPC reader (`POST /rpc`): the real node's methods, field names, hex indices and error codes."""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Optional

from rollups_node.model import EPOCH_STATUSES, Application, Epoch, Input, Output, Report
from rollups_node.outputs import decoded_data
from rollups_node.repository import Repository

NODE_VERSION = "2.0.0-fedrollup-host"
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
APPLICATION_NOT_FOUND, ITEM_NOT_FOUND, OUTPUT_NOT_FOUND = -32000, -32002, -32003
APP_NAME = re.compile(r"^[a-z0-9_-]{3,}$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
HEX_NUMBER = re.compile(r"^0x[0-9a-fA-F]{1,16}$")
SELECTOR = re.compile(r"^0x[0-9a-fA-F]{8}$")
DEFAULT_LIMIT, MAX_LIMIT = 50, 10_000
PAGE = ("limit", "offset", "descending")


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _hex(value: Optional[int]) -> Optional[str]:
    return None if value is None else hex(value)


def _bytes(value: Optional[bytes]) -> Optional[str]:
    return None if value is None else "0x" + value.hex()


# ---- how each record looks on the wire -------------------------------------------------------------
def application_json(app: Application, processed: int, last_read_block: int) -> dict:
    checked = _hex(max(last_read_block, 0))
    return {"name": app.name, "iapplication_address": app.address, "iconsensus_address": app.consensus,
            "iinputbox_address": app.input_box, "template_hash": app.template_hash,
            "epoch_length": _hex(app.epoch_length), "data_availability": app.data_availability,
            "consensus_type": "AUTHORITY", "state": app.state, "reason": None,
            "iinputbox_block": _hex(app.input_box_block), "last_epoch_check_block": checked,
            "last_input_check_block": checked, "last_output_check_block": checked,
            "last_tournament_check_block": "0x0", "processed_inputs": _hex(processed),
            "created_at": app.created_at, "updated_at": app.updated_at}


def input_json(item: Input) -> dict:
    return {"epoch_index": _hex(item.epoch_index), "index": _hex(item.index), "block_number": _hex(item.block_number),
            "raw_data": _bytes(item.raw_data),
            "decoded_data": {"chain_id": _hex(item.chain_id), "application_contract": item.app_contract,
                             "sender": item.sender, "block_number": _hex(item.block_number),
                             "block_timestamp": _hex(item.block_timestamp), "prev_randao": _hex(item.prev_randao),
                             "index": _hex(item.index), "payload": _bytes(item.payload)},
            "status": item.status, "machine_hash": None, "outputs_hash": item.outputs_hash,
            "transaction_reference": item.transaction_reference,
            "created_at": item.created_at, "updated_at": item.updated_at}


def output_json(out: Output) -> dict:
    return {"epoch_index": _hex(out.epoch_index), "input_index": _hex(out.input_index), "index": _hex(out.index),
            "raw_data": _bytes(out.raw_data), "decoded_data": decoded_data(out.raw_data), "hash": _bytes(out.hash),
            "output_hashes_siblings": ([_bytes(s) for s in out.output_hashes_siblings]
                                       if out.output_hashes_siblings is not None else None),
            "execution_transaction_hash": out.execution_transaction_hash,
            "created_at": out.created_at, "updated_at": out.updated_at}


def report_json(rep: Report) -> dict:
    return {"epoch_index": _hex(rep.epoch_index), "input_index": _hex(rep.input_index), "index": _hex(rep.index),
            "raw_data": _bytes(rep.raw_data), "created_at": rep.created_at, "updated_at": rep.updated_at}


def epoch_json(epoch: Epoch) -> dict:
    return {"index": _hex(epoch.index), "first_block": _hex(epoch.first_block), "last_block": _hex(epoch.last_block),
            "input_index_lower_bound": _hex(epoch.input_index_lower_bound),
            "input_index_upper_bound": _hex(epoch.input_index_upper_bound), "machine_hash": None,
            "claim_hash": epoch.claim_hash, "claim_transaction_hash": epoch.claim_transaction_hash,
            "commitment": None, "tournament_address": None, "status": epoch.status,
            "virtual_index": _hex(epoch.virtual_index), "created_at": epoch.created_at, "updated_at": epoch.updated_at}


def page(items: list[dict], total: int, limit: int, offset: int) -> dict:
    return {"data": items, "pagination": {"total_count": total, "limit": limit, "offset": offset}}


# ---- parameter checking ------------------------------------------------------------------------------
class Params:
    """The parameters of one call, by name or by position (in the declared order), as the real node
    accepts them; names it does not know are ignored, as Go's JSON decoding ignores them."""

    def __init__(self, raw: Any, names: tuple[str, ...]) -> None:
        if raw is None:
            raw = {}
        if isinstance(raw, list):
            if len(raw) > len(names):
                raise RpcError(INVALID_PARAMS, f"expected at most {len(names)} parameters, got {len(raw)}")
            raw = dict(zip(names, raw))
        if not isinstance(raw, dict):
            raise RpcError(INVALID_PARAMS, "params must be an object or an array")
        self.raw = raw

    def index(self, name: str, required: bool = False) -> Optional[int]:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise RpcError(INVALID_PARAMS, f"missing parameter {name}")
            return None
        if not isinstance(value, str) or not HEX_NUMBER.match(value):
            raise RpcError(INVALID_PARAMS, f"{name} must be a hex string like \"0x1\"")
        return int(value, 16)

    def pagination(self) -> tuple[int, int, bool]:
        """(limit, offset, descending): limit 0 or absent means 50, above 10 000 it is capped."""
        limit, offset = self.raw.get("limit", 0), self.raw.get("offset", 0)
        descending = self.raw.get("descending", False)
        for name, value in (("limit", limit), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RpcError(INVALID_PARAMS, f"{name} must be a non-negative integer")
        if not isinstance(descending, bool):
            raise RpcError(INVALID_PARAMS, "descending must be true or false")
        return min(limit or DEFAULT_LIMIT, MAX_LIMIT), offset, descending

    def pattern(self, name: str, regex: re.Pattern, what: str) -> Optional[str]:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or not regex.match(value):
            raise RpcError(INVALID_PARAMS, f"{name} must be {what}")
        return value


class JsonRpcReader:
    """Answers JSON-RPC 2.0 requests (single or batch) from the repository; never raises."""

    def __init__(self, repository: Repository, chain_id: int) -> None:
        self.repository, self.chain_id = repository, chain_id
        # method -> (parameter names in the real node's declaration order, for positional params; handler)
        self.methods: dict[str, tuple[tuple[str, ...], Callable[[Params], Any]]] = {
            "cartesi_listApplications": (PAGE, self.list_applications),
            "cartesi_getApplication": (("application",), self.get_application),
            "cartesi_listEpochs": (("application", "status") + PAGE, self.list_epochs),
            "cartesi_getEpoch": (("application", "epoch_index"), self.get_epoch),
            "cartesi_getLastAcceptedEpochIndex": (("application",), self.last_accepted_epoch_index),
            "cartesi_listInputs": (("application", "epoch_index", "sender") + PAGE, self.list_inputs),
            "cartesi_getInput": (("application", "input_index"), self.get_input),
            "cartesi_getProcessedInputCount": (("application",), self.processed_input_count),
            "cartesi_listOutputs": (("application", "epoch_index", "input_index", "output_type", "voucher_address")
                                    + PAGE, self.list_outputs),
            "cartesi_getOutput": (("application", "output_index"), self.get_output),
            "cartesi_listReports": (("application", "epoch_index", "input_index") + PAGE, self.list_reports),
            "cartesi_getReport": (("application", "report_index"), self.get_report),
            "cartesi_getChainId": ((), lambda p: {"data": _hex(self.chain_id)}),
            "cartesi_getNodeVersion": ((), lambda p: {"data": NODE_VERSION}),
        }

    # ---- transport ----
    def handle_bytes(self, body: bytes) -> Optional[bytes]:
        """One HTTP body in, one HTTP body out (None for a batch of notifications only)."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return json.dumps(self._error(None, PARSE_ERROR, "parse error")).encode()
        if isinstance(request, list):
            if not request:
                return json.dumps(self._error(None, INVALID_REQUEST, "empty batch")).encode()
            replies = [r for r in (self.handle(item) for item in request) if r is not None]
            return json.dumps(replies).encode() if replies else None
        reply = self.handle(request)
        return json.dumps(reply).encode() if reply is not None else b""

    @staticmethod
    def _error(request_id: Any, code: int, message: str) -> dict:
        return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}

    def handle(self, request: Any) -> Optional[dict]:
        if not isinstance(request, dict):
            return self._error(None, INVALID_REQUEST, "a request must be a JSON object")
        request_id = request.get("id")
        if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str) \
                or not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
            return self._error(request_id if isinstance(request_id, (str, int)) else None, INVALID_REQUEST,
                               "invalid request: needs jsonrpc \"2.0\", a method name and an id")
        entry = self.methods.get(request["method"])
        if entry is None:
            return self._error(request_id, METHOD_NOT_FOUND, f"method {request['method']} not found")
        names, method = entry
        try:
            result = method(Params(request.get("params"), names))
        except RpcError as err:
            return self._error(request_id, err.code, err.message)
        except Exception as err:  # a reader bug must not take the node down
            return self._error(request_id, INTERNAL_ERROR, "Internal server error")
        if "id" not in request:
            return None  # a notification
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    # ---- methods ----
    def _application(self, params: Params) -> Application:
        name = params.raw.get("application")
        if name is None:
            raise RpcError(INVALID_PARAMS, "missing parameter application")
        if not isinstance(name, str) or not (APP_NAME.match(name) or ADDRESS.match(name)):
            raise RpcError(INVALID_PARAMS, "application must be an application name or a 0x address")
        app = self.repository.application()
        if app is None or name.lower() not in (app.name, app.address.lower()):
            raise RpcError(APPLICATION_NOT_FOUND, "application not found")
        return app

    def list_applications(self, params: Params) -> dict:
        limit, offset, descending = params.pagination()
        app = self.repository.application()
        apps = [application_json(app, self.repository.processed_input_count(), self.repository.last_read_block())
                ] if app else []
        return page(apps[offset:offset + limit], len(apps), limit, offset)

    def get_application(self, params: Params) -> dict:
        app = self._application(params)
        return {"data": application_json(app, self.repository.processed_input_count(),
                                         self.repository.last_read_block())}

    def list_epochs(self, params: Params) -> dict:
        self._application(params)
        status = params.raw.get("status")
        if status is not None and status not in EPOCH_STATUSES:
            raise RpcError(INVALID_PARAMS, f"status must be one of {', '.join(EPOCH_STATUSES)}")
        limit, offset, descending = params.pagination()
        epochs, total = self.repository.list_epochs(status=status, limit=limit, offset=offset,
                                                     descending=descending)
        return page([epoch_json(e) for e in epochs], total, limit, offset)

    def get_epoch(self, params: Params) -> dict:
        self._application(params)
        epoch = self.repository.get_epoch(params.index("epoch_index", required=True))
        if epoch is None:
            raise RpcError(ITEM_NOT_FOUND, "epoch not found")
        return {"data": epoch_json(epoch)}

    def last_accepted_epoch_index(self, params: Params) -> dict:
        self._application(params)
        index = self.repository.last_accepted_epoch_index()
        if index is None:
            raise RpcError(ITEM_NOT_FOUND, "no accepted epoch")
        return {"data": _hex(index)}

    def list_inputs(self, params: Params) -> dict:
        self._application(params)
        epoch_index = params.index("epoch_index")
        sender = params.pattern("sender", ADDRESS, "a 0x address")
        limit, offset, descending = params.pagination()
        inputs, total = self.repository.list_inputs(epoch_index=epoch_index, sender=sender, limit=limit,
                                                    offset=offset, descending=descending)
        return page([input_json(i) for i in inputs], total, limit, offset)

    def get_input(self, params: Params) -> dict:
        self._application(params)
        item = self.repository.get_input(params.index("input_index", required=True))
        if item is None:
            raise RpcError(ITEM_NOT_FOUND, "input not found")
        return {"data": input_json(item)}

    def processed_input_count(self, params: Params) -> dict:
        self._application(params)
        return {"data": _hex(self.repository.processed_input_count())}

    def list_outputs(self, params: Params) -> dict:
        self._application(params)
        epoch_index, input_index = params.index("epoch_index"), params.index("input_index")
        output_type = params.pattern("output_type", SELECTOR, "a 4-byte selector like \"0xc258d6e5\"")
        voucher_address = params.pattern("voucher_address", ADDRESS, "a 0x address")
        limit, offset, descending = params.pagination()
        outputs, total = self.repository.list_outputs(
            epoch_index=epoch_index, input_index=input_index,
            output_type=bytes.fromhex(output_type[2:]) if output_type else None,
            voucher_address=voucher_address, limit=limit, offset=offset, descending=descending)
        return page([output_json(o) for o in outputs], total, limit, offset)

    def get_output(self, params: Params) -> dict:
        self._application(params)
        out = self.repository.get_output(params.index("output_index", required=True))
        if out is None:
            raise RpcError(OUTPUT_NOT_FOUND, "output not found")
        return {"data": output_json(out)}

    def list_reports(self, params: Params) -> dict:
        self._application(params)
        epoch_index, input_index = params.index("epoch_index"), params.index("input_index")
        limit, offset, descending = params.pagination()
        reports, total = self.repository.list_reports(epoch_index=epoch_index, input_index=input_index,
                                                      limit=limit, offset=offset, descending=descending)
        return page([report_json(r) for r in reports], total, limit, offset)

    def get_report(self, params: Params) -> dict:
        self._application(params)
        rep = self.repository.get_report(params.index("report_index", required=True))
        if rep is None:
            raise RpcError(ITEM_NOT_FOUND, "report not found")
        return {"data": report_json(rep)}
