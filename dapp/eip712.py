"""EIP-712 typed data of the trainers' evidence (issue-13 design §4.1) and the recovery of its signers.

A trainer signs ``Update(uint64 taskId,uint16 round,uint8 group,bytes32 updateDigest,uint80 samples)`` for the
update it hands its validator; the validator countersigns ``Receipt(uint64 taskId,uint16 round,address
trainer,bytes32 updateDigest,uint80 samples)``. Both under the domain ``{name "fedrollup", version "1",
chainId, verifyingContract}`` taken from the advance's ``chain_id`` and ``app_contract``, so a signature given
for one chain or one application is worth nothing on another.

Signatures travel in the EIP-2098 compact form, 64 bytes: ``r ‖ yParityAndS`` with ``yParityAndS =
yParity << 255 | s``, and only low ``s`` (EIP-2: ``1 ≤ s ≤ n/2``), so each signed message has exactly one
valid signature. Hashing follows EIP-712 with the pinned eth-abi and eth-utils; recovery is eth-keys' native
secp256k1 (pure-Python integers, deterministic, no extension module), as the machine has it.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Protocol

from eth_abi import encode as abi_encode
from eth_keys.backends.native.ecdsa import ecdsa_raw_recover
from eth_keys.exceptions import BadSignature
from eth_utils import keccak

from dapp.schema import abi, normalize_address

DOMAIN_NAME = "fedrollup"
DOMAIN_VERSION = "1"
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
SIGNATURE_SIZE = 64  # EIP-2098: r ‖ yParityAndS
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # the group order (SEC 2, §2.4.1)
_S_MASK = (1 << 255) - 1


class SignatureError(ValueError):
    """A signature that is malformed, not low-s, or from which no signer can be recovered."""


class _AdvanceMetadata(Protocol):
    chain_id: int
    app_contract: str


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: the chain and the Application contract the signed evidence is for."""

    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        if not isinstance(self.chain_id, int) or isinstance(self.chain_id, bool) or not 0 <= self.chain_id < 1 << 256:
            raise ValueError(f"chainId must be a uint256, got {self.chain_id!r}")
        object.__setattr__(self, "verifying_contract", normalize_address(self.verifying_contract))

    @classmethod
    def of(cls, advance: _AdvanceMetadata) -> Domain:
        """The domain of the application and chain that delivered `advance`."""
        return cls(advance.chain_id, advance.app_contract)

    def separator(self) -> bytes:
        return _separator(self)


@functools.cache
def _separator(domain: Domain) -> bytes:
    return keccak(keccak(text=DOMAIN_TYPE) + keccak(text=DOMAIN_NAME) + keccak(text=DOMAIN_VERSION)
                  + abi_encode(["uint256", "address"], [domain.chain_id, domain.verifying_contract]))


class TypedStruct:
    """Base of a signed struct: its EIP-712 type and encodeData derive from the dataclass fields' ABI types
    (atomic types only, each encoded as one 32-byte word); Python's snake_case names become camelCase."""

    @classmethod
    def members(cls) -> tuple[tuple[str, str], ...]:
        """``(name, type)`` of each member, in order, as EIP-712 names them."""
        return _members(cls)

    @classmethod
    def encode_type(cls) -> str:
        """EIP-712 ``encodeType``: ``Name(type1 name1,type2 name2,...)`` (no member is itself a struct)."""
        return f"{cls.__name__}({','.join(f'{abi_type} {name}' for name, abi_type in cls.members())})"

    @classmethod
    def type_hash(cls) -> bytes:
        return keccak(text=cls.encode_type())

    def hash_struct(self) -> bytes:
        """EIP-712 ``hashStruct(s) = keccak256(typeHash ‖ encodeData(s))``; ValueError for a value its type
        cannot hold (eth-abi would silently pad a short bytes32, so that is checked here)."""
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        types = [f.metadata["abi"] for f in fields]
        values = [getattr(self, f.name) for f in fields]
        for f, abi_type, value in zip(fields, types, values):
            _check(type(self).__name__, f.name, abi_type, value)
        return keccak(self.type_hash() + abi_encode(types, values))

    def digest(self, domain: Domain) -> bytes:
        """What is signed: ``keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))``."""
        return keccak(b"\x19\x01" + domain.separator() + self.hash_struct())


@functools.cache
def _members(cls: type[TypedStruct]) -> tuple[tuple[str, str], ...]:
    return tuple((_camel(f.name), f.metadata["abi"]) for f in dataclasses.fields(cls))  # type: ignore[arg-type]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _check(struct: str, name: str, abi_type: str, value: Any) -> None:
    where = f"{struct}.{name} ({abi_type})"
    if abi_type.startswith("uint"):
        bits = int(abi_type[4:])
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
            raise ValueError(f"{where}: {value!r} is not a uint{bits}")
    elif abi_type == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise ValueError(f"{where}: needs exactly 32 bytes, got {value!r}")
    elif abi_type == "address":
        normalize_address(value)
    else:
        raise TypeError(f"{where}: not an atomic type this module encodes")


@dataclass(frozen=True)
class Update(TypedStruct):
    """A trainer's word that it made this update (keccak256 of its FRQ1 bytes) from that many samples."""

    task_id: int = abi("uint64")
    round: int = abi("uint16")
    group: int = abi("uint8")
    update_digest: bytes = abi("bytes32")
    samples: int = abi("uint80")


@dataclass(frozen=True)
class Receipt(TypedStruct):
    """A validator's word that it received the trainer's update in time (what a dropped trainer contests with)."""

    task_id: int = abi("uint64")
    round: int = abi("uint16")
    trainer: str = abi("address")
    update_digest: bytes = abi("bytes32")
    samples: int = abi("uint80")


def pack_signature(r: int, s: int, y_parity: int) -> bytes:
    """The 64-byte EIP-2098 compact form ``r ‖ (yParity << 255 | s)`` of a low-s signature."""
    _check_scalars(r, s, y_parity)
    return r.to_bytes(32, "big") + ((y_parity << 255) | s).to_bytes(32, "big")


def unpack_signature(signature: bytes) -> tuple[int, int, int]:
    """``(r, s, yParity)`` of a compact signature; SignatureError unless it is 64 bytes with r and s in range."""
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        got = f"{len(signature)} bytes" if isinstance(signature, bytes) else type(signature).__name__
        raise SignatureError(f"a compact signature (EIP-2098) is 64 bytes, r then yParityAndS; got {got}")
    r = int.from_bytes(signature[:32], "big")
    vs = int.from_bytes(signature[32:], "big")
    s, y_parity = vs & _S_MASK, vs >> 255
    _check_scalars(r, s, y_parity)
    return r, s, y_parity


def _check_scalars(r: int, s: int, y_parity: int) -> None:
    if not 1 <= r < SECP256K1_N:
        raise SignatureError("signature r is out of range (must be 1 .. n-1)")
    if not 1 <= s <= SECP256K1_N // 2:
        raise SignatureError("signature s is zero or high (EIP-2: only 1 .. n/2 is valid)")
    if y_parity not in (0, 1):
        raise SignatureError(f"signature yParity must be 0 or 1, got {y_parity}")


def recover(digest: bytes, signature: bytes) -> str:
    """The address (lowercase ``0x`` hex) whose key made the compact `signature` over the 32-byte `digest`.

    Any well-formed signature recovers *some* address: callers compare it with the one expected."""
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise SignatureError(f"the signed digest is 32 bytes, got {digest!r}")
    r, s, y_parity = unpack_signature(signature)
    try:
        public_key = ecdsa_raw_recover(digest, (y_parity, r, s))
    except BadSignature:
        raise SignatureError("no public key recovers from this signature (r is not a point's x)") from None
    return "0x" + keccak(public_key)[12:].hex()


def signer(domain: Domain, message: TypedStruct, signature: bytes) -> str:
    """The address that signed `message` under `domain` (SignatureError for a malformed signature)."""
    return recover(message.digest(domain), signature)
