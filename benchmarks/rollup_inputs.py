"""The inputs of issue 13's rules, built for the benchmarks: a public test set, models with distinct digests, keys
that sign (a trainer's EIP-712 `Update`), signed ValidatorReports, and the chunks that carry blobs.

Seeded, so every run sends the same bytes: the test set and models come from `dapp.qnn`'s seeded generators
(the same on every machine); a key is keccak256 of its name. Signing goes straight through eth-keys (RFC 6979,
the same signature eth-account makes: `flower_sim.signatures` checks the digests agree), ~1.5 ms each.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np
from eth_keys import keys
from eth_utils import keccak

from dapp import qmodel, qnn
from dapp.eip712 import Domain, Update, pack_signature
from dapp.schema import CHUNK_DATA, ModelChunk, TestSetChunk, ValidatorReport, pack_contribution

SAMPLES = 6000


def public_test_set(images: int) -> bytes:
    """A public test set of `images` seeded images, in the rollup's format (``labels u8[N] ‖ pixels u8[N x 784]``)."""
    seeded = qnn.seeded_images(images)
    return seeded.labels.astype(np.uint8).tobytes() + seeded.inputs.astype(np.uint8).tobytes()


def model(arch: int, salt: int) -> bytes:
    """A seeded FRQ1 model of `arch`, its last layer's biases shifted by `salt`: a digest of its own per salt."""
    seeded = qnn.seeded_model(arch)
    last = seeded.layers[-1]
    shifted = replace(last, biases=tuple(b + salt for b in last.biases))
    return qmodel.encode(replace(seeded, layers=seeded.layers[:-1] + (shifted,)))


def chunks(blob: bytes) -> list[bytes]:
    return [blob[i:i + CHUNK_DATA] for i in range(0, len(blob), CHUNK_DATA)] or [b""]


def set_chunks(task_id: int, blob: bytes) -> list[TestSetChunk]:
    parts = chunks(blob)
    return [TestSetChunk(task_id, i, len(parts), part) for i, part in enumerate(parts)]


def model_chunks(task_id: int, round_: int, blob: bytes) -> list[ModelChunk]:
    parts, digest = chunks(blob), qmodel.digest(blob)
    return [ModelChunk(task_id, round_, digest, i, len(parts), part) for i, part in enumerate(parts)]


@dataclass(frozen=True)
class Signer:
    key: keys.PrivateKey
    address: str  # lowercase 0x

    def sign(self, domain: Domain, update: Update) -> bytes:
        signature = self.key.sign_msg_hash(update.digest(domain))
        return pack_signature(signature.r, signature.s, signature.v)


@functools.cache
def signer(name: str) -> Signer:
    """The party named `name`: its key is keccak256 of the name."""
    key = keys.PrivateKey(keccak(text=f"fedrollup benchmark key {name}"))
    return Signer(key, key.public_key.to_address().lower())


def update_digest(trainer: str, round_: int) -> bytes:
    """The digest of the update a trainer hands its validator (the update itself is posted only if disputed)."""
    return keccak(text=f"update of {trainer} in round {round_}")


def signed_report(domain: Domain, task_id: int, round_: int, group: int, validator_bps: int, model_blob: bytes,
                  scores: list[tuple[Signer, int]]) -> ValidatorReport:
    """A validator's report committing to `model_blob`; each trainer in `scores` (signer, bps) signs its update."""
    digests = [update_digest(t.address, round_) for t, _ in scores]
    sigs = [t.sign(domain, Update(task_id, round_, group, d, SAMPLES)) for (t, _), d in zip(scores, digests)]
    return ValidatorReport(task_id, round_, validator_bps, qmodel.digest(model_blob),
                           tuple(pack_contribution(t.address, bps, SAMPLES) for t, bps in scores), tuple(digests),
                           tuple(s[:32] for s in sigs), tuple(s[32:] for s in sigs))
