"""The audit: trust no log. Three independent checks of everything the rollup recorded.

1. **Re-derive.** Read every input straight from the InputBox on L1 (each checked against its on-chain
   hash), replay them through the rollup's own rules (`dapp.state.apply`, the code the machine runs), and
   compare, output by output, with what the node says the rollup emitted: every classification, reward,
   stake and producer, and every input's status.
2. **Prove.** Check every output against the claim settled on L1 with `Application.validateOutput` (on a dev
   chain the audit can mine blocks so the last epoch closes and is claimed).
3. **Files.** When the run folder is at hand, check each round's model file against the digest recorded for it
   (keccak256 of its FRQ1 bytes, `dapp.qmodel.digest`; global model: `round-NNN.frq`; validator V's model:
   `round-NNN-validator-V.frq`).

The first discrepancy is named in words; the verdict is one line.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dapp import qmodel
from dapp.state import Notice, Rejected, State, Voucher, apply
from frontend_console.views import fields
from rollups_client.l1 import L1
from rollups_client.node import NodeClient
from rollups_client.outputs import RollupOutput, decode_output
from rollups_node.advance import advance_of
from rollups_node.model import Input
from rollups_node.outputs import encode_notice, encode_voucher

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
    checks: list[str] = field(default_factory=list)

    def verdict(self) -> str:
        files = (f"{self.files_checked} model files match their digests" if self.files_checked
                 else "no model files checked")
        return (f"AUDIT PASSED: {self.inputs} inputs re-derived from L1 ({self.accepted} accepted, "
                f"{self.rejected} rejected), {self.outputs} outputs identical, {self.proven} proven on L1 "
                f"against settled claims, {self.rounds} rounds; {files}")


@dataclass(frozen=True)
class Expected:
    """What the rules say one input yields."""

    status: str
    outputs: tuple[bytes, ...]


def rederive(inputs: list[Input], ether_portal: str) -> tuple[list[Expected], State]:
    """Replay `inputs` through the rollup's rules: each input's status and outputs, and the final state."""
    state, expected = State(), []
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


def wait_for_proofs(node: NodeClient, l1: L1, force: bool, timeout: float, progress: Progress) -> list[RollupOutput]:
    """Every output with its proof, once its epoch's claim is accepted on L1 (a proof appears when the claim is
    computed, before L1 accepts it); on a dev chain with `force`, mine blocks so that the last epoch closes."""
    deadline, mined = time.monotonic() + timeout, False
    while True:
        outputs = node.outputs()
        accepted = node.accepted_epochs()
        pending = [o for o in outputs if o.siblings is None or o.epoch_index not in accepted]
        if not pending:
            return outputs
        if time.monotonic() > deadline:
            raise AuditFailure(f"{len(pending)} outputs (first: output {pending[0].index}, epoch "
                               f"{pending[0].epoch_index}) have no accepted claim on L1 after {timeout:.0f} s")
        if force and not mined:
            progress(f"{len(pending)} outputs await their epoch's claim: mining "
                     f"{l1.deployment.epoch_length} blocks to close the epoch")
            l1.mine(l1.deployment.epoch_length + 1)
            mined = True
        else:
            progress(f"{len(pending)} outputs await their epoch's claim")
        time.sleep(0.5)


def prove(outputs: list[RollupOutput], l1: L1, progress: Progress) -> int:
    for n, out in enumerate(outputs, 1):
        why = l1.validate_output(out.raw, out.index, out.siblings or [])
        if why is not None:
            raise AuditFailure(f"output {out.index} ({out.name} of input {out.input_index}) is not proven on L1: {why}")
        if n % 50 == 0:
            progress(f"validated {n} of {len(outputs)} outputs on L1")
    return len(outputs)


def check_files(state: State, run_dir: Path, report: AuditReport) -> None:
    """Each recorded digest against its `.frq` file in `run_dir` (missing files are counted, not failed)."""
    for task in state.tasks.values():
        for record in task.history:
            files = [(f"round-{record.round:03d}.frq", record.global_digest, "global model")]
            files += [(f"round-{record.round:03d}-validator-{g}.frq", rep.model_digest, f"validator {g}'s model")
                      for g, rep in enumerate(record.reports) if rep is not None]  # None: a skipped group
            for name, digest, what in files:
                path = run_dir / name
                if not path.exists():
                    report.files_missing += 1
                    continue
                actual = qmodel.digest(path.read_bytes())
                if actual != digest:
                    raise AuditFailure(f"task {task.task_id} round {record.round}: {path} ({what}) has keccak256 "
                                       f"{actual.hex()[:16]}…, the rollup recorded {digest.hex()[:16]}…")
                report.files_checked += 1


def audit(node: NodeClient, l1: L1, run_dir: Path | None = None, force_claims: bool = True,
          timeout: float = 120.0, progress: Progress = lambda _: None) -> AuditReport:
    """Run the three checks; returns the report or raises AuditFailure naming the first discrepancy."""
    report = AuditReport()
    progress("reading every input from the InputBox on L1")
    inputs = l1.inputs()
    report.inputs = len(inputs)
    wait_until_processed(node, len(inputs), timeout, progress)

    progress(f"re-deriving {len(inputs)} inputs with the rollup's rules")
    expected, state = rederive(inputs, l1.deployment.ether_portal)
    statuses = node.input_statuses()
    outputs = wait_for_proofs(node, l1, force_claims, timeout, progress)
    report.accepted, report.rejected = compare(expected, statuses, outputs)
    report.outputs = len(outputs)
    report.rounds = sum(len(t.history) for t in state.tasks.values())
    report.checks.append(f"{len(outputs)} outputs equal to the re-derived ones")

    progress(f"validating {len(outputs)} outputs against the claims on L1")
    report.proven = prove(outputs, l1, progress)
    report.checks.append(f"{report.proven} outputs proven on L1")

    if run_dir is not None:
        progress(f"checking model files in {run_dir}")
        check_files(state, run_dir, report)
    return report
