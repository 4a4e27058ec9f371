"""Deploy InputBox, EtherPortal, the consensus and the Application from the official 2.2.0 artifacts.

Every contract goes through the deterministic deployer `0x4e59…956C` (pre-installed on anvil), as the
Cartesi cannonfile does, so InputBox, EtherPortal and QuorumFactory land on their canonical 2.2.0 addresses
and a second run against the same chain reuses what is already there.

Two consensus kinds (rollups-contracts v2.2.0, `src/consensus/`):
- `quorum`: `QuorumFactory.newQuorum(members, epochLength, salt 0)`; a claim is accepted when a majority of
  the fixed member set (1 + n/2 of n) submitted the same root. The Application's owner could swap the
  consensus (`migrateToOutputsMerkleRootValidator`), so the deployer renounces ownership at once: after
  that nobody can change who settles.
- `authority`: one `Authority` owned by one key, which alone settles every epoch (one-party dev runs).
"""
from __future__ import annotations

import logging

from eth_abi import encode
from web3 import Web3

from contracts_config import artifacts
from contracts_config.deployment import DEFAULT_NAME, Deployment
from contracts_config.transactions import address_of, call_function, connect, send_transaction
from common.errors import ConfigError

log = logging.getLogger("fedrollup.deploy")

DETERMINISTIC_DEPLOYER = "0x4e59b44847b379578588920cA78FbF26c0B4956C"
SALT_ZERO = bytes(32)
# Canonical CREATE2 addresses of the 2.2.0 bytecode (cartesi-rollups-v2.md, section 2).
CANONICAL_ADDRESSES = {
    "InputBox": "0x1b51e2992A2755Ba4D6F7094032DF91991a0Cfac",
    "EtherPortal": "0xA632c5c05812c6a6149B7af5C56117d1D2603828",
    "QuorumFactory": "0x1C91Ba8aa5648cdAC77E97eaC781447c646EF239",
}
CONSENSUS_KINDS = ("quorum", "authority")
ZERO_ADDRESS = "0x" + "00" * 20
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


def deploy_quorum(w3: Web3, key: str, members: list[str], epoch_length: int) -> tuple[str, str]:
    """The canonical QuorumFactory and the Quorum of `members` (IDs 1..n in this order); (factory, quorum)."""
    factory_address = deploy_create2(w3, key, "QuorumFactory", init_code("QuorumFactory", [], []))
    if factory_address != CANONICAL_ADDRESSES["QuorumFactory"]:
        raise RuntimeError(f"QuorumFactory landed on {factory_address}, not on its canonical "
                           f"{CANONICAL_ADDRESSES['QuorumFactory']}")
    factory = w3.eth.contract(address=factory_address, abi=artifacts.abi("QuorumFactory"))
    quorum = factory.functions.calculateQuorumAddress(members, epoch_length, SALT_ZERO).call()
    if w3.eth.get_code(quorum):
        log.info("Quorum of %d members already deployed at %s, reused", len(members), quorum)
    else:
        call_function(w3, key, factory.functions.newQuorum(members, epoch_length, SALT_ZERO))
        if not w3.eth.get_code(quorum):
            raise RuntimeError(f"newQuorum left no code at its predicted address {quorum}")
        log.info("Quorum of %d members deployed at %s", len(members), quorum)
    return factory_address, quorum


def renounce_ownership(w3: Web3, key: str, application: str) -> None:
    """Give up the Application's ownership so nobody can migrate it to another consensus."""
    app = w3.eth.contract(address=application, abi=artifacts.abi("Application"))
    owner = app.functions.owner().call()
    if owner == ZERO_ADDRESS:
        return
    if owner != address_of(key):
        raise ConfigError(f"application {application} is owned by {owner}, not by the deploying key: it cannot "
                          "be made ownerless from here")
    call_function(w3, key, app.functions.renounceOwnership())
    log.info("Application %s renounced its ownership: its consensus can no longer be changed", application)


def deploy(rpc_url: str, key: str, *, name: str = DEFAULT_NAME, epoch_length: int = DEFAULT_EPOCH_LENGTH,
           template_hash: str = DEFAULT_TEMPLATE_HASH, application_name: str = DEFAULT_APPLICATION_NAME,
           owner: str | None = None, consensus: str = "authority", members: list[str] | None = None,
           member_roles: list[str] | None = None, member_accounts: list[str] | None = None) -> Deployment:
    """Deploy (or find) InputBox, EtherPortal, the consensus and the Application at `rpc_url`, paying with `key`.

    `consensus="authority"`: `owner` (default `key`'s account) owns the Authority (submits claims) and the
    Application. `consensus="quorum"`: `members` (addresses, at least one) vote on every epoch, and the
    Application is left without an owner; `member_roles` names each member for people (default "member i"),
    `member_accounts` gives each member's role account (the key its FL role sends inputs from), if known.
    Different `template_hash`, `epoch_length` or members give distinct Application addresses.
    """
    if epoch_length <= 0:
        raise ConfigError("the epoch length must be a positive number of blocks")
    if consensus not in CONSENSUS_KINDS:
        raise ConfigError(f"unknown consensus {consensus!r}: choose one of {', '.join(CONSENSUS_KINDS)}")
    try:
        template = bytes.fromhex(template_hash.removeprefix("0x"))
    except ValueError:
        template = b""
    if len(template) != 32:
        raise ConfigError(f"template hash {template_hash!r} is not 32 bytes of hex")
    w3 = connect(rpc_url)
    deployer = address_of(key)
    owner = Web3.to_checksum_address(owner or deployer)

    input_box = deploy_create2(w3, key, "InputBox", init_code("InputBox", [], []))
    portal = deploy_create2(w3, key, "EtherPortal", init_code("EtherPortal", ["address"], [input_box]))
    for contract, address in (("InputBox", input_box), ("EtherPortal", portal)):
        if address != CANONICAL_ADDRESSES[contract]:
            raise RuntimeError(f"{contract} landed on {address}, not on its canonical {CANONICAL_ADDRESSES[contract]}")
    contracts = {"InputBox": input_box, "EtherPortal": portal}
    member_list: list[dict[str, str]] = []
    if consensus == "quorum":
        addresses = _member_addresses(members)
        roles = list(member_roles or [f"member {i}" for i in range(1, len(addresses) + 1)])
        if len(roles) != len(addresses):
            raise ConfigError(f"{len(roles)} member roles for {len(addresses)} members")
        member_list = [{"address": a, "role": r} for a, r in zip(addresses, roles)]
        if member_accounts is not None:
            if len(member_accounts) != len(addresses):
                raise ConfigError(f"{len(member_accounts)} member role accounts for {len(addresses)} members")
            for member, account in zip(member_list, member_accounts):
                member["role_address"] = Web3.to_checksum_address(account)
        contracts["QuorumFactory"], contracts["Quorum"] = deploy_quorum(w3, key, addresses, epoch_length)
        validator, app_owner = contracts["Quorum"], deployer
    else:
        validator = contracts["Authority"] = deploy_create2(
            w3, key, "Authority", init_code("Authority", ["address", "uint256"], [owner, epoch_length]))
        app_owner = owner
    application = contracts["Application"] = deploy_create2(
        w3, key, "Application",
        init_code("Application", ["address", "address", "bytes32", "bytes"],
                  [validator, app_owner, template, data_availability(input_box)]))
    if consensus == "quorum":
        renounce_ownership(w3, key, application)

    app = w3.eth.contract(address=application, abi=artifacts.abi("Application"))
    box = w3.eth.contract(address=input_box, abi=artifacts.abi("InputBox"))
    return Deployment(
        name=name, chain_id=w3.eth.chain_id, rpc_url=rpc_url, application_name=application_name,
        deployment_block=app.functions.getDeploymentBlockNumber().call(),
        input_box_block=box.functions.getDeploymentBlockNumber().call(),
        epoch_length=epoch_length, template_hash="0x" + template.hex(), owner=app.functions.owner().call(),
        contracts=contracts, abis={c: artifacts.relative_artifact_path(c) for c in contracts},
        consensus_type=consensus.upper(), members=member_list, deployer=deployer)


def _member_addresses(members: list[str] | None) -> list[str]:
    if not members:
        raise ConfigError("a Quorum needs at least one member address")
    try:
        addresses = [Web3.to_checksum_address(m) for m in members]
    except ValueError as err:
        raise ConfigError(f"a member is not an address: {err}") from err
    if len(set(addresses)) != len(addresses):
        raise ConfigError("the Quorum's members must be distinct addresses (the contract ignores duplicates)")
    return addresses
