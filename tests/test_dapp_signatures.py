"""Trainers' and validators' EIP-712 signatures (issue-13 design §4.1): the rollup's hashing (`dapp.eip712`)
against eth-account's, recovery of the signer, and every way a signature must fail to name the signer: another
key, another chain, another application, another field, a high s, a malformed encoding."""
from __future__ import annotations

import dataclasses
import json

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from riscv64_rootfs import needs_riscv64, run_with_dapp

from dapp.eip712 import (SECP256K1_N, Domain, Receipt, SignatureError, Update, pack_signature, recover, signer,
                         unpack_signature)
from dapp.state import Advance
from flower_sim.signatures import sign

TRAINER = Account.from_key("0x" + "11" * 32)
VALIDATOR = Account.from_key("0x" + "22" * 32)
STRANGER = Account.from_key("0x" + "33" * 32)
APP = "0x" + "ab" * 20
DOMAIN = Domain(31337, APP)
UPDATE = Update(task_id=7, round=3, group=1, update_digest=keccak(b"FRQ1 update"), samples=175)
RECEIPT = Receipt(task_id=7, round=3, trainer=TRAINER.address.lower(), update_digest=UPDATE.update_digest,
                  samples=175)

# Written out by hand from EIP-712 and the design, not derived from dapp.eip712: what a wallet is asked to sign.
EIP712_DOMAIN = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
TYPES = {
    "Update": [{"name": "taskId", "type": "uint64"}, {"name": "round", "type": "uint16"},
               {"name": "group", "type": "uint8"}, {"name": "updateDigest", "type": "bytes32"},
               {"name": "samples", "type": "uint80"}],
    "Receipt": [{"name": "taskId", "type": "uint64"}, {"name": "round", "type": "uint16"},
                {"name": "trainer", "type": "address"}, {"name": "updateDigest", "type": "bytes32"},
                {"name": "samples", "type": "uint80"}],
}


def wallet_typed_data(primary: str, message: dict, chain_id: int = 31337, app: str = APP) -> dict:
    return {"types": {"EIP712Domain": EIP712_DOMAIN, primary: TYPES[primary]}, "primaryType": primary,
            "domain": {"name": "fedrollup", "version": "1", "chainId": chain_id, "verifyingContract": app},
            "message": message}


UPDATE_JSON = {"taskId": 7, "round": 3, "group": 1, "updateDigest": UPDATE.update_digest, "samples": 175}
RECEIPT_JSON = {"taskId": 7, "round": 3, "trainer": TRAINER.address, "updateDigest": UPDATE.update_digest,
                "samples": 175}


@pytest.mark.parametrize("struct, primary, message", [(UPDATE, "Update", UPDATE_JSON),
                                                      (RECEIPT, "Receipt", RECEIPT_JSON)])
def test_matches_eth_account_typed_data(struct, primary, message):
    """Domain separator, hashStruct and the signed digest all equal eth-account's, and a signature eth-account
    makes from the hand-written typed data recovers its signer through the rollup's code."""
    signable = encode_typed_data(full_message=wallet_typed_data(primary, message))
    assert DOMAIN.separator() == bytes(signable.header)
    assert struct.hash_struct() == bytes(signable.body)
    assert struct.digest(DOMAIN) == keccak(b"\x19" + signable.version + signable.header + signable.body)
    signed = Account.sign_message(signable, TRAINER.key)
    compact = pack_signature(signed.r, signed.s, signed.v - 27)
    assert signer(DOMAIN, struct, compact) == TRAINER.address.lower()


def test_valid_signature_accepted():
    """The host's signatures (flower_sim.signatures) recover the trainer and the validator who made them, under
    the domain the rollup builds from the advance that carries them."""
    domain = Domain.of(Advance(msg_sender=VALIDATOR.address.lower(), payload=b"", chain_id=31337, app_contract=APP))
    assert domain == DOMAIN
    assert signer(domain, UPDATE, sign(TRAINER.key, domain, UPDATE)) == TRAINER.address.lower()
    assert signer(domain, RECEIPT, sign(VALIDATOR.key, domain, RECEIPT)) == VALIDATOR.address.lower()


def test_foreign_signer_rejected():
    """A validator that signs a trainer's update itself produces its own address, not the trainer's."""
    forged = sign(STRANGER.key, DOMAIN, UPDATE)
    assert signer(DOMAIN, UPDATE, forged) == STRANGER.address.lower() != TRAINER.address.lower()


@pytest.mark.parametrize("other", [Domain(1, APP), Domain(31338, APP), Domain(31337, "0x" + "ac" * 20)],
                         ids=["mainnet", "other-chain", "other-application"])
def test_other_chain_or_app_rejected(other):
    """A signature given for one chain and application names someone else on another (no replay)."""
    signature = sign(TRAINER.key, DOMAIN, UPDATE)
    assert signer(other, UPDATE, signature) != TRAINER.address.lower()


@pytest.mark.parametrize("struct, change", [
    (UPDATE, {"task_id": 8}), (UPDATE, {"round": 4}), (UPDATE, {"group": 0}),
    (UPDATE, {"update_digest": keccak(b"another update")}), (UPDATE, {"samples": 176}),
    (RECEIPT, {"task_id": 8}), (RECEIPT, {"round": 2}), (RECEIPT, {"trainer": STRANGER.address.lower()}),
    (RECEIPT, {"update_digest": bytes(32)}), (RECEIPT, {"samples": 10_000}),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else type(v).__name__)
def test_samples_or_any_field_mismatch_rejected(struct, change):
    """A report that claims other samples (or any other field) than the trainer signed recovers a stranger."""
    signature = sign(TRAINER.key, DOMAIN, struct)
    assert signer(DOMAIN, dataclasses.replace(struct, **change), signature) != TRAINER.address.lower()


def _compact(r: int, vs: int) -> bytes:
    return r.to_bytes(32, "big") + vs.to_bytes(32, "big")


def test_high_s_rejected():
    """EIP-2: only s <= n/2. The twin (r, n - s, other parity) of a valid signature is valid ECDSA for the same
    key (eth-account's recovery accepts it): it cannot be packed, and forced into the compact form it names a
    stranger; an s above n/2 that does fit the form (below 2**255) is refused."""
    r, s, y_parity = unpack_signature(sign(TRAINER.key, DOMAIN, UPDATE))
    signable = encode_typed_data(full_message=wallet_typed_data("Update", UPDATE_JSON))
    assert Account.recover_message(signable, vrs=(27 + 1 - y_parity, r, SECP256K1_N - s)) == TRAINER.address
    with pytest.raises(SignatureError, match="high"):
        pack_signature(r, SECP256K1_N - s, 1 - y_parity)
    digest = UPDATE.digest(DOMAIN)
    assert SECP256K1_N - s >= 1 << 255  # the twin's s needs the parity's bit
    assert recover(digest, _compact(r, ((1 - y_parity) << 255) | (SECP256K1_N - s))) != TRAINER.address.lower()
    for high in (SECP256K1_N // 2 + 1, (1 << 255) - 1):
        for parity in (0, 1):
            with pytest.raises(SignatureError, match="high"):
                recover(digest, _compact(r, (parity << 255) | high))


@pytest.mark.parametrize("signature, reason", [
    (b"", "64 bytes"), (bytes(63), "64 bytes"), (bytes(65), "64 bytes"), ("00" * 64, "64 bytes"),
    (_compact(0, 1), "r is out of range"), (_compact(SECP256K1_N, 1), "r is out of range"),
    (_compact(1, 0), "s is zero or high"), (_compact(1, 1 << 255), "s is zero or high"),
    (_compact(5, 1), "no public key"),  # x = 5: 5**3 + 7 is no square modulo p, so no point has it
], ids=["empty", "63-bytes", "65-bytes-rsv", "hex-text", "r-zero", "r-n", "s-zero", "s-zero-parity-1",
        "r-off-curve"])
def test_malformed_signatures_refused(signature, reason):
    with pytest.raises(SignatureError, match=reason):
        recover(UPDATE.digest(DOMAIN), signature)


def test_a_65_byte_signature_of_the_signer_is_refused_too():
    """The common ``r ‖ s ‖ v`` form of a good signature is not what the rollup reads: refused, not misread."""
    signed = Account.sign_message(encode_typed_data(full_message=wallet_typed_data("Update", UPDATE_JSON)),
                                  TRAINER.key)
    with pytest.raises(SignatureError, match="64 bytes"):
        recover(UPDATE.digest(DOMAIN), bytes(signed.signature))
    with pytest.raises(SignatureError, match="32 bytes"):
        recover(UPDATE.digest(DOMAIN)[:31], sign(TRAINER.key, DOMAIN, UPDATE))


@pytest.mark.parametrize("struct, change, reason", [
    (UPDATE, {"task_id": 1 << 64}, "not a uint64"), (UPDATE, {"round": -1}, "not a uint16"),
    (UPDATE, {"group": 256}, "not a uint8"), (UPDATE, {"samples": 1 << 80}, "not a uint80"),
    (UPDATE, {"samples": True}, "not a uint80"), (UPDATE, {"update_digest": b"\x11" * 31}, "exactly 32 bytes"),
    (UPDATE, {"update_digest": "0x" + "11" * 32}, "exactly 32 bytes"), (RECEIPT, {"trainer": "0x1234"}, "address"),
], ids=["task-2^64", "round-neg", "group-256", "samples-2^80", "samples-bool", "digest-31", "digest-hex", "trainer"])
def test_out_of_range_fields_refused(struct, change, reason):
    """A value its EIP-712 type cannot hold is an error on both sides, never silently padded or wrapped."""
    bad = dataclasses.replace(struct, **change)
    with pytest.raises(ValueError, match=reason):
        bad.digest(DOMAIN)
    with pytest.raises(ValueError, match=reason):
        sign(TRAINER.key, DOMAIN, bad)


def test_domain_refuses_a_bad_chain_or_contract():
    with pytest.raises(ValueError, match="uint256"):
        Domain(-1, APP)
    with pytest.raises(ValueError, match="not an address"):
        Domain(1, "0xab")


# Run inside the riscv64 root file system: both digests from their fields, then the Update's signer.
RISCV64_RECOVER = """\
import json, platform, sys
from dapp.eip712 import Domain, Receipt, Update, signer
case = json.loads(sys.argv[1])
domain = Domain(31337, case["app"])
update = Update(7, 3, 1, bytes.fromhex(case["digest"]), 175)
receipt = Receipt(7, 3, case["trainer"], bytes.fromhex(case["digest"]), 175)
who = signer(domain, update, bytes.fromhex(case["signature"]))
print(who, update.digest(domain).hex(), receipt.digest(domain).hex(), platform.machine())
"""


@needs_riscv64
def test_recovery_is_the_same_on_riscv64(tmp_path):
    """The machine's Python and pinned packages (the riscv64 root file system under QEMU) hash the same digest
    and recover the same signer as the host. A few seconds."""
    case = {"digest": UPDATE.update_digest.hex(), "app": APP, "trainer": RECEIPT.trainer,
            "signature": sign(TRAINER.key, DOMAIN, UPDATE).hex()}
    riscv64 = run_with_dapp(tmp_path.name, ["-c", RISCV64_RECOVER, json.dumps(case)], timeout=60)
    assert riscv64.returncode == 0, riscv64.stderr
    assert riscv64.stdout.split() == [TRAINER.address.lower(), UPDATE.digest(DOMAIN).hex(),
                                      RECEIPT.digest(DOMAIN).hex(), "riscv64"]

