"""The deployment file every part reads: chain id, L1 RPC URL, contract addresses, deployment block, ABIs.

Format of `contracts-config/deployments/<name>.json`::

    {"name": "local", "chain_id": 31337, "rpc_url": "http://127.0.0.1:8545",
     "application_name": "fedrollup", "deployment_block": 5, "input_box_block": 2,
     "epoch_length": 10,
     "template_hash": "0x…", "owner": "0x…",
     "contracts": {"InputBox": "0x…", "EtherPortal": "0x…", "QuorumFactory": "0x…", "Quorum": "0x…",
                   "Application": "0x…"},
     "abis": {"InputBox": "node_modules/@cartesi/rollups/out/InputBox.sol/InputBox.json", …},
     "consensus_type": "QUORUM", "members": [{"address": "0x…", "role": "manager", "role_address": "0x…"}, …],
     "deployer": "0x…", "broker": "0x…", "broker_fee_bps": 200}

`deployment_block` is the Application's, `input_box_block` the InputBox's (where a reader starts).
`consensus_type` is `QUORUM` (contracts `QuorumFactory` and `Quorum`, `members` in ID order, `owner` the zero
address: the deployer renounced it; a member's `role_address`, when given, is the account its FL role sends
inputs from, its `address` the claim key's) or `AUTHORITY` (contract `Authority`, owned by `owner`, no members);
files written before the Quorum existed have neither field and load as AUTHORITY. `broker` and `broker_fee_bps` are
the market's terms the backend runs with for the application's life (`dapp/market.py`; "" and 0: no broker, no
fee); files written before issue 15 have neither.
ABI paths are relative to `contracts-config/`; `Deployment.abi(name)` resolves and loads them.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from common.errors import ConfigError

DEPLOYMENTS_DIR = Path(__file__).resolve().parent / "deployments"
DEFAULT_NAME = "local"
ENV_DEPLOYMENT = "FEDROLLUP_DEPLOYMENT"


@dataclasses.dataclass(frozen=True)
class Deployment:
    name: str
    chain_id: int
    rpc_url: str
    application_name: str
    deployment_block: int
    input_box_block: int
    epoch_length: int
    template_hash: str
    owner: str
    contracts: dict[str, str]
    abis: dict[str, str]
    consensus_type: str = "AUTHORITY"
    members: list[dict[str, str]] = dataclasses.field(default_factory=list)
    deployer: str = ""
    broker: str = ""  # who the market's fee is paid to ("" : no broker, no fee)
    broker_fee_bps: int = 0

    @property
    def application(self) -> str:
        return self.contracts["Application"]

    @property
    def input_box(self) -> str:
        return self.contracts["InputBox"]

    @property
    def ether_portal(self) -> str:
        return self.contracts["EtherPortal"]

    @property
    def consensus(self) -> str:
        """The Application's outputs Merkle root validator: the Quorum or the Authority."""
        return self.contracts["Quorum" if self.is_quorum else "Authority"]

    @property
    def is_quorum(self) -> bool:
        return self.consensus_type == "QUORUM"

    @property
    def consensus_abi_name(self) -> str:
        return "Quorum" if self.is_quorum else "Authority"

    def member_role(self, address: str) -> str:
        """The role a member address was given at deployment ('' for a non-member)."""
        return next((m["role"] for m in self.members if m["address"].lower() == address.lower()), "")

    def abi(self, contract: str) -> list[dict]:
        """The ABI of `contract` (one of the keys of `contracts`), read from its official artifact."""
        path = Path(self.abis[contract])
        if not path.is_absolute():
            path = Path(__file__).resolve().parent / path
        return json.loads(path.read_text())["abi"]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"


def default_path(name: str = DEFAULT_NAME) -> Path:
    return DEPLOYMENTS_DIR / f"{name}.json"


def save(deployment: Deployment, path: Path | str | None = None) -> Path:
    path = Path(path) if path else default_path(deployment.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(deployment.to_json())
    return path


def load(path: Path | str | None = None) -> Deployment:
    """Read a deployment file: `path`, else $FEDROLLUP_DEPLOYMENT, else deployments/local.json."""
    path = Path(path or os.environ.get(ENV_DEPLOYMENT) or default_path())
    if not path.exists():
        raise ConfigError(f"no deployment file at {path}: run `fedrollup chain up` or `fedrollup chain deploy`")
    try:
        data = json.loads(path.read_text())
        return Deployment(**data)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"deployment file {path} is not valid: {err}") from err
