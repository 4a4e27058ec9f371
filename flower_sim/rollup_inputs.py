"""The roles' rollup inputs of issue 13, built from what the FL plane produced (pure: no web3, no node).

* the publisher's public test set as `TestSetChunk`s and a validator's model as `ModelChunk`s: blobs cut in
  chunks of `CHUNK_DATA` bytes (every chunk but the last full), each within one input;
* a validator's `ValidatorReport` v2: per trainer the packed contribution word, the update's digest and the
  trainer's EIP-712 `Update` signature split as r / yParityAndS (EIP-2098); a report of more than
  `REPORT_INPUT_TRAINERS` trainers goes as `ReportPart`s of that many (issue 16), each within one input.
"""
from __future__ import annotations

from collections.abc import Sequence

from dapp.eip712 import SIGNATURE_SIZE
from dapp.schema import (CHUNK_DATA, MAX_CHUNKS, MAX_REPORT_PARTS, REPORT_INPUT_TRAINERS, ModelChunk, ReportPart,
                         TestSetChunk, ValidatorReport, pack_contribution)
from flower_sim.records import ValidatorReport as RoundReport


def chunked(blob: bytes) -> list[bytes]:
    """`blob` cut in chunks of CHUNK_DATA bytes, the last one shorter (never empty); ValueError past MAX_CHUNKS."""
    if not blob:
        raise ValueError("an empty blob has no chunks")
    parts = [blob[i:i + CHUNK_DATA] for i in range(0, len(blob), CHUNK_DATA)]
    if len(parts) > MAX_CHUNKS:
        raise ValueError(f"a blob of {len(blob):,} bytes needs {len(parts)} chunks, more than the {MAX_CHUNKS} "
                         f"the rollup takes")
    return parts


def public_set_chunks(task_id: int, test_set: bytes) -> list[TestSetChunk]:
    parts = chunked(test_set)
    return [TestSetChunk(task_id=task_id, index=i, count=len(parts), data=p) for i, p in enumerate(parts)]


def model_chunks(task_id: int, server_round: int, model_digest: bytes, model: bytes) -> list[ModelChunk]:
    parts = chunked(model)
    return [ModelChunk(task_id=task_id, round=server_round, digest=model_digest, index=i, count=len(parts), data=p)
            for i, p in enumerate(parts)]


def report_inputs(task_id: int, report: RoundReport, trainer_address: Sequence[str],
                  per_input: int = REPORT_INPUT_TRAINERS) -> list[ValidatorReport | ReportPart]:
    """The v2 report of `report` as the inputs that carry it (`split_report`); `trainer_address[t]` is trainer t's
    address. ValueError for a contribution without the trainer's signature (the rollup would reject the whole
    report) or a report of more than MAX_REPORT_PARTS parts."""
    for c in report.contributions:
        if len(c.signature) != SIGNATURE_SIZE:
            raise ValueError(f"trainer {c.trainer_id}'s update carries no signature (does its validator pass the "
                             f"rollup task to its trainers?): the rollup rejects a report with an unsigned entry")
    signatures = [c.signature for c in report.contributions]
    whole = ValidatorReport(
        task_id=task_id, round=report.round,
        validator_accuracy_bps=report.own_accuracy_bps if report.own_accuracy_bps is not None else 0,
        model_digest=report.model_digest,
        contributions=tuple(pack_contribution(trainer_address[c.trainer_id], c.accuracy_bps, c.num_examples,
                                              c.cosine_bps, c.norm_centi, c.share_bps)
                       for c in report.contributions),
        update_digests=tuple(c.update_digest for c in report.contributions),
        sig_r=tuple(s[:32] for s in signatures), sig_vs=tuple(s[32:] for s in signatures))
    return split_report(whole, per_input)


def split_report(whole: ValidatorReport, per_input: int = REPORT_INPUT_TRAINERS) -> list[ValidatorReport | ReportPart]:
    """``whole`` itself up to ``per_input`` trainers (the common case, byte for byte the single report), else
    `ReportPart`s of ``per_input`` trainers in report order (the rollup judges them as the whole report once the last
    is in). ValueError past MAX_REPORT_PARTS parts."""
    n = len(whole.contributions)
    if n <= per_input:
        return [whole]
    parts = -(-n // per_input)
    if parts > MAX_REPORT_PARTS:
        raise ValueError(f"a report of {n:,} trainers in parts of {per_input} needs {parts} parts, more than the "
                         f"{MAX_REPORT_PARTS} the rollup takes")
    cuts = [slice(i, i + per_input) for i in range(0, n, per_input)]
    return [ReportPart(whole.task_id, whole.round, p, parts, whole.validator_accuracy_bps, whole.model_digest,
                       whole.contributions[cut], whole.update_digests[cut], whole.sig_r[cut], whole.sig_vs[cut])
            for p, cut in enumerate(cuts)]
