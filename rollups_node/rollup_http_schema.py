"""The rollup HTTP API v2 as JSON Schema: the bodies a backend may POST, and the requests `/finish` hands it.

Written from the official spec and checked against the server the machine really runs:

- spec: cartesi/openapi-interfaces `rollup.yaml`, `info.version` 0.9.0 with the delegate-call voucher
  (main at commit 902f686, 2025-01-08; no tag carries it), the API cartesi/machine-guest-tools v0.17.0's
  rollup-http-server implements (`dapp/Dockerfile` pins machine-guest-tools 0.17.0);
- server: machine-guest-tools v0.17.0 `rollup-http/rollup-http-server/src/http_service.rs` and
  `src/rollup/mod.rs`, `sys-utils/libcmt/src/rollup.c` (unchanged in v0.17.1); the machine's cmio tx buffer
  is 2 MiB (machine-emulator `PMA_CMIO_TX_BUFFER_LOG2_SIZE` = 21);
- node: cartesi/rollups-node v2 `pkg/machine/implementation.go`, the outputs and reports one input may emit.

Where the two differ, a body must satisfy both (a stand-in at least as strict as either):

- the spec requires a voucher's `value`, as exactly 32 bytes (`0x` + 64 digits); the server takes no value
  as zero and 1 to 32 bytes, and refuses an odd digit count (`hex::decode`): `hex(10**15)` fails there;
- the server never checks the `0x` of a payload (it drops the first two characters); the spec's pattern does;
- the spec gives the voucher payloads only `format: hex`; the server hex-decodes them like every payload;
- the spec's `RollupRequest.data` is a `oneOf` that an advance matches twice (it has a `payload` too);
  here `request_type` chooses the shape, which is what the spec means;
- the server adds limits the spec does not state (below): JSON bodies of 5 MiB (actix `JsonConfig`),
  outputs within the tx buffer (libcmt answers `-ENOBUFS`), serde_json's nesting limit, no repeated field;
  and the node's: at most 65,536 outputs and 65,536 reports per input.
"""
from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

SPEC = "cartesi/openapi-interfaces rollup.yaml 0.9.0 + delegate-call voucher (commit 902f686)"
SERVER = "cartesi/machine-guest-tools v0.17.0 rollup-http-server"

MAX_BODY_BYTES = 5 << 20  # http_service.rs: JsonConfig::default().limit(5 << 20)
TX_BUFFER_BYTES = 1 << 21  # an output's ABI encoding, or a report's or exception's bytes, must fit
MAX_JSON_DEPTH = 128  # serde_json's recursion limit

# The largest payload each route takes, from TX_BUFFER_BYTES: machine-guest-tools v0.17.1
# sys-utils/libcmt/src/rollup.c writes an output's call encoding into the tx buffer (selector, head words,
# length word, payload padded to 32 bytes; abi.c cmt_abi_reserve_bytes_d) and answers -ENOBUFS when it does not
# fit; a report or an exception is its bytes alone. The server turns -ENOBUFS into 400.
MAX_PAYLOAD_BYTES = {
    "/notice": (TX_BUFFER_BYTES - 4 - 2 * 32) // 32 * 32,  # Notice(bytes): 2,097,056
    "/voucher": (TX_BUFFER_BYTES - 4 - 4 * 32) // 32 * 32,  # Voucher(address,uint256,bytes): 2,096,992
    "/delegate-call-voucher": (TX_BUFFER_BYTES - 4 - 3 * 32) // 32 * 32,  # DelegateCallVoucher: 2,097,024
    "/report": TX_BUFFER_BYTES, "/exception": TX_BUFFER_BYTES,  # 2,097,152
}

# How many outputs and reports one input may emit. cartesi/rollups-node v2 pkg/machine/implementation.go:
# `maxOutputs = 65536`; the machine's next output ends the input OUTPUTS_LIMIT_EXCEEDED (its fork is dropped:
# no output kept, the state as before). Newer builds add `maxReports = 65536` and REPORTS_LIMIT_EXCEEDED.
MAX_OUTPUTS = 1 << 16
MAX_REPORTS = 1 << 16

_END = "$(?!\n)"  # the end as JSON Schema means '$'; Python's '$' (jsonschema uses `re`) also matches before a final \n
HEX_BYTES = "^0x(?:[0-9a-fA-F]{2})*" + _END  # rollup.yaml Payload: 0x, digit pairs (not capturing: 3x faster)
ADDRESS = "^0x[0-9a-fA-F]{40}" + _END  # rollup.yaml `format: address`
UINT256 = "^0x[0-9a-fA-F]{64}" + _END  # rollup.yaml Voucher.value, Metadata.prev_randao: big-endian 32 bytes

_HEX = {"type": "string", "pattern": HEX_BYTES}
_ADDRESS = {"type": "string", "pattern": ADDRESS}
_UINT256 = {"type": "string", "pattern": UINT256}
_UINT64 = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """An object with every listed property required; unknown ones are ignored, as serde ignores them."""
    return {"type": "object", "properties": properties, "required": list(properties)}


FINISH = _object({"status": {"type": "string", "enum": ["accept", "reject"]}})
VOUCHER = _object({"destination": _ADDRESS, "value": _UINT256, "payload": _HEX})
DELEGATE_CALL_VOUCHER = _object({"destination": _ADDRESS, "payload": _HEX})
PAYLOAD = _object({"payload": _HEX})  # Notice, Report and Exception
METADATA = _object({"chain_id": _UINT64, "app_contract": _ADDRESS, "msg_sender": _ADDRESS, "input_index": _UINT64,
                    "block_number": _UINT64, "block_timestamp": _UINT64, "prev_randao": _UINT256})
ROLLUP_REQUEST = {
    "type": "object",
    "required": ["request_type", "data"],
    "properties": {"request_type": {"enum": ["advance_state", "inspect_state"]}},
    "if": {"properties": {"request_type": {"const": "advance_state"}}},
    "then": {"properties": {"data": _object({"metadata": METADATA, "payload": _HEX})}},
    "else": {"properties": {"data": _object({"payload": _HEX})}},
}
INDEX_RESPONSE = _object({"index": _UINT64})

# Each route's request body (the `/gio` route is not served: the backend has no use for it).
REQUEST_BODIES: dict[str, dict[str, Any]] = {
    "/finish": FINISH, "/voucher": VOUCHER, "/delegate-call-voucher": DELEGATE_CALL_VOUCHER,
    "/notice": PAYLOAD, "/report": PAYLOAD, "/exception": PAYLOAD,
}
VALIDATORS = {route: Draft202012Validator(schema) for route, schema in REQUEST_BODIES.items()}
ROLLUP_REQUEST_VALIDATOR = Draft202012Validator(ROLLUP_REQUEST)
INDEX_RESPONSE_VALIDATOR = Draft202012Validator(INDEX_RESPONSE)
for _schema in (*REQUEST_BODIES.values(), ROLLUP_REQUEST, INDEX_RESPONSE):
    Draft202012Validator.check_schema(_schema)
