"""The records the node keeps, named as in the real node's `pkg/model`: inputs, outputs, reports, epochs."""
from __future__ import annotations

import dataclasses
from typing import Optional

# Input statuses of the real node (a host backend can reach the first four and the two output limits).
# REPORTS_LIMIT_EXCEEDED is a newer node's (rollups-node pkg/machine maxReports), not v2.0.0-alpha.12's.
INPUT_NONE, INPUT_ACCEPTED, INPUT_REJECTED, INPUT_EXCEPTION = "NONE", "ACCEPTED", "REJECTED", "EXCEPTION"
INPUT_OUTPUTS_LIMIT_EXCEEDED, INPUT_REPORTS_LIMIT_EXCEEDED = "OUTPUTS_LIMIT_EXCEEDED", "REPORTS_LIMIT_EXCEEDED"
INPUT_STATUSES = (INPUT_NONE, INPUT_ACCEPTED, INPUT_REJECTED, INPUT_EXCEPTION, "MACHINE_HALTED",
                  INPUT_OUTPUTS_LIMIT_EXCEEDED, INPUT_REPORTS_LIMIT_EXCEEDED, "CYCLE_LIMIT_EXCEEDED",
                  "TIME_LIMIT_EXCEEDED", "PAYLOAD_LENGTH_LIMIT_EXCEEDED")
# Epoch statuses of the real node.
EPOCH_OPEN, EPOCH_CLOSED, EPOCH_INPUTS_PROCESSED = "OPEN", "CLOSED", "INPUTS_PROCESSED"
EPOCH_CLAIM_COMPUTED, EPOCH_CLAIM_SUBMITTED = "CLAIM_COMPUTED", "CLAIM_SUBMITTED"
EPOCH_CLAIM_ACCEPTED, EPOCH_CLAIM_REJECTED = "CLAIM_ACCEPTED", "CLAIM_REJECTED"
EPOCH_STATUSES = (EPOCH_OPEN, EPOCH_CLOSED, EPOCH_INPUTS_PROCESSED, EPOCH_CLAIM_COMPUTED,
                  EPOCH_CLAIM_SUBMITTED, EPOCH_CLAIM_ACCEPTED, EPOCH_CLAIM_REJECTED)


@dataclasses.dataclass
class Application:
    name: str
    address: str
    consensus: str
    input_box: str
    input_box_block: int
    template_hash: str
    epoch_length: int
    data_availability: str
    chain_id: int
    state: str = "ENABLED"
    created_at: str = ""
    updated_at: str = ""
    consensus_type: str = "AUTHORITY"  # AUTHORITY or QUORUM, read from L1 (IQuorum's ERC-165 interface id)
    reason: Optional[str] = None  # why the application is INOPERABLE


APP_ENABLED, APP_INOPERABLE = "ENABLED", "INOPERABLE"


@dataclasses.dataclass
class Input:
    """One InputAdded event: the EvmAdvance blob and its decoded metadata."""
    index: int
    epoch_index: int
    block_number: int
    block_timestamp: int
    chain_id: int
    app_contract: str
    sender: str
    prev_randao: int
    payload: bytes
    raw_data: bytes
    transaction_reference: str
    status: str = INPUT_NONE
    log_index: int = 0  # the InputAdded log's index in its block
    outputs_hash: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""


@dataclasses.dataclass
class Output:
    index: int
    input_index: int
    epoch_index: int
    raw_data: bytes
    hash: bytes
    output_hashes_siblings: Optional[list[bytes]] = None  # the proof, once the epoch's claim is computed
    execution_transaction_hash: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""


@dataclasses.dataclass
class Report:
    index: int
    input_index: int
    epoch_index: int
    raw_data: bytes
    created_at: str = ""
    updated_at: str = ""


@dataclasses.dataclass
class Epoch:
    index: int
    first_block: int
    last_block: int
    status: str = EPOCH_OPEN
    claim_hash: Optional[str] = None
    claim_transaction_hash: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""
    input_index_lower_bound: int = 0  # its first input; upper bound is one past its last
    input_index_upper_bound: int = 0
    virtual_index: int = 0  # its position among the epochs that have inputs (0, 1, 2, …)
