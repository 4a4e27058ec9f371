"""The claimer: closes epochs by block number and submits their outputs Merkle root to the Authority.

An epoch of `epoch_length` blocks closes once L1 is past its last block and the reader has read it;
when all its inputs are processed, its claim is the cumulative outputs root at that point, sent as
`Authority.submitClaim(app, lastProcessedBlock, root)` from the Authority owner's key. The proofs of the
epoch's outputs are computed against that same root and stored with the outputs.
"""
from __future__ import annotations

import logging
import threading

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from contracts_config.transactions import call_function
from rollups_node.merkle import OutputsTree
from rollups_node.model import (EPOCH_CLAIM_ACCEPTED, EPOCH_CLAIM_COMPUTED, EPOCH_CLAIM_REJECTED,
                                EPOCH_CLAIM_SUBMITTED, EPOCH_CLOSED, EPOCH_INPUTS_PROCESSED, EPOCH_OPEN, INPUT_NONE,
                                Epoch)
from rollups_node.repository import Repository

log = logging.getLogger("rollups_node.claimer")

NOT_FIRST_CLAIM = "0x7e942645"


class Claimer:
    def __init__(self, w3: Web3, repository: Repository, authority, application: str, owner_key: str,
                 tree: OutputsTree, tree_lock: threading.Lock) -> None:
        self.w3, self.repository, self.authority = w3, repository, authority
        self.application, self.owner_key = Web3.to_checksum_address(application), owner_key
        self.tree, self.tree_lock = tree, tree_lock

    def step(self) -> int:
        """Move every unfinished epoch as far as it can go; return how many claims were accepted."""
        latest = self.w3.eth.block_number
        accepted = 0
        for status in (EPOCH_OPEN, EPOCH_CLOSED, EPOCH_INPUTS_PROCESSED, EPOCH_CLAIM_COMPUTED, EPOCH_CLAIM_SUBMITTED):
            epochs, _ = self.repository.list_epochs(status=status, limit=1000)
            for epoch in epochs:
                accepted += self.advance_epoch(epoch, latest)
        return accepted

    def advance_epoch(self, epoch: Epoch, latest_block: int) -> int:
        if epoch.status == EPOCH_OPEN:
            if latest_block <= epoch.last_block or self.repository.last_read_block() < epoch.last_block:
                return 0
            self.repository.set_epoch_status(epoch.index, EPOCH_CLOSED)
            epoch.status = EPOCH_CLOSED
        if epoch.status == EPOCH_CLOSED:
            inputs, _ = self.repository.list_inputs(epoch_index=epoch.index, limit=1 << 62)
            if any(item.status == INPUT_NONE for item in inputs):
                return 0
            self.repository.set_epoch_status(epoch.index, EPOCH_INPUTS_PROCESSED)
            epoch.status = EPOCH_INPUTS_PROCESSED
        if epoch.status == EPOCH_INPUTS_PROCESSED:
            epoch.claim_hash = self.compute_claim(epoch)
            epoch.status = EPOCH_CLAIM_COMPUTED
        if epoch.status in (EPOCH_CLAIM_COMPUTED, EPOCH_CLAIM_SUBMITTED):
            return self.submit_claim(epoch)
        return 0

    def compute_claim(self, epoch: Epoch) -> str:
        """The root after the epoch's last output, and every output's proof against it."""
        size = self.repository.number_of_outputs_up_to_epoch(epoch.index)
        with self.tree_lock:
            root = self.tree.root(size)
            outputs, _ = self.repository.list_outputs(epoch_index=epoch.index, limit=1 << 62)
            proofs = {out.index: self.tree.proof(out.index, size) for out in outputs}
        claim = "0x" + root.hex()
        self.repository.store_claim(epoch.index, claim, proofs)
        return claim

    def submit_claim(self, epoch: Epoch) -> int:
        root = bytes.fromhex(epoch.claim_hash[2:])
        call = self.authority.functions.submitClaim(self.application, epoch.last_block, root)
        try:
            call.call({"from": self.authority.functions.owner().call()})
        except ContractLogicError as err:
            if NOT_FIRST_CLAIM in str(err.data or err):
                valid = self.authority.functions.isOutputsMerkleRootValid(self.application, root).call()
                status = EPOCH_CLAIM_ACCEPTED if valid else EPOCH_CLAIM_REJECTED
                self.repository.set_epoch_status(epoch.index, status)
                log.info("epoch %d was already claimed on L1: claim %s %s", epoch.index, epoch.claim_hash[:10] + "…",
                         "accepted" if valid else "differs from ours (rejected)")
                return int(valid)
            raise
        receipt = call_function(self.w3, self.owner_key, call)
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        self.repository.set_epoch_status(epoch.index, EPOCH_CLAIM_SUBMITTED, claim_transaction_hash=tx_hash)
        accepted_events = self.authority.events.ClaimAccepted().process_receipt(receipt, errors=DISCARD)
        if any(bytes(ev["args"]["outputsMerkleRoot"]) == root for ev in accepted_events):
            self.repository.set_epoch_status(epoch.index, EPOCH_CLAIM_ACCEPTED)
            log.info("epoch %d closed at block %d, claim %s submitted, accepted", epoch.index, epoch.last_block,
                     epoch.claim_hash[:10] + "…")
            return 1
        log.info("epoch %d closed at block %d, claim %s submitted, not accepted yet", epoch.index,
                 epoch.last_block, epoch.claim_hash[:10] + "…")
        return 0
