"""The audit: trust no log. Five independent checks of everything the rollup recorded.

1. **Re-derive.** Read every input straight from the InputBox on L1 (each checked against its on-chain
   hash), replay them through the rollup's own rules (`dapp.state.apply`, the code the machine runs, under the
   market the deployment fixed: its broker and fee), every task of every publisher, and
   compare, output by output, with what the node says the rollup emitted: every classification, reward,
   stake and producer, and every input's status.
2. **Settle.** Check who settles the claims, from L1: the Application's validator is the deployment's
   consensus and was never switched; a Quorum's Application has no owner, its members are the deployment's and
   the canonical QuorumFactory made it. Then, from the re-derived outputs (not the node's), rebuild the
   cumulative outputs Merkle tree and require every epoch with inputs to have exactly one accepted claim, and
   every accepted claim to be the re-derived root at its epoch's end: a root settled by a colluding majority or
   an Authority with extra outputs fails, named with who voted for it. Dissenting and silent members are named.
3. **Prove.** Check every output against the claim settled on L1 with `Application.validateOutput` (on a dev
   chain the audit can mine blocks so the last epoch closes and is claimed).
4. **Privacy.** Re-compute each task's total ε from the per-round budget it records (CreateTask's dp_* fields)
   with dp-accounting (`common.dp_accountant`, as the trainers account it): a recorded total below the accounted
   one understates the privacy the trainers give up, and fails. (The noise itself happens on the trainers' devices:
   no one but the trainer can check it was added.)
5. **Files.** When the run folder is at hand, check each round's model file against the digest recorded for it
   (keccak256 of its FRQ1 bytes, `dapp.qmodel.digest`; global model: `round-NNN.frq`; validator V's model:
   `round-NNN-validator-V.frq`).

The first discrepancy is named in words; the verdict is one line.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from common.dp_accountant import total_epsilon_milli
from contracts_config.deployment import Deployment
from dapp import qmodel
from dapp.schema import DP_EPSILON_SCALE, DP_NAMES, DP_NONE, BrokerFeePaid
from dapp.market import Market
from dapp.state import Notice, Rejected, State, Voucher, apply, format_wei
from dapp.task import KEEP_DIGEST
from frontend_console.views import fields
from rollups_client.l1 import L1, ConsensusInfo, EpochClaims, settled_epochs
from rollups_client.node import NodeClient
from rollups_client.outputs import RollupOutput, decode_output
from rollups_node.advance import advance_of
from rollups_node.merkle import OutputsTree
from rollups_node.model import Input
from rollups_node.outputs import encode_notice, encode_voucher, output_hash

Progress = Callable[[str], None]


class AuditFailure(Exception):
    """The first discrepancy found, said in words."""


@dataclass
class AuditReport:
    inputs: int = 0
    accepted: int = 0
    rejected: int = 0
    outputs: int = 0
    proven: int = 0
    files_checked: int = 0
    files_missing: int = 0
    rounds: int = 0
    tasks: int = 0
    broker_fees: int = 0  # wei the re-derived history paid the market's broker
    consensus: str = ""  # "QUORUM" or "AUTHORITY", as L1 says
    settled_epochs: int = 0  # epochs whose accepted claim is the re-derived root
    dissenting_votes: int = 0  # votes of members for another root than the one settled
    silent_votes: int = 0  # members that did not vote on a settled epoch
    checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not failures: who dissented or stayed silent, and where

    def verdict(self) -> str:
        files = (f"{self.files_checked} model files match their digests" if self.files_checked
                 else "no model files checked")
        settled = ""
        if self.consensus == "QUORUM":
            settled = (f"; {_count(self.settled_epochs, 'epoch')} settled by the Quorum "
                       f"({_count(self.dissenting_votes, 'dissenting vote')}, {self.silent_votes} silent)")
        elif self.consensus:
            settled = f"; {_count(self.settled_epochs, 'epoch')} settled by the Authority"
        return (f"AUDIT PASSED: {self.inputs} inputs re-derived from L1 ({self.accepted} accepted, "
                f"{self.rejected} rejected), {self.outputs} outputs identical, {self.proven} proven on L1 "
                f"against settled claims, {_count(self.rounds, 'round')} of {_count(self.tasks, 'task')}"
                + (f" ({format_wei(self.broker_fees)} of broker's fees)" if self.broker_fees else "")
                + f"; {files}{settled}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Expected:
    """What the rules say one input yields."""

    status: str
    outputs: tuple[bytes, ...]


def deployment_market(deployment: Deployment) -> Market:
    """The market the deployment fixed for the application's life (its backend runs with it)."""
    return Market.of(deployment.broker or None, deployment.broker_fee_bps)


def rederive(inputs: list[Input], ether_portal: str, market: Market = Market()) -> tuple[list[Expected], State]:
    """Replay `inputs` through the rollup's rules, under the market the deployment fixed (its broker and fee):
    each input's status and outputs, and the final state."""
    state, expected = State(market=market), []
    for item in inputs:
        try:
            result = apply(state, advance_of(item), ether_portal)
        except Rejected:
            expected.append(Expected("REJECTED", ()))
            continue
        except Exception:  # the backend turns an internal error into an exception for that input only
            expected.append(Expected("EXCEPTION", ()))
            continue
        state = result.state
        outs = tuple(encode_notice(o.payload) if isinstance(o, Notice) else
                     encode_voucher(o.destination, o.value, o.payload)
                     for o in result.outputs if isinstance(o, (Notice, Voucher)))
        expected.append(Expected("ACCEPTED", outs))
    return expected, state


def _difference(got: RollupOutput, want_raw: bytes) -> str:
    """Name the first field where a recorded output differs from what the rules give."""
    want = decode_output(want_raw, index=got.index, input_index=got.input_index)
    if want.name != got.name:
        return f"the rollup recorded a {got.name}, the rules give a {want.name}"
    got_fields = fields(got)
    for key, value in fields(want).items():
        if got_fields.get(key) != value:
            return f"{key} is {got_fields.get(key)} on the rollup, {value} by the rules"
    return "its bytes differ from what the rules give"


def compare(expected: list[Expected], statuses: dict[int, str], outputs: list[RollupOutput]) -> tuple[int, int]:
    """Raise AuditFailure at the first difference; return (accepted, rejected) counts."""
    want: list[tuple[int, bytes]] = []
    for index, exp in enumerate(expected):
        got = statuses.get(index)
        if got != exp.status:
            raise AuditFailure(f"input {index}: the node says {got or 'not processed'}, the rules say {exp.status}")
        want.extend((index, raw) for raw in exp.outputs)
    for position, (out, (input_index, raw)) in enumerate(zip(outputs, want)):
        if out.index != position:
            raise AuditFailure(f"output indices jump from {position - 1} to {out.index}")
        if out.input_index != input_index:
            raise AuditFailure(f"output {out.index} ({out.name}) belongs to input {out.input_index} on the rollup, "
                               f"to input {input_index} by the rules")
        if out.raw != raw:
            raise AuditFailure(f"output {out.index} ({out.name} of input {out.input_index}): {_difference(out, raw)}")
    if len(outputs) != len(want):
        raise AuditFailure(f"the rollup recorded {len(outputs)} outputs, the rules give {len(want)}")
    accepted = sum(e.status == "ACCEPTED" for e in expected)
    return accepted, len(expected) - accepted


def wait_until_processed(node: NodeClient, count: int, timeout: float, progress: Progress) -> None:
    deadline = time.monotonic() + timeout
    while (done := node.processed_input_count()) < count:
        if time.monotonic() > deadline:
            raise AuditFailure(f"the node processed {done} of the {count} inputs on L1 within {timeout:.0f} s")
        progress(f"waiting for the node: {done} of {count} inputs processed")
        time.sleep(0.5)


def wait_for_proofs(node: NodeClient, l1: L1, epochs: set[int], force: bool, timeout: float,
                    progress: Progress) -> list[RollupOutput]:
    """Every output with its proof, once L1 accepted a claim for its epoch and for every epoch in `epochs` (the
    epochs with inputs). L1's ClaimAccepted events decide, not the node (a proof appears when the node computed
    its claim, before L1 accepts it); on a dev chain with `force`, mine blocks so that the last epoch closes."""
    deadline, mined, length = time.monotonic() + timeout, False, l1.deployment.epoch_length
    while True:
        outputs = node.outputs()
        settled = settled_epochs(l1.claims(), length)
        pending = [o for o in outputs if o.siblings is None or o.epoch_index not in settled]
        unsettled = sorted(epochs - settled)
        if not pending and not unsettled:
            return outputs
        if time.monotonic() > deadline:
            if pending:
                raise AuditFailure(f"{len(pending)} outputs (first: output {pending[0].index}, epoch "
                                   f"{pending[0].epoch_index}) have no accepted claim on L1 after {timeout:.0f} s")
            raise AuditFailure(f"epoch {unsettled[0]} ({_blocks(unsettled[0], length)}) has inputs but no "
                               f"accepted claim on L1 after {timeout:.0f} s")
        waiting = f"{len(pending)} outputs" if pending else f"{len(unsettled)} epochs with inputs"
        if force and not mined:
            progress(f"{waiting} await their epoch's claim: mining {length} blocks to close the epoch")
            l1.mine(length + 1)
            mined = True
        else:
            progress(f"{waiting} await their epoch's claim")
        time.sleep(0.5)


def _blocks(epoch: int, length: int) -> str:
    return f"blocks {epoch * length}–{(epoch + 1) * length - 1}"


def _root(root: bytes) -> str:
    return "0x" + root.hex()


def check_consensus(info: ConsensusInfo, deployment: Deployment) -> None:
    """Settle (a) and (b): the Application is settled by the deployment's consensus, as deployed, for good."""
    if info.validator.lower() != deployment.consensus.lower():
        raise AuditFailure(f"the Application's claims are settled by {info.validator}, not by the deployment's "
                           f"{deployment.consensus_abi_name} {deployment.consensus}")
    if info.migrations:
        raise AuditFailure(f"the Application's validator was changed after its deployment (to "
                           f"{', '.join(info.migrations)}): its owner chose who settles")
    if info.type != deployment.consensus_type:
        raise AuditFailure(f"the deployment file says {deployment.consensus_type}, L1 says {info.type}")
    if info.epoch_length != deployment.epoch_length:
        raise AuditFailure(f"the consensus's epochs are {info.epoch_length} blocks long, the deployment's "
                           f"{deployment.epoch_length}")
    if not info.is_quorum:
        return
    if int(info.app_owner, 16):
        raise AuditFailure(f"the Application still has an owner ({info.app_owner}), who can swap its Quorum for a "
                           "consensus of its own")
    deployed = [m["address"].lower() for m in deployment.members]
    if [m.lower() for m in info.members] != deployed:
        raise AuditFailure(f"the Quorum's members on L1 ({', '.join(info.members)}) are not the deployment's "
                           f"({', '.join(deployed)})")
    if not info.factory_code_matches:
        raise AuditFailure(f"the QuorumFactory at {info.factory} does not run the @cartesi/rollups 2.2.0 code")
    if not info.factory_predicts_validator:
        raise AuditFailure(f"the Quorum {info.validator} is not the one the QuorumFactory makes for its members "
                           "and epoch length")


def check_settled_roots(inputs: list[Input], expected: list[Expected], claims: dict[int, EpochClaims],
                        length: int, read_block: int, name: Callable[[str], str]) -> list[int]:
    """Settle (c): each epoch with inputs has exactly one accepted claim, and every accepted claim of an epoch
    ending by `read_block` (or with inputs) is the root of the cumulative outputs tree built from the re-derived
    outputs at that epoch's end; returns the last blocks of the epochs checked."""
    tree = OutputsTree([output_hash(raw) for exp in expected for raw in exp.outputs])
    ends, size = [], 0  # (block number, outputs up to that input) per input, in L1 order
    for item, exp in zip(inputs, expected):
        size += len(exp.outputs)
        ends.append((item.block_number, size))
    for epoch in sorted({item.block_number // length for item in inputs}):
        claim = claims.get((epoch + 1) * length - 1)
        if claim is None or not claim.accepted:
            raise AuditFailure(f"epoch {epoch} ({_blocks(epoch, length)}) has inputs but no claim accepted on L1")
    checked = []
    with_inputs = {item.block_number // length for item in inputs}
    for last, claim in claims.items():
        epoch = last // length
        if not claim.accepted or (last > read_block and epoch not in with_inputs):
            continue  # nothing settled yet, or the epoch of inputs newer than the audit
        if len(claim.accepted) > 1:
            raise AuditFailure(f"epoch {epoch} ({_blocks(epoch, length)}) was settled {len(claim.accepted)} times")
        want = tree.root(max([n for block, n in ends if block <= last], default=0))
        settled = claim.accepted[0]
        if settled != want:
            voters = ", ".join(name(m) for m in claim.voters_of(settled)) or "nobody on record"
            raise AuditFailure(f"epoch {epoch} ({_blocks(epoch, length)}): L1 settled the outputs root "
                               f"{_root(settled)} (voted by {voters}), but the outputs re-derived from L1's inputs "
                               f"give {_root(want)}")
        checked.append(last)
    return checked


def settle(l1: L1, inputs: list[Input], expected: list[Expected], read_block: int, report: AuditReport,
           state: State | None = None) -> None:
    """The Settle check (see the module's doc); fills the report's settlement fields and notes."""
    deployment = l1.deployment
    info = l1.consensus_info()
    check_consensus(info, deployment)

    def name(address: str) -> str:
        role = deployment.member_role(address) or ("the Authority's owner" if not info.is_quorum else "")
        return f"{role} ({address})" if role else address

    claims = l1.claims()
    checked = check_settled_roots(inputs, expected, claims, deployment.epoch_length, read_block, name)
    report.consensus, report.settled_epochs = info.type, len(checked)
    for last in checked if info.is_quorum else ():
        claim, epoch = claims[last], last // deployment.epoch_length
        for member in info.members:
            vote = claim.votes.get(member)
            if vote is None:
                report.silent_votes += 1
                report.notes.append(f"epoch {epoch}: {name(member)} did not vote")
            elif vote != claim.accepted[0]:
                report.dissenting_votes += 1
                report.notes.append(f"epoch {epoch}: {name(member)} voted {_root(vote)}, not the settled "
                                    f"{_root(claim.accepted[0])}")
    if info.is_quorum and state is not None:
        report.notes += voteless_validators(state, deployment)
    who = f"the Quorum of {len(info.members)}" if info.is_quorum else f"the Authority owned by {info.members[0]}"
    report.checks.append(f"{len(checked)} epochs settled by {who}, each on the re-derived outputs root")


def voteless_validators(state: State, deployment: Deployment) -> list[str]:
    """A task's named validator whose account is no Quorum member's role account is paid by the rules but has
    no vote on settlement: say so (members chosen at deployment; a new set means a new Quorum)."""
    roles = {m["role_address"].lower() for m in deployment.members if m.get("role_address")}
    if not roles:
        return []  # the deployment file does not bind members to role accounts
    return [f"task {task.task_id}: the validator of group {group} ({seat}) has no vote on settlement: it is no "
            "Quorum member" for task in state.tasks.values() for group, seat in enumerate(task.seats)
            if seat.lower() not in roles]


def prove(outputs: list[RollupOutput], l1: L1, progress: Progress) -> int:
    for n, out in enumerate(outputs, 1):
        why = l1.validate_output(out.raw, out.index, out.siblings or [])
        if why is not None:
            raise AuditFailure(f"output {out.index} ({out.name} of input {out.input_index}) is not proven on L1: {why}")
        if n % 50 == 0:
            progress(f"validated {n} of {len(outputs)} outputs on L1")
    return len(outputs)


def check_privacy(state: State) -> int:
    """Each task's recorded total ε against the accounting of its recorded per-round ε and δ over its rounds;
    returns how many tasks promise differential privacy."""
    promised = 0
    for task in state.tasks.values():
        dp = task.dp
        if dp.mechanism == DP_NONE:
            continue
        promised += 1
        accounted = total_epsilon_milli(DP_NAMES[dp.mechanism], dp.epsilon_milli, dp.delta_atto, task.rounds)
        if dp.total_epsilon_milli < accounted:
            raise AuditFailure(f"task {task.task_id} records a total ε of "
                               f"{dp.total_epsilon_milli / DP_EPSILON_SCALE:g} for its {task.rounds} rounds, but its "
                               f"per-round budget ({dp.words()}) accounts to "
                               f"{accounted / DP_EPSILON_SCALE:g}: the promise understates what trainers give up")
    return promised


def check_files(state: State, run_dir: Path | Mapping[int, Path], report: AuditReport) -> None:
    """Each recorded digest against its `.frq` file in `run_dir`, or in each task's own folder when `run_dir` maps
    task ids to folders (a market run; a task without one is not checked); missing files are counted, not failed."""
    for task in state.tasks.values():
        folder = run_dir.get(task.task_id) if isinstance(run_dir, Mapping) else run_dir
        starting = task.initial_model_digest  # each round's starting model: the previous round's global
        for record in task.history if folder is not None else ():
            files = [(f"round-{record.round:03d}.frq", record.global_digest, "global model")]
            files += [(f"round-{record.round:03d}-validator-{g}.frq",
                       starting if rep.model_digest == KEEP_DIGEST else rep.model_digest,  # kept: digest 0
                       f"validator {g}'s model") for g, rep in enumerate(record.reports) if rep is not None]
            starting = record.global_digest  # None above: a skipped group
            for name, digest, what in files:
                path = folder / name
                if not path.exists():
                    report.files_missing += 1
                    continue
                actual = qmodel.digest(path.read_bytes())
                if actual != digest:
                    raise AuditFailure(f"task {task.task_id} round {record.round}: {path} ({what}) has keccak256 "
                                       f"{actual.hex()[:16]}…, the rollup recorded {digest.hex()[:16]}…")
                report.files_checked += 1


def audit(node: NodeClient, l1: L1, run_dir: Path | Mapping[int, Path] | None = None, force_claims: bool = True,
          timeout: float = 120.0, progress: Progress = lambda _: None) -> AuditReport:
    """Run the four checks; returns the report or raises AuditFailure naming the first discrepancy."""
    report = AuditReport()
    progress("reading every input from the InputBox on L1")
    read_block = l1.block_number()
    inputs = l1.inputs()
    report.inputs = len(inputs)
    wait_until_processed(node, len(inputs), timeout, progress)

    progress(f"re-deriving {len(inputs)} inputs with the rollup's rules")
    expected, state = rederive(inputs, l1.deployment.ether_portal, deployment_market(l1.deployment))
    statuses = node.input_statuses()
    outputs = wait_for_proofs(node, l1, {item.epoch_index for item in inputs}, force_claims, timeout, progress)
    report.accepted, report.rejected = compare(expected, statuses, outputs)
    report.outputs = len(outputs)
    report.rounds = sum(len(t.history) for t in state.tasks.values())
    report.tasks = len(state.tasks)
    report.broker_fees = sum(o.message.amount for o in outputs if isinstance(o.message, BrokerFeePaid))
    report.checks.append(f"{len(outputs)} outputs equal to the re-derived ones")

    promised = check_privacy(state)
    if promised:
        report.checks.append(f"the total ε of {_count(promised, 'task')} with differential privacy re-accounted")

    progress("checking who settled each epoch on L1, and what")
    settle(l1, inputs, expected, read_block, report, state)

    progress(f"validating {len(outputs)} outputs against the claims on L1")
    report.proven = prove(outputs, l1, progress)
    report.checks.append(f"{report.proven} outputs proven on L1")

    if run_dir is not None:
        where = ", ".join(map(str, run_dir.values())) if isinstance(run_dir, Mapping) else run_dir
        progress(f"checking model files in {where}")
        check_files(state, run_dir, report)
    return report
