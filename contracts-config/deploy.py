"""Deploy InputBox, EtherPortal, Authority and Application from the official artifacts with CREATE2 (salt 0).

Every contract goes through the deterministic deployer `0x4e59…956C` (pre-installed on anvil), as the
Cartesi cannonfile does, so InputBox and EtherPortal land on their canonical 2.2.0 addresses and a
second run against the same chain reuses what is already there.
"""
from __future__ import annotations

import logging

from eth_abi import encode
from web3 import Web3

from contracts_config import artifacts
from contracts_config.deployment import DEFAULT_NAME, Deployment
from contracts_config.transactions import address_of, connect, send_transaction
from common.errors import ConfigError

log = logging.getLogger("fedrollup.deploy")

DETERMINISTIC_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
SALT_ZERO = bytes(32)
# Canonical CREATE2 addresses of the 2.2.0 bytecode (cartesi-rollups-v2.md, section 2).
CANONICAL_ADDRESSES = {
    "InputBox": "0x1b51e2992A2755Ba4D6F7094032DF91991a0Cfac",
    "EtherPortal": "0xA632c5c05812c6a6149B7af5C56117d1D2603828",
}
DATA_AVAILABILITY_INPUT_BOX = bytes.fromhex("b12c9ede")  # DataAvailability.InputBox(address)
DEFAULT_TEMPLATE_HASH = "0x" + "00" * 32
DEFAULT_EPOCH_LENGTH = 10
DEFAULT_APPLICATION_NAME = "fedrollup"
# anvil's first dev account (mnemonic "test test … junk"): a public, well-known key for loopback use only.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def create2_address(init_code: bytes, salt: bytes = SALT_ZERO) -> str:
    digest = Web3.keccak(b"\xff" + bytes.fromhex(DETERMINISTIC_DEPLOYER[2:]) + salt + Web3.keccak(init_code))
    return Web3.to_checksum_address(digest[12:])


def init_code(contract: str, arg_types: list[str], args: list) -> bytes:
    return artifacts.bytecode(contract) + (encode(arg_types, args) if arg_types else b"")


def deploy_create2(w3: Web3, key: str, contract: str, code: bytes) -> str:
    """Deploy `code` at its CREATE2 address unless a contract is already there; return the address."""
    address = create2_address(code)
    if w3.eth.get_code(address):
        log.info("%s already deployed at %s, reused", contract, address)
        return address
    if not w3.eth.get_code(DETERMINISTIC_DEPLOYER):
        raise ConfigError(f"the deterministic deployer {DETERMINISTIC_DEPLOYER} is not on this chain")
    send_transaction(w3, key, {"to": DETERMINISTIC_DEPLOYER, "data": SALT_ZERO + code})
    if not w3.eth.get_code(address):
        raise RuntimeError(f"{contract} deployment left no code at {address}")
    log.info("%s deployed at %s", contract, address)
    return address


def data_availability(input_box: str) -> bytes:
    return DATA_AVAILABILITY_INPUT_BOX + encode(["address"], [input_box])


def deploy(rpc_url: str, key: str, *, name: str = DEFAULT_NAME, epoch_length: int = DEFAULT_EPOCH_LENGTH,
           template_hash: str = DEFAULT_TEMPLATE_HASH, application_name: str = DEFAULT_APPLICATION_NAME,
           owner: str | None = None) -> Deployment:
    """Deploy (or find) the four contracts on the chain at `rpc_url`, paying with `key`.

    `owner` owns the Authority (submits claims) and the Application; it defaults to `key`'s account.
    Different `template_hash` or `epoch_length` values give distinct Application/Authority addresses.
    """
    if epoch_length <= 0:
        raise ConfigError("the epoch length must be a positive number of blocks")
    try:
        template = bytes.fromhex(template_hash.removeprefix("0x"))
    except ValueError:
        template = b""
    if len(template) != 32:
        raise ConfigError(f"template hash {template_hash!r} is not 32 bytes of hex")
    w3 = connect(rpc_url)
    owner = Web3.to_checksum_address(owner or address_of(key))

    input_box = deploy_create2(w3, key, "InputBox", init_code("InputBox", [], []))
    portal = deploy_create2(w3, key, "EtherPortal", init_code("EtherPortal", ["address"], [input_box]))
    for contract, address in (("InputBox", input_box), ("EtherPortal", portal)):
        if address != CANONICAL_ADDRESSES[contract]:
            raise RuntimeError(f"{contract} landed on {address}, not on its canonical {CANONICAL_ADDRESSES[contract]}")
    authority = deploy_create2(w3, key, "Authority",
                               init_code("Authority", ["address", "uint256"], [owner, epoch_length]))
    application = deploy_create2(
        w3, key, "Application",
        init_code("Application", ["address", "address", "bytes32", "bytes"],
                  [authority, owner, template, data_availability(input_box)]))

    app = w3.eth.contract(address=application, abi=artifacts.abi("Application"))
    box = w3.eth.contract(address=input_box, abi=artifacts.abi("InputBox"))
    contracts = {"InputBox": input_box, "EtherPortal": portal, "Authority": authority, "Application": application}
    return Deployment(
        name=name, chain_id=w3.eth.chain_id, rpc_url=rpc_url, application_name=application_name,
        deployment_block=app.functions.getDeploymentBlockNumber().call(),
        input_box_block=box.functions.getDeploymentBlockNumber().call(),
        epoch_length=epoch_length, template_hash="0x" + template.hex(), owner=owner,
        contracts=contracts, abis={c: artifacts.relative_artifact_path(c) for c in contracts})
