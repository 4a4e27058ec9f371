"""The claimer: closes epochs by block number and votes their outputs Merkle root on the consensus.

An epoch of `epoch_length` blocks closes once L1 is past its last block and the reader has read it;
when all its inputs are processed, its claim is the cumulative outputs root at that point, sent as
`submitClaim(app, lastProcessedBlock, root)` from the node's claim key. The proofs of the epoch's outputs
are computed against that same root and stored with the outputs.

Acceptance is decided per epoch, never by `isOutputsMerkleRootValid`: validity is per root, and an epoch
without outputs repeats the previous cumulative root, valid before anyone voted on this epoch.
- `AuthorityClaimer`: the Authority's owner settles alone; its claim is accepted when submitted.
- `QuorumClaimer`: one vote per member; the epoch is accepted when 1 + n/2 members voted our root. It
  follows the real node's claimer (rollups-node `internal/claimer`): it never resends its own vote, votes
  late on epochs another majority already settled (unless `late_votes` is off), and when L1 settled a
  different root than ours, the epoch is CLAIM_REJECTED and the application INOPERABLE (reads go on).
Without a claim key (reader mode) the node votes nothing and records what L1 settled.
"""
from __future__ import annotations

import logging
import threading
from typing import Optional

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from contracts_config.transactions import address_of, call_function
from common.errors import ConfigError
from rollups_node.merkle import OutputsTree
from rollups_node.model import (APP_INOPERABLE, EPOCH_CLAIM_ACCEPTED, EPOCH_CLAIM_COMPUTED, EPOCH_CLAIM_REJECTED,
                                EPOCH_CLAIM_SUBMITTED, EPOCH_CLOSED, EPOCH_INPUTS_PROCESSED, EPOCH_OPEN, INPUT_NONE,
                                Epoch)
from rollups_node.repository import Repository

log = logging.getLogger("rollups_node.claimer")

NOT_FIRST_CLAIM = "0x7e942645"


def _short(root: str | bytes) -> str:
    text = root if isinstance(root, str) else "0x" + root.hex()
    return text[:10] + "…"


class Claimer:
    """The stages every consensus shares, up to a computed claim; `settle` is the consensus's own."""

    def __init__(self, w3: Web3, repository: Repository, consensus, application: str, key: Optional[str],
                 tree: OutputsTree, tree_lock: threading.Lock) -> None:
        self.w3, self.repository, self.consensus = w3, repository, consensus
        self.application, self.key = Web3.to_checksum_address(application), key
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
        if epoch.status in (EPOCH_CLAIM_COMPUTED, EPOCH_CLAIM_SUBMITTED) and not self.inoperable():
            return self.settle(epoch)
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

    def settle(self, epoch: Epoch) -> int:
        """Vote the epoch's claim if due and record what L1 decided; 1 when it became accepted."""
        raise NotImplementedError

    def inoperable(self) -> bool:
        app = self.repository.application()
        return app is not None and app.state == APP_INOPERABLE

    def accepted_root(self, last_block: int) -> Optional[bytes]:
        """The root L1 accepted for the epoch ending at `last_block` (its one `ClaimAccepted`), if any."""
        events = self.consensus.events.ClaimAccepted().get_logs(
            argument_filters={"appContract": self.application}, from_block=last_block + 1)
        return next((bytes(e["args"]["outputsMerkleRoot"]) for e in events
                     if e["args"]["lastProcessedBlockNumber"] == last_block), None)

    def record(self, epoch: Epoch, accepted: Optional[bytes]) -> int:
        """Mark the epoch accepted (L1 settled our root) or rejected (another root: the app is INOPERABLE)."""
        if accepted is None:
            return 0
        if accepted.hex() == epoch.claim_hash[2:]:
            self.repository.set_epoch_status(epoch.index, EPOCH_CLAIM_ACCEPTED)
            log.info("epoch %d (blocks to %d): claim %s accepted on L1", epoch.index, epoch.last_block,
                     _short(epoch.claim_hash))
            return 1
        self.diverged(epoch, f"L1 settled {_short(accepted)} for epoch {epoch.index}; this node computes "
                             f"{_short(epoch.claim_hash)}")
        return 0

    def diverged(self, epoch: Epoch, reason: str) -> None:
        self.repository.set_application_state(APP_INOPERABLE, reason)  # first: a reader seeing the epoch sees both
        self.repository.set_epoch_status(epoch.index, EPOCH_CLAIM_REJECTED)
        log.error("application INOPERABLE: %s (the node keeps serving reads; it votes no more)", reason)

    def send(self, epoch: Epoch):
        receipt = call_function(self.w3, self.key, self.consensus.functions.submitClaim(
            self.application, epoch.last_block, bytes.fromhex(epoch.claim_hash[2:])))
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        self.repository.set_epoch_status(epoch.index, EPOCH_CLAIM_SUBMITTED, claim_transaction_hash=tx_hash)
        return receipt


class AuthorityClaimer(Claimer):
    """The Authority's owner: its claim is accepted in the transaction that submits it."""

    def settle(self, epoch: Epoch) -> int:
        root = bytes.fromhex(epoch.claim_hash[2:])
        if self.key is None or epoch.status == EPOCH_CLAIM_SUBMITTED:
            return self.record(epoch, self.accepted_root(epoch.last_block))
        call = self.consensus.functions.submitClaim(self.application, epoch.last_block, root)
        try:
            call.call({"from": address_of(self.key)})
        except ContractLogicError as err:
            if NOT_FIRST_CLAIM in str(err.data or err):  # settled before (a restarted node, another claimer)
                return self.record(epoch, self.accepted_root(epoch.last_block))
            raise
        receipt = self.send(epoch)
        accepted = [bytes(ev["args"]["outputsMerkleRoot"]) for ev in
                    self.consensus.events.ClaimAccepted().process_receipt(receipt, errors=DISCARD)]
        return self.record(epoch, accepted[0] if accepted else None)


class QuorumClaimer(Claimer):
    """One member of a Quorum: one vote per epoch, accepted once a majority voted the same root."""

    def __init__(self, *args, late_votes: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.late_votes = late_votes
        self.members = self.consensus.functions.numOfValidators().call()
        self.member_id = 0
        if self.key is not None:
            me = address_of(self.key)
            self.member_id = self.consensus.functions.validatorId(me).call()
            if not self.member_id:
                names = ", ".join(self.consensus.functions.validatorById(i).call()
                                  for i in range(1, self.members + 1))
                raise ConfigError(f"{me} is not a member of the Quorum {self.consensus.address} (members: {names}): "
                                  "start the node with a member's claim key, or with --no-claims to only read")

    def settle(self, epoch: Epoch) -> int:
        q, app, last = self.consensus.functions, self.application, epoch.last_block
        root = bytes.fromhex(epoch.claim_hash[2:])
        votes = q.numOfValidatorsInFavorOf(app, last, root).call()
        if self.member_id and not q.isValidatorInFavorOf(app, last, root, self.member_id).call():
            if q.isValidatorInFavorOfAnyClaimInEpoch(app, last, self.member_id).call():
                self.diverged(epoch, f"this node's claim key (member {self.member_id}) voted another root than "
                                     f"{_short(root)} for epoch {epoch.index}: a lost database, or the key used "
                                     "elsewhere")
                return 0
            if votes * 2 <= self.members or self.late_votes:
                self.send(epoch)
                votes = q.numOfValidatorsInFavorOf(app, last, root).call()
                log.info("epoch %d (blocks to %d): voted %s as member %d of %d, %d in favour", epoch.index, last,
                         _short(root), self.member_id, self.members, votes)
        if votes * 2 > self.members:
            return self.record(epoch, root)
        if q.numOfValidatorsInFavorOfAnyClaimInEpoch(app, last).call() > votes:  # someone voted another root
            return self.record(epoch, self.accepted_root(last))
        return 0


def make_claimer(w3: Web3, repository: Repository, consensus_address: str, consensus_type: str, abi: list,
                 application: str, key: Optional[str], tree: OutputsTree, tree_lock: threading.Lock,
                 late_votes: bool = True) -> Claimer:
    consensus = w3.eth.contract(address=consensus_address, abi=abi)
    if consensus_type == "QUORUM":
        return QuorumClaimer(w3, repository, consensus, application, key, tree, tree_lock, late_votes=late_votes)
    return AuthorityClaimer(w3, repository, consensus, application, key, tree, tree_lock)
