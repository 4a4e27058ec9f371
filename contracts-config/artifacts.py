"""The official Cartesi Rollups 2.2.0 contract artifacts (ABI and bytecode) installed by npm in node_modules."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from common.errors import ConfigError

CONTRACTS_CONFIG_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_CONFIG_DIR / "node_modules" / "@cartesi" / "rollups" / "out"
IQUORUM_INTERFACE_ID = bytes.fromhex("3c925a62")  # ERC-165 id of IQuorum (rollups-contracts v2.2.0)
ANVIL_BINARY = CONTRACTS_CONFIG_DIR / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def artifact_path(contract: str) -> Path:
    """Where the artifact of `contract` lives (absolute path)."""
    return ARTIFACTS_DIR / f"{contract}.sol" / f"{contract}.json"


def relative_artifact_path(contract: str) -> str:
    """The artifact path relative to contracts-config/, as written into deployment files."""
    return str(artifact_path(contract).relative_to(CONTRACTS_CONFIG_DIR))


@functools.cache
def load_artifact(contract: str) -> dict:
    path = artifact_path(contract)
    if not path.exists():
        raise ConfigError(
            f"artifact {path} is missing: run `make setup` (npm ci in contracts-config/) first")
    return json.loads(path.read_text())


def abi(contract: str) -> list[dict]:
    return load_artifact(contract)["abi"]


def bytecode(contract: str) -> bytes:
    return bytes.fromhex(load_artifact(contract)["bytecode"]["object"].removeprefix("0x"))
