"""The v2 JSON-RPC reader (`POST /rpc`): the real node's methods, field names, hex indices and error codes.

Conformance target and method table: `rollups_node.openrpc`. Parameters are checked as the real node's Go
decoding checks them (`internal/jsonrpc/types.go`, `parseIndex` in `jsonrpc.go`); what the node serves is
bounded (`MAX_BATCH`, `BATCH_LIST_ITEMS`, `MAX_ANSWER_BYTES`, `bounded_json.MAX_DEPTH`), and a request
over a bound gets an error, never an unbounded answer.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Optional

from rollups_node import bounded_json
from rollups_node.model import EPOCH_STATUSES, Application, Epoch, Input, Output, Report
from rollups_node.openrpc import (INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST,
                                  LIMIT_EXCEEDED, METHOD_NOT_FOUND, NODE_VERSION, PARSE_ERROR, RESOURCE_NOT_FOUND,
                                  document, param_names)
from rollups_node.outputs import decoded_data
from rollups_node.repository import Repository

APP_NAME = re.compile(r"^[a-z0-9_-]{3,}$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
HEX_INDEX = re.compile(r"^0[xX]0*([0-9a-fA-F]+)$")  # Go's parseIndex: "0x"/"0X", then strconv.ParseUint(16, 64)
SELECTOR = re.compile(r"^0x[0-9a-fA-F]{8}$")
DEFAULT_LIMIT, MAX_LIMIT = 50, 10_000  # the real node's LIST_ITEM_DEFAULT and LIST_ITEM_LIMIT
UINT64 = (1 << 64) - 1  # the real node's indices, offsets and limits are uint64: larger ones are invalid params
SQL_MAX = (1 << 63) - 1  # SQLite's largest integer: nothing is stored beyond it
MAX_BATCH = 100  # requests in one batch
BATCH_LIST_ITEMS = MAX_LIMIT  # the sum of a batch's list limits, as newer nodes bound it
MAX_ANSWER_BYTES = 32 << 20  # one HTTP answer (a single call or a whole batch)
CHUNK = 500  # list items read from the repository at a time
# Host mode measures no cycles: the limits are the largest uint64; deadlines are the node's finish timeout.
NO_CYCLE_LIMIT = hex(UINT64)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class AnswerBudget:
    """The bytes one HTTP answer may still take; spending past it is a LIMIT_EXCEEDED error."""

    def __init__(self) -> None:
        self.size = self.left = MAX_ANSWER_BYTES

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise RpcError(LIMIT_EXCEEDED, f"answer larger than {self.size} bytes: ask for fewer items")


def _hex(value: Optional[int]) -> Optional[str]:
    return None if value is None else hex(value)


def _bytes(value: Optional[bytes]) -> Optional[str]:
    return None if value is None else "0x" + value.hex()


# ---- how each record looks on the wire -------------------------------------------------------------
def execution_parameters_json(app: Application, deadline_ns: int) -> dict:
    deadline = _hex(deadline_ns)
    return {"snapshot_policy": "NONE", "advance_inc_cycles": NO_CYCLE_LIMIT, "advance_max_cycles": NO_CYCLE_LIMIT,
            "inspect_inc_cycles": NO_CYCLE_LIMIT, "inspect_max_cycles": NO_CYCLE_LIMIT,
            "advance_inc_deadline": deadline, "advance_max_deadline": deadline, "inspect_inc_deadline": deadline,
            "inspect_max_deadline": deadline, "load_deadline": deadline, "store_deadline": deadline,
            "fast_deadline": deadline, "max_concurrent_inspects": 1,
            "created_at": app.created_at, "updated_at": app.updated_at}


def application_json(app: Application, processed: int, last_read_block: int, deadline_ns: int) -> dict:
    checked = _hex(max(last_read_block, 0))
    return {"name": app.name, "iapplication_address": app.address, "iconsensus_address": app.consensus,
            "iinputbox_address": app.input_box, "template_hash": app.template_hash,
            "epoch_length": _hex(app.epoch_length), "data_availability": app.data_availability,
            "consensus_type": app.consensus_type, "state": app.state, "reason": app.reason,
            "iinputbox_block": _hex(app.input_box_block), "last_epoch_check_block": checked,
            "last_input_check_block": checked, "last_output_check_block": checked,
            "last_tournament_check_block": "0x0", "processed_inputs": _hex(processed),
            "created_at": app.created_at, "updated_at": app.updated_at,
            "execution_parameters": execution_parameters_json(app, deadline_ns)}


def input_json(item: Input) -> dict:
    return {"epoch_index": _hex(item.epoch_index), "index": _hex(item.index), "block_number": _hex(item.block_number),
            "raw_data": _bytes(item.raw_data),
            "decoded_data": {"chain_id": _hex(item.chain_id), "application_contract": item.app_contract,
                             "sender": item.sender, "block_number": _hex(item.block_number),
                             "block_timestamp": _hex(item.block_timestamp), "prev_randao": _hex(item.prev_randao),
                             "index": _hex(item.index), "payload": _bytes(item.payload)},
            "status": item.status, "machine_hash": None, "outputs_hash": item.outputs_hash,
            "transaction_reference": item.transaction_reference, "transaction_hash": item.transaction_reference,
            "log_index": _hex(item.log_index), "created_at": item.created_at, "updated_at": item.updated_at}


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
    """An Authority epoch: its claim is the outputs Merkle root; no machine, so no proof of it in a machine
    state, and no PRT commitment or tournament."""
    return {"index": _hex(epoch.index), "first_block": _hex(epoch.first_block), "last_block": _hex(epoch.last_block),
            "input_index_lower_bound": _hex(epoch.input_index_lower_bound),
            "input_index_upper_bound": _hex(epoch.input_index_upper_bound), "machine_hash": None,
            "outputs_merkle_root": epoch.claim_hash, "outputs_merkle_proof": None, "commitment": None,
            "commitment_proof": None, "claim_transaction_hash": epoch.claim_transaction_hash,
            "tournament_address": None, "status": epoch.status, "virtual_index": _hex(epoch.virtual_index),
            "created_at": epoch.created_at, "updated_at": epoch.updated_at}


# ---- parameter checking ------------------------------------------------------------------------------
class Params:
    """The parameters of one call, by name or by position (in the declared order), as the real node's Go
    decoding takes them: absent params are invalid (Go cannot decode nothing), `null` values are Go's zero
    values, names it does not know are ignored."""

    def __init__(self, raw: Any, names: tuple[str, ...], present: bool = True) -> None:
        if not present and names:
            raise RpcError(INVALID_PARAMS, "Invalid parameters: params are required")
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
        match = HEX_INDEX.match(value) if isinstance(value, str) else None
        if match is None or len(match.group(1)) > 16:
            raise RpcError(INVALID_PARAMS, f"invalid {name}: expected a hex encoded uint64 like \"0x1\"")
        return int(match.group(1), 16)

    def _uint(self, name: str) -> int:
        value = self.raw.get(name)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT64:
            raise RpcError(INVALID_PARAMS, f"{name} must be an unsigned 64-bit integer")
        return value

    def limit(self) -> int:
        """The effective limit: 0 or absent is 50, above 10 000 it is capped (the real node's rules)."""
        return min(self._uint("limit") or DEFAULT_LIMIT, MAX_LIMIT)

    def pagination(self) -> tuple[int, int, bool]:
        limit, offset = self.limit(), self._uint("offset")
        descending = self.raw.get("descending")
        if descending is not None and not isinstance(descending, bool):
            raise RpcError(INVALID_PARAMS, "descending must be true or false")
        return limit, offset, bool(descending)

    def pattern(self, name: str, regex: re.Pattern, what: str, required: bool = False) -> Optional[str]:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise RpcError(INVALID_PARAMS, f"missing parameter {name}")
            return None
        if not isinstance(value, str) or not regex.match(value):
            raise RpcError(INVALID_PARAMS, f"{name} must be {what}")
        return value


def _stored(index: Optional[int]) -> Optional[int]:
    """An index as the repository can look it up: beyond SQLite's integers nothing is stored (-1 finds nothing)."""
    return None if index is None else index if index <= SQL_MAX else -1


def page(items: list[dict], total: int, limit: int, offset: int) -> dict:
    return {"data": items, "pagination": {"total_count": total, "limit": limit, "offset": offset}}


Fetch = Callable[[int, int], tuple[list, int]]  # (limit, offset) -> (records, total)


class JsonRpcReader:
    """Answers JSON-RPC 2.0 requests (single or batch) from the repository; never raises."""

    def __init__(self, repository: Repository, chain_id: int, finish_timeout: float = 10.0) -> None:
        self.repository, self.chain_id = repository, chain_id
        self.deadline_ns = int(finish_timeout * 1e9)
        handlers: dict[str, Callable[[Params, AnswerBudget], Any]] = {
            "rpc.discover": lambda p, b: document(),
            "cartesi_listApplications": self.list_applications,
            "cartesi_getApplication": self.get_application,
            "cartesi_listEpochs": self.list_epochs,
            "cartesi_getEpoch": self.get_epoch,
            "cartesi_getLastAcceptedEpochIndex": self.last_accepted_epoch_index,
            "cartesi_listInputs": self.list_inputs,
            "cartesi_getInput": self.get_input,
            "cartesi_getProcessedInputCount": self.processed_input_count,
            "cartesi_listOutputs": self.list_outputs,
            "cartesi_getOutput": self.get_output,
            "cartesi_listReports": self.list_reports,
            "cartesi_getReport": self.get_report,
            "cartesi_listTournaments": self.list_prt(("epoch_index", "level"),
                                                     ("parent_tournament_address",), ("parent_match_id_hash",)),
            "cartesi_getTournament": self.get_prt("Tournament", (), ("address",), ()),
            "cartesi_listCommitments": self.list_prt(("epoch_index",), ("tournament_address",), ()),
            "cartesi_getCommitment": self.get_prt("Commitment", ("epoch_index",), ("tournament_address",),
                                                  ("commitment",)),
            "cartesi_listMatches": self.list_prt(("epoch_index",), ("tournament_address",), ()),
            "cartesi_getMatch": self.get_prt("Match", ("epoch_index",), ("tournament_address",), ("id_hash",)),
            "cartesi_listMatchAdvances": self.list_prt(("epoch_index",), ("tournament_address",), ("id_hash",),
                                                       required=True),
            "cartesi_getMatchAdvanced": self.get_prt("Match advanced", ("epoch_index",), ("tournament_address",),
                                                     ("id_hash", "parent")),
            "cartesi_getChainId": lambda p, b: {"data": _hex(self.chain_id)},
            "cartesi_getNodeVersion": lambda p, b: {"data": NODE_VERSION},
        }
        # method -> (parameter names in the real node's declaration order, for positional params; handler)
        self.methods = {name: (param_names(name), handler) for name, handler in handlers.items()}

    # ---- transport ----
    def handle_bytes(self, body: bytes) -> Optional[bytes]:
        """One HTTP body in, one HTTP body out (None for a batch of notifications only)."""
        try:
            request = bounded_json.loads(body)
        except bounded_json.TooDeep as err:
            return self._encode(self._error(None, INVALID_REQUEST, str(err)))
        except (ValueError, UnicodeDecodeError):
            return self._encode(self._error(None, PARSE_ERROR, "parse error"))
        budget = AnswerBudget()
        if not isinstance(request, list):
            text = self._within(budget, self.handle(request, budget))
            return text.encode() if text is not None else b""
        refusal = self._batch_refusal(request)
        if refusal:
            return self._encode(self._error(None, *refusal))
        replies = [text for text in (self._within(budget, self.handle(item, budget)) for item in request)
                   if text is not None]
        return ("[" + ",".join(replies) + "]").encode() if replies else None

    @staticmethod
    def _encode(reply: dict) -> bytes:
        return json.dumps(reply).encode()

    def _within(self, budget: AnswerBudget, reply: Optional[dict]) -> Optional[str]:
        """The reply as JSON text, or a LIMIT_EXCEEDED error in its place when the answer is out of bytes."""
        if reply is None:
            return None
        text = json.dumps(reply)
        try:
            budget.spend(len(text))
        except RpcError as err:
            text = json.dumps(self._error(reply.get("id"), err.code, err.message))
        return text

    def _batch_refusal(self, batch: list) -> Optional[tuple[int, str]]:
        if not batch:
            return INVALID_REQUEST, "empty batch"
        if len(batch) > MAX_BATCH:
            return LIMIT_EXCEEDED, f"batch of {len(batch)} requests; at most {MAX_BATCH}"
        items = 0
        for request in batch:
            method = request.get("method") if isinstance(request, dict) else None
            if isinstance(method, str) and method.startswith("cartesi_list") and method in self.methods:
                try:
                    items += Params(request.get("params"), self.methods[method][0]).limit()
                except RpcError:
                    continue  # answered with its own error
        if items > BATCH_LIST_ITEMS:
            return LIMIT_EXCEEDED, f"Batch list item limit exceeded: {items} items asked, at most {BATCH_LIST_ITEMS}"
        return None

    @staticmethod
    def _error(request_id: Any, code: int, message: str) -> dict:
        return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": request_id}

    def handle(self, request: Any, budget: Optional[AnswerBudget] = None) -> Optional[dict]:
        if not isinstance(request, dict):
            return self._error(None, INVALID_REQUEST, "a request must be a JSON object")
        request_id = request.get("id")
        if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str) \
                or not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
            return self._error(request_id if isinstance(request_id, (str, int)) else None, INVALID_REQUEST,
                               "invalid request: needs jsonrpc \"2.0\", a method name and an id")
        entry = self.methods.get(request["method"])
        if entry is None:
            return self._error(request_id, METHOD_NOT_FOUND, "Method not found")
        names, method = entry
        try:
            result = method(Params(request.get("params"), names, "params" in request), budget or AnswerBudget())
        except RpcError as err:
            return self._error(request_id, err.code, err.message)
        except Exception:  # a reader bug must not take the node down
            return self._error(request_id, INTERNAL_ERROR, "Internal server error")
        if "id" not in request:
            return None  # a notification
        return {"jsonrpc": "2.0", "result": result, "id": request_id}

    # ---- methods ----
    def _application(self, params: Params) -> Application:
        name = params.raw.get("application")
        if not isinstance(name, str) or not (APP_NAME.match(name) or ADDRESS.match(name)):
            raise RpcError(INVALID_PARAMS, "Invalid application identifier: invalid application name")
        app = self.repository.application()
        if app is None or name.lower() not in (app.name, app.address.lower()):
            raise RpcError(RESOURCE_NOT_FOUND, "Application not found")
        return app

    @staticmethod
    def _listed(fetch: Fetch, to_json: Callable[[Any], dict], limit: int, offset: int,
                budget: AnswerBudget) -> dict:
        """A page of `limit` records from `offset`, read CHUNK at a time, each charged to the answer budget."""
        items: list[dict] = []
        total, start = 0, offset
        while len(items) < limit:
            want = min(CHUNK, limit - len(items))
            records, total = fetch(want, min(start, SQL_MAX))
            for record in records:
                item = to_json(record)
                budget.spend(len(json.dumps(item)))
                items.append(item)
            start += len(records)
            if len(records) < want:
                break
        return page(items, total, limit, offset)

    def _filtered(self, fetch: Callable[..., tuple[list, int]], to_json: Callable[[Any], dict], params: Params,
                  budget: AnswerBudget, **filters: Any) -> dict:
        limit, offset, descending = params.pagination()
        return self._listed(lambda n, start: fetch(limit=n, offset=start, descending=descending, **filters),
                            to_json, limit, offset, budget)

    def list_applications(self, params: Params, budget: AnswerBudget) -> dict:
        limit, offset, _ = params.pagination()
        app = self.repository.application()
        apps = [self._app_json(app)] if app else []
        return page(apps[offset:offset + limit], len(apps), limit, offset)

    def _app_json(self, app: Application) -> dict:
        return application_json(app, self.repository.processed_input_count(), self.repository.last_read_block(),
                                self.deadline_ns)

    def get_application(self, params: Params, budget: AnswerBudget) -> dict:
        return {"data": self._app_json(self._application(params))}

    def list_epochs(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        status = params.raw.get("status")
        if status is not None and status not in EPOCH_STATUSES:
            raise RpcError(INVALID_PARAMS, f"Invalid epoch status: must be one of {', '.join(EPOCH_STATUSES)}")
        return self._filtered(self.repository.list_epochs, epoch_json, params, budget, status=status)

    def get_epoch(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        epoch = self.repository.get_epoch(_stored(params.index("epoch_index", required=True)))
        if epoch is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Epoch not found")
        return {"data": epoch_json(epoch)}

    def last_accepted_epoch_index(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        index = self.repository.last_accepted_epoch_index()
        if index is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Epoch not found")
        return {"data": _hex(index)}

    def list_inputs(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        epoch_index = _stored(params.index("epoch_index"))
        sender = params.pattern("sender", ADDRESS, "a 0x address")
        return self._filtered(self.repository.list_inputs, input_json, params, budget, epoch_index=epoch_index,
                              sender=sender)

    def get_input(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        item = self.repository.get_input(_stored(params.index("input_index", required=True)))
        if item is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Input not found")
        return {"data": input_json(item)}

    def processed_input_count(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        return {"data": _hex(self.repository.processed_input_count())}

    def list_outputs(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        epoch_index, input_index = _stored(params.index("epoch_index")), _stored(params.index("input_index"))
        output_type = params.pattern("output_type", SELECTOR, "a 4-byte selector like \"0xc258d6e5\"")
        voucher_address = params.pattern("voucher_address", ADDRESS, "a 0x address")
        return self._filtered(self.repository.list_outputs, output_json, params, budget, epoch_index=epoch_index,
                              input_index=input_index, voucher_address=voucher_address,
                              output_type=bytes.fromhex(output_type[2:]) if output_type else None)

    def get_output(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        out = self.repository.get_output(_stored(params.index("output_index", required=True)))
        if out is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Output not found")
        return {"data": output_json(out)}

    def list_reports(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        epoch_index, input_index = _stored(params.index("epoch_index")), _stored(params.index("input_index"))
        return self._filtered(self.repository.list_reports, report_json, params, budget, epoch_index=epoch_index,
                              input_index=input_index)

    def get_report(self, params: Params, budget: AnswerBudget) -> dict:
        self._application(params)
        rep = self.repository.get_report(_stored(params.index("report_index", required=True)))
        if rep is None:
            raise RpcError(RESOURCE_NOT_FOUND, "Report not found")
        return {"data": report_json(rep)}

    # ---- PRT: an Authority application has no tournaments, commitments or matches ----
    def _prt_params(self, params: Params, indices: tuple[str, ...], addresses: tuple[str, ...],
                    hashes: tuple[str, ...], required: bool) -> None:
        self._application(params)
        for name in indices:
            params.index(name, required)
        for name in addresses:
            params.pattern(name, ADDRESS, "a 0x address", required)
        for name in hashes:
            params.pattern(name, HASH, "a 32-byte 0x hash", required)

    def list_prt(self, indices: tuple[str, ...], addresses: tuple[str, ...], hashes: tuple[str, ...],
                 required: bool = False) -> Callable[[Params, AnswerBudget], dict]:
        def handler(params: Params, budget: AnswerBudget) -> dict:
            self._prt_params(params, indices, addresses, hashes, required)
            limit, offset, _ = params.pagination()
            return page([], 0, limit, offset)
        return handler

    def get_prt(self, what: str, indices: tuple[str, ...], addresses: tuple[str, ...],
                hashes: tuple[str, ...]) -> Callable[[Params, AnswerBudget], dict]:
        def handler(params: Params, budget: AnswerBudget) -> dict:
            self._prt_params(params, indices, addresses, hashes, True)
            raise RpcError(RESOURCE_NOT_FOUND, f"{what} not found")
        return handler
