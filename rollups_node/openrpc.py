"""The node's OpenRPC document (what `rpc.discover` answers): every method, its parameters, result and errors.

Written for this node from the facts of the real node's document and source, cartesi/rollups-node
`internal/jsonrpc/jsonrpc-discover.json`, `jsonrpc.go` and `types.go` (the 2.0.0-alpha line; see
`CONFORMANCE_TARGET`). Where the upstream document and its source differ the source wins: decoded outputs
are typed "Notice"/"Voucher"/"DelegateCallVoucher" (not a selector), and `reason` may be null.

The component schemas are JSON Schema: strict (every field the real node sends is required, no other
field is allowed) so the conformance test (`tests/test_node_conformance.py`) catches any drift.
"""
from __future__ import annotations

from typing import Any

CONFORMANCE_TARGET = "cartesi/rollups-node v2.0.0-alpha.12"
NODE_VERSION = "2.0.0-fedrollup-host"

# Error codes: the JSON-RPC 2.0 ones, the released node's one "not found" code, and this node's limits.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
RESOURCE_NOT_FOUND = -32001  # the released node: every "not found", the application included
APPLICATION_NOT_FOUND_NEWER = -32002  # nodes after rollups-node#783 (unreleased): the application only
LIMIT_EXCEEDED = -32005  # this node's bounds (batch length and work, answer size); EIP-1474's "limit exceeded"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(name: str) -> dict:
    return {"oneOf": [_ref(name), {"type": "null"}]}


def _hashes() -> dict:
    return {"oneOf": [{"type": "array", "items": _ref("Hash")}, {"type": "null"}]}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties,
            "required": [name for name in properties if name not in optional], "additionalProperties": False}


def _list_of(item: str) -> dict:
    return _object({"data": {"type": "array", "items": _ref(item)}, "pagination": _ref("Pagination")})


def _data(schema: dict) -> dict:
    return _object({"data": schema})


STAMP = {"type": "string"}  # the real node's timestamps (RFC 3339); ours are ISO 8601 from the same clock
_STAMPS = {"created_at": STAMP, "updated_at": STAMP}

SCHEMAS: dict[str, dict] = {
    "EthereumAddress": {"type": "string", "pattern": "^0x[a-fA-F0-9]{40}$"},
    "Hash": {"type": "string", "pattern": "^0x[a-fA-F0-9]{64}$"},
    "ByteArray": {"type": "string", "pattern": "^0x([a-fA-F0-9]{2})*$"},
    "UnsignedInteger": {"type": "string", "pattern": "^0x(0|[1-9a-f][0-9a-f]{0,15})$"},  # Go's %x of a uint64
    "FunctionSelector": {"type": "string", "pattern": "^0x[a-fA-F0-9]{8}$"},
    "ApplicationName": {"type": "string", "pattern": "^[a-z0-9_-]{3,}$"},
    "NameOrAddress": {"oneOf": [_ref("ApplicationName"), _ref("EthereumAddress")]},
    "Pagination": _object({"total_count": {"type": "integer", "minimum": 0},
                           "limit": {"type": "integer", "minimum": 1}, "offset": {"type": "integer", "minimum": 0}}),
    "ApplicationState": {"enum": ["ENABLED", "DISABLED", "INOPERABLE"]},
    "Consensus": {"enum": ["AUTHORITY", "QUORUM", "PRT"]},
    "SnapshotPolicy": {"enum": ["NONE", "EVERY_INPUT", "EVERY_EPOCH"]},
    "ExecutionParameters": _object({
        "snapshot_policy": _ref("SnapshotPolicy"),
        **{name: _ref("UnsignedInteger") for name in (
            "advance_inc_cycles", "advance_max_cycles", "inspect_inc_cycles", "inspect_max_cycles",
            "advance_inc_deadline", "advance_max_deadline", "inspect_inc_deadline", "inspect_max_deadline",
            "load_deadline", "store_deadline", "fast_deadline")},
        "max_concurrent_inspects": {"type": "integer", "minimum": 0}, **_STAMPS}),
    "Application": _object({
        "name": _ref("ApplicationName"), "iapplication_address": _ref("EthereumAddress"),
        "iconsensus_address": _ref("EthereumAddress"), "iinputbox_address": _ref("EthereumAddress"),
        "template_hash": _ref("Hash"), "epoch_length": _ref("UnsignedInteger"),
        "data_availability": _ref("ByteArray"), "consensus_type": _ref("Consensus"), "state": _ref("ApplicationState"),
        "reason": {"type": ["string", "null"]}, "iinputbox_block": _ref("UnsignedInteger"),
        "last_epoch_check_block": _ref("UnsignedInteger"), "last_input_check_block": _ref("UnsignedInteger"),
        "last_output_check_block": _ref("UnsignedInteger"), "last_tournament_check_block": _ref("UnsignedInteger"),
        "processed_inputs": _ref("UnsignedInteger"), **_STAMPS, "execution_parameters": _ref("ExecutionParameters")}),
    "EpochStatus": {"enum": ["OPEN", "CLOSED", "INPUTS_PROCESSED", "CLAIM_COMPUTED", "CLAIM_SUBMITTED",
                             "CLAIM_ACCEPTED", "CLAIM_REJECTED"]},
    "Epoch": _object({
        "index": _ref("UnsignedInteger"), "first_block": _ref("UnsignedInteger"), "last_block": _ref("UnsignedInteger"),
        "input_index_lower_bound": _ref("UnsignedInteger"), "input_index_upper_bound": _ref("UnsignedInteger"),
        "machine_hash": _nullable("Hash"), "outputs_merkle_root": _nullable("Hash"),
        "outputs_merkle_proof": _hashes(), "commitment": _nullable("Hash"), "commitment_proof": _hashes(),
        "claim_transaction_hash": _nullable("Hash"), "tournament_address": _nullable("EthereumAddress"),
        "status": _ref("EpochStatus"), "virtual_index": _ref("UnsignedInteger"), **_STAMPS}),
    # REPORTS_LIMIT_EXCEEDED: a newer node's status (pkg/machine maxReports); alpha.12 has no reports limit, so
    # this node answers it only for an input alpha.12 would have accepted (see rollup_http_schema.MAX_REPORTS).
    "InputCompletionStatus": {"enum": ["NONE", "ACCEPTED", "REJECTED", "EXCEPTION", "MACHINE_HALTED",
                                       "OUTPUTS_LIMIT_EXCEEDED", "REPORTS_LIMIT_EXCEEDED", "CYCLE_LIMIT_EXCEEDED",
                                       "TIME_LIMIT_EXCEEDED", "PAYLOAD_LENGTH_LIMIT_EXCEEDED"]},
    "EvmAdvance": _object({
        "chain_id": _ref("UnsignedInteger"), "application_contract": _ref("EthereumAddress"),
        "sender": _ref("EthereumAddress"), "block_number": _ref("UnsignedInteger"),
        "block_timestamp": _ref("UnsignedInteger"), "prev_randao": {"type": "string", "pattern": "^0x[0-9a-f]+$"},
        "index": _ref("UnsignedInteger"), "payload": _ref("ByteArray")}),
    # transaction_hash and log_index: sent by nodes newer than the target; clients of the target ignore them
    "Input": _object({
        "epoch_index": _ref("UnsignedInteger"), "index": _ref("UnsignedInteger"), "block_number": _ref("UnsignedInteger"),
        "raw_data": _ref("ByteArray"), "decoded_data": _nullable("EvmAdvance"), "status": _ref("InputCompletionStatus"),
        "machine_hash": _nullable("Hash"), "outputs_hash": _nullable("Hash"), "transaction_reference": _ref("ByteArray"),
        "transaction_hash": _ref("Hash"), "log_index": _ref("UnsignedInteger"), **_STAMPS}),
    "Notice": _object({"type": {"const": "Notice"}, "payload": _ref("ByteArray")}),
    "Voucher": _object({"type": {"const": "Voucher"}, "destination": _ref("EthereumAddress"),
                        "value": {"type": "string", "pattern": "^0x[0-9a-f]+$"}, "payload": _ref("ByteArray")}),
    "DelegateCallVoucher": _object({"type": {"const": "DelegateCallVoucher"}, "destination": _ref("EthereumAddress"),
                                    "payload": _ref("ByteArray")}),
    "DecodedOutput": {"oneOf": [_ref("Notice"), _ref("Voucher"), _ref("DelegateCallVoucher"), {"type": "null"}]},
    "Output": _object({
        "epoch_index": _ref("UnsignedInteger"), "input_index": _ref("UnsignedInteger"), "index": _ref("UnsignedInteger"),
        "raw_data": _ref("ByteArray"), "decoded_data": _ref("DecodedOutput"), "hash": _nullable("Hash"),
        "output_hashes_siblings": _hashes(), "execution_transaction_hash": _nullable("Hash"), **_STAMPS}),
    "Report": _object({"epoch_index": _ref("UnsignedInteger"), "input_index": _ref("UnsignedInteger"),
                       "index": _ref("UnsignedInteger"), "raw_data": _ref("ByteArray"), **_STAMPS}),
    # PRT records: an Authority application never has any, so only their lists (always empty) are answered
    "Tournament": {"type": "object"}, "Commitment": {"type": "object"}, "Match": {"type": "object"},
    "MatchAdvanced": {"type": "object"},
    "ApplicationListResult": _list_of("Application"), "ApplicationGetResult": _data(_ref("Application")),
    "EpochListResult": _list_of("Epoch"), "EpochGetResult": _data(_ref("Epoch")),
    "InputListResult": _list_of("Input"), "InputGetResult": _data(_ref("Input")),
    "OutputListResult": _list_of("Output"), "OutputGetResult": _data(_ref("Output")),
    "ReportListResult": _list_of("Report"), "ReportGetResult": _data(_ref("Report")),
    "TournamentListResult": _list_of("Tournament"), "TournamentGetResult": _data(_ref("Tournament")),
    "CommitmentListResult": _list_of("Commitment"), "CommitmentGetResult": _data(_ref("Commitment")),
    "MatchListResult": _list_of("Match"), "MatchGetResult": _data(_ref("Match")),
    "MatchAdvancedListResult": _list_of("MatchAdvanced"), "MatchAdvancedGetResult": _data(_ref("MatchAdvanced")),
    "UnsignedIntegerResult": _data(_ref("UnsignedInteger")),
    "NodeVersionResult": _data({"type": "string", "pattern": "^[a-zA-Z0-9_.-]+$"}),
    "OpenRpcDocument": {"type": "object", "required": ["openrpc", "info", "methods", "components"]},
    "Error": _object({"jsonrpc": {"const": "2.0"}, "id": {"type": ["string", "integer", "null"]},
                      "error": _object({"code": {"type": "integer"}, "message": {"type": "string"},
                                        "data": {}}, optional=("data",))}),
}

# Parameters: (name, schema, required), in the order of the real node's Go structs (positional params follow it).
APP = ("application", _ref("NameOrAddress"), True)
PAGE = (("limit", {"type": "integer", "minimum": 0}, False), ("offset", {"type": "integer", "minimum": 0}, False),
        ("descending", {"type": "boolean"}, False))


def _index(name: str, required: bool = False) -> tuple[str, dict, bool]:
    return name, _ref("UnsignedInteger"), required


def _typed(name: str, schema: str, required: bool = False) -> tuple[str, dict, bool]:
    return name, _ref(schema), required


METHODS: dict[str, tuple[tuple[tuple[str, dict, bool], ...], str]] = {
    "rpc.discover": ((), "OpenRpcDocument"),
    "cartesi_listApplications": (PAGE, "ApplicationListResult"),
    "cartesi_getApplication": ((APP,), "ApplicationGetResult"),
    "cartesi_listEpochs": ((APP, _typed("status", "EpochStatus")) + PAGE, "EpochListResult"),
    "cartesi_getEpoch": ((APP, _index("epoch_index", True)), "EpochGetResult"),
    "cartesi_getLastAcceptedEpochIndex": ((APP,), "UnsignedIntegerResult"),
    "cartesi_listInputs": ((APP, _index("epoch_index"), _typed("sender", "EthereumAddress")) + PAGE,
                           "InputListResult"),
    "cartesi_getInput": ((APP, _index("input_index", True)), "InputGetResult"),
    "cartesi_getProcessedInputCount": ((APP,), "UnsignedIntegerResult"),
    "cartesi_listOutputs": ((APP, _index("epoch_index"), _index("input_index"),
                             _typed("output_type", "FunctionSelector"), _typed("voucher_address", "EthereumAddress"))
                            + PAGE, "OutputListResult"),
    "cartesi_getOutput": ((APP, _index("output_index", True)), "OutputGetResult"),
    "cartesi_listReports": ((APP, _index("epoch_index"), _index("input_index")) + PAGE, "ReportListResult"),
    "cartesi_getReport": ((APP, _index("report_index", True)), "ReportGetResult"),
    "cartesi_listTournaments": ((APP, _index("epoch_index"), _index("level"),
                                 _typed("parent_tournament_address", "EthereumAddress"),
                                 _typed("parent_match_id_hash", "Hash")) + PAGE, "TournamentListResult"),
    "cartesi_getTournament": ((APP, _typed("address", "EthereumAddress", True)), "TournamentGetResult"),
    "cartesi_listCommitments": ((APP, _index("epoch_index"), _typed("tournament_address", "EthereumAddress"))
                                + PAGE, "CommitmentListResult"),
    "cartesi_getCommitment": ((APP, _index("epoch_index", True), _typed("tournament_address", "EthereumAddress", True),
                               _typed("commitment", "Hash", True)), "CommitmentGetResult"),
    "cartesi_listMatches": ((APP, _index("epoch_index"), _typed("tournament_address", "EthereumAddress")) + PAGE,
                            "MatchListResult"),
    "cartesi_getMatch": ((APP, _index("epoch_index", True), _typed("tournament_address", "EthereumAddress", True),
                          _typed("id_hash", "Hash", True)), "MatchGetResult"),
    "cartesi_listMatchAdvances": ((APP, _index("epoch_index", True),
                                   _typed("tournament_address", "EthereumAddress", True),
                                   _typed("id_hash", "Hash", True)) + PAGE, "MatchAdvancedListResult"),
    "cartesi_getMatchAdvanced": ((APP, _index("epoch_index", True), _typed("tournament_address", "EthereumAddress", True),
                                  _typed("id_hash", "Hash", True), _typed("parent", "Hash", True)),
                                 "MatchAdvancedGetResult"),
    "cartesi_getChainId": ((), "UnsignedIntegerResult"),
    "cartesi_getNodeVersion": ((), "NodeVersionResult"),
}

ERRORS = {"InvalidParams": (INVALID_PARAMS, "Invalid parameters"),
          "ResourceNotFound": (RESOURCE_NOT_FOUND, "Application, epoch, input, output, report, tournament, commitment,"
                                                   " match or match advance not found"),
          "LimitExceeded": (LIMIT_EXCEEDED, "A bound of this node was exceeded (batch length or work, answer size)"),
          "InternalError": (INTERNAL_ERROR, "Internal server error")}


def param_names(method: str) -> tuple[str, ...]:
    return tuple(name for name, _, _ in METHODS[method][0])


def document() -> dict:
    """The OpenRPC document `rpc.discover` answers."""
    methods = [{"name": name,
                "params": [{"name": p, "schema": schema, "required": required} for p, schema, required in params],
                "result": {"name": "result", "schema": _ref(result)},
                "errors": [{"$ref": f"#/components/errors/{e}"} for e in ERRORS]}
               for name, (params, result) in METHODS.items()]
    return {"openrpc": "1.2.6",
            "info": {"title": "fedrollup host-mode Cartesi Rollups node API", "version": NODE_VERSION,
                     "description": f"The reader API of {CONFORMANCE_TARGET} (internal/jsonrpc), served by a host-mode "
                                    "node: one Authority application, no PRT records."},
            "methods": methods,
            "components": {"schemas": SCHEMAS,
                           "errors": {name: {"code": code, "message": message}
                                      for name, (code, message) in ERRORS.items()}}}
