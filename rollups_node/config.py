"""What the node and the local chain are configured with: typed configs, their defaults, the owner-key variable.

Light on purpose (no web3): the command line builds its options from these defaults at `--help` time.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from contracts_config.anvil import DEFAULT_PORT as DEFAULT_L1_PORT
from contracts_config.deployment import DEFAULT_NAME

OWNER_KEY_ENV = "FEDROLLUP_OWNER_KEY"
CLAIMER_KEY_ENV = "FEDROLLUP_CLAIMER_KEY"  # a Quorum member's claim key (its node votes with it)
CORS_ORIGINS_ENV = "FEDROLLUP_CORS_ORIGINS"  # as the real node's CARTESI_JSONRPC_CORS_ALLOWED_ORIGINS
DEFAULT_RUN_DIR = Path("runs/chain")
DEFAULT_HTTP_PORT = 6751  # the node's /rpc and /inspect (the Cartesi CLI's proxy port)
DEFAULT_EPOCH_LENGTH = 10
DEFAULT_MEMBERS = 3
DEFAULT_BROKER_FEE_BPS = 200  # FedMarket's 2 % (dapp.market.DEFAULT_FEE_BPS; dapp is too heavy to import here)


def member_role(member: int) -> str:
    """The role of Quorum member `member` (1-based) in fedrollup's layout: the manager, then the validators."""
    return "manager" if member == 1 else f"validator of group {member - 2}"


ZERO_TEMPLATE_HASH = "0x" + "00" * 32


def backend_command(text: str | None) -> list[str] | None:
    """A backend command line given as one string, split as a shell would."""
    return shlex.split(text) if text else None


@dataclass(frozen=True)
class ChainUpConfig:
    """`fedrollup chain up`: anvil, the contracts and the node as background processes from `run_dir`."""

    run_dir: Path = DEFAULT_RUN_DIR
    host: str = "127.0.0.1"  # anvil's and the node's bind address
    l1_port: int = DEFAULT_L1_PORT
    node_port: int = DEFAULT_HTTP_PORT
    block_time: float = 1.0
    epoch_length: int = DEFAULT_EPOCH_LENGTH
    name: str = DEFAULT_NAME
    template_hash: str = ZERO_TEMPLATE_HASH
    backend_command: str | None = None  # None: this Python's `-m dapp`
    deployment_file: Path | None = None  # None: contracts-config/deployments/<name>.json
    consensus: str = "quorum"  # or "authority" (one key settles: one-party dev runs)
    members: int = DEFAULT_MEMBERS  # Quorum members, each with its own node: the manager, then one per validator
    nodes: str = "local"  # "none": deploy only (each member starts its own node elsewhere)
    broker: str | None = None  # the market's broker, paid its fee on every task that starts (None: no fee)
    broker_fee_bps: int = DEFAULT_BROKER_FEE_BPS


@dataclass(frozen=True)
class ChainDeployConfig:
    """`fedrollup chain deploy`: the contracts on a running chain, owned by `key`."""

    rpc: str
    key: str | None
    name: str = DEFAULT_NAME
    epoch_length: int = DEFAULT_EPOCH_LENGTH
    template_hash: str = ZERO_TEMPLATE_HASH
    out: Path | None = None  # None: contracts-config/deployments/<name>.json
    consensus: str = "authority"
    member: tuple[str, ...] = ()  # the Quorum's member addresses, in ID order
    broker: str | None = None
    broker_fee_bps: int = DEFAULT_BROKER_FEE_BPS


@dataclass(frozen=True)
class NodeOptions:
    """`fedrollup node`: what the node is started with; `rollups_node.run` resolves it into a `NodeConfig`."""

    deployment: Path | None = None  # None: $FEDROLLUP_DEPLOYMENT, else contracts-config/deployments/local.json
    db: Path = DEFAULT_RUN_DIR / "node.sqlite"
    key: str | None = None  # the claim key; None: $FEDROLLUP_CLAIMER_KEY, $FEDROLLUP_OWNER_KEY, dev account 0
    claims: bool = True  # False: reader mode, no votes (the real node's CARTESI_FEATURE_CLAIM_SUBMISSION_ENABLED)
    late_votes: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_HTTP_PORT
    rpc: str | None = None  # None: the deployment's
    backend_command: str | None = None
    rollup_http_port: int = 0  # 0: any free port
    finish_timeout: float = 10.0
    backend_log: Path | None = None
    log_level: str = "INFO"
    cors_origins: str | None = None  # None: $FEDROLLUP_CORS_ORIGINS, else none (no browser may call the node)
