"""The node: its stages (EVM reader, advancer, claimer) as threads over one repository, and its HTTP server."""
from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from eth_abi import decode
from web3 import Web3

from contracts_config import artifacts
from contracts_config.deployment import Deployment
from contracts_config.deploy import DATA_AVAILABILITY_INPUT_BOX
from contracts_config.transactions import address_of, connect
from common.errors import ConfigError
from rollups_node.advancer import Advancer, ReplayDivergence
from rollups_node.claimer import AuthorityClaimer, make_claimer
from rollups_node.config import DEFAULT_HTTP_PORT
from rollups_node.evmreader import EvmReader
from rollups_node.inspector import Inspector
from rollups_node.jsonrpc import JsonRpcReader
from rollups_node.machine import HostMachine
from rollups_node.merkle import OutputsTree
from rollups_node.model import Application
from rollups_node.server import NodeHttpServer
from rollups_node.sqlite_repository import SqliteRepository

log = logging.getLogger("rollups_node")

DEFAULT_BACKEND = [sys.executable, "-m", "dapp"]


@dataclasses.dataclass
class NodeConfig:
    deployment: Deployment
    database: Path
    claimer_key: Optional[str]  # signs submitClaim: the Authority owner's or a Quorum member's; None: no votes
    backend_command: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_BACKEND))
    http_host: str = "127.0.0.1"
    http_port: int = DEFAULT_HTTP_PORT
    rollup_http_port: int = 0  # 0: any free port (the backend learns it from ROLLUP_HTTP_SERVER_URL)
    finish_timeout: float = 10.0
    poll_interval: float = 0.05
    backend_log: Optional[Path] = None
    rpc_url: Optional[str] = None  # defaults to the deployment's
    cors_origins: str = ""  # browser origins allowed to call /rpc and /inspect (comma-separated)
    late_votes: bool = True  # a Quorum member votes on epochs a majority settled without it
    backend_env: dict[str, str] = dataclasses.field(default_factory=dict)  # e.g. the deployment's market


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        deployment = config.deployment
        self.w3 = connect(config.rpc_url or deployment.rpc_url)
        if self.w3.eth.chain_id != deployment.chain_id:
            raise ConfigError(f"the L1 at {config.rpc_url or deployment.rpc_url} has chain id {self.w3.eth.chain_id}, "
                             f"the deployment says {deployment.chain_id}")
        if not self.w3.eth.get_code(deployment.application):
            raise ConfigError(f"no Application contract at {deployment.application} on this chain "
                             "(a fresh chain? deploy again)")
        self.repository = SqliteRepository(config.database)
        self._register_application()
        self._check_database_matches_chain()
        self.tree = OutputsTree(self.repository.output_hashes())
        self.tree_lock = threading.Lock()
        self.machine = HostMachine(config.backend_command, config.rollup_http_port, config.finish_timeout,
                                   config.backend_log, env=config.backend_env)
        self.reader = EvmReader(self.w3, self.repository, deployment.application, deployment.input_box,
                                self.repository.application().epoch_length)
        self._stop = threading.Event()
        self.advancer = Advancer(self.repository, self.machine, self.tree, self.tree_lock, self._stop)
        app = self.repository.application()
        try:
            self.claimer = make_claimer(self.w3, self.repository, app.consensus, app.consensus_type,
                                        deployment.abi(deployment.consensus_abi_name), deployment.application,
                                        config.claimer_key, self.tree, self.tree_lock, late_votes=config.late_votes)
            if isinstance(self.claimer, AuthorityClaimer) and config.claimer_key:
                self._check_authority_owner(config.claimer_key)
        except ConfigError:
            self.repository.close()
            raise
        self.http: Optional[NodeHttpServer] = None
        self._inputs_arrived = threading.Event()
        self._threads: list[threading.Thread] = []
        self.failure: Optional[BaseException] = None

    def _register_application(self) -> None:
        """Record the application as L1 describes it: the InputBox from its data availability, its
        outputs Merkle root validator (a Quorum or an Authority), its template hash and epoch length."""
        d = self.config.deployment
        stored = self.repository.application()
        if stored and (stored.address.lower() != d.application.lower() or stored.chain_id != d.chain_id):
            raise ConfigError(f"the database {self.config.database} belongs to application {stored.address} on chain "
                             f"{stored.chain_id}, not {d.application} on {d.chain_id}: use another --db")
        app = self.w3.eth.contract(address=d.application, abi=d.abi("Application"))
        availability = bytes(app.functions.getDataAvailability().call())
        if availability[:4] != DATA_AVAILABILITY_INPUT_BOX or \
                decode(["address"], availability[4:])[0].lower() != d.input_box.lower():
            raise ConfigError(f"application {d.application} does not take its inputs from the InputBox "
                             f"{d.input_box} (data availability 0x{availability.hex()})")
        consensus = app.functions.getOutputsMerkleRootValidator().call()
        if consensus.lower() != d.consensus.lower():
            raise ConfigError(f"application {d.application} is validated by {consensus}, not by the "
                             f"{d.consensus_abi_name} {d.consensus} of the deployment file (migrated?)")
        validator = self.w3.eth.contract(address=consensus, abi=d.abi(d.consensus_abi_name))
        consensus_type = "QUORUM" if validator.functions.supportsInterface(artifacts.IQUORUM_INTERFACE_ID).call() \
            else "AUTHORITY"
        if consensus_type != d.consensus_type:
            raise ConfigError(f"the consensus {consensus} is a {consensus_type}, the deployment file says "
                             f"{d.consensus_type}")
        epoch_length = validator.functions.getEpochLength().call()
        self.repository.save_application(Application(
            name=d.application_name, address=d.application, consensus=consensus, input_box=d.input_box,
            input_box_block=d.input_box_block, epoch_length=epoch_length,
            template_hash="0x" + bytes(app.functions.getTemplateHash().call()).hex(),
            data_availability="0x" + availability.hex(), chain_id=d.chain_id, consensus_type=consensus_type,
            state=stored.state if stored else "ENABLED", reason=stored.reason if stored else None,
            created_at=stored.created_at if stored else ""))

    def _check_authority_owner(self, key: str) -> None:
        authority = self.claimer.consensus
        owner, me = authority.functions.owner().call(), address_of(key)
        if owner != me:
            raise ConfigError(f"the Authority {authority.address} is owned by {owner}, not by the claim key's "
                             f"account {me}: pass the owner's key, or --no-claims to only read")

    def _check_database_matches_chain(self) -> None:
        """A restarted anvil puts the same CREATE2 addresses on a chain without our inputs: refuse that."""
        stored, total = self.repository.list_inputs(limit=1, descending=True)
        if not total:
            return
        d = self.config.deployment
        box = self.w3.eth.contract(address=d.input_box, abi=d.abi("InputBox"))
        last = stored[0]
        on_chain = box.functions.getNumberOfInputs(d.application).call()
        if on_chain <= last.index or bytes(box.functions.getInputHash(d.application, last.index).call()) \
                != Web3.keccak(last.raw_data):
            self.repository.close()
            raise ConfigError(f"the database {self.config.database} holds {total} inputs that this chain does not "
                             "have (a fresh chain?): start the node with a fresh --db")

    @property
    def url(self) -> str:
        return self.http.url if self.http else ""

    def healthy(self) -> bool:
        return self.failure is None and self.machine.ready

    def start(self) -> None:
        """Start the backend, rebuild its state from the stored accepted inputs, then every stage."""
        try:
            self.http = NodeHttpServer(self.config.http_host, self.config.http_port,
                                       JsonRpcReader(self.repository, self.config.deployment.chain_id,
                                                     self.config.finish_timeout),
                                       Inspector(self.repository, self.machine), self.healthy,
                                       cors=self.config.cors_origins)
        except OSError as err:
            raise ConfigError(f"cannot serve the node on {self.config.http_host}:{self.config.http_port}: "
                             f"{err.strerror} (is another node running?)") from err
        self.machine.start()
        try:
            self.advancer.replay()
        except Exception:
            self.stop()
            raise
        self._spawn("http", self.http.serve_forever)
        self._spawn("evmreader", self._loop(self._read))
        self._spawn("advancer", self._loop(self._advance))
        self._spawn("claimer", self._loop(self.claimer.step, interval=0.25))
        d = self.config.deployment
        log.info("node serving application %s (%s) on chain %d: JSON-RPC %s/rpc, inspect %s/inspect/%s",
                 d.application_name, d.application, d.chain_id, self.url, self.url, d.application_name)

    def _spawn(self, name: str, target) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read(self) -> None:
        if self.reader.step():
            self._inputs_arrived.set()

    def _advance(self) -> None:
        self._inputs_arrived.wait(self.config.poll_interval)
        self._inputs_arrived.clear()
        self.advancer.step()

    def _loop(self, step, interval: Optional[float] = None):
        interval = self.config.poll_interval if interval is None else interval

        def run() -> None:
            failures = 0
            while not self._stop.is_set():
                try:
                    step()
                    failures = 0
                except Exception as err:  # L1 hiccups are retried; anything persistent stops the node
                    failures += 1
                    log.warning("%s: %s: %s (attempt %d)", threading.current_thread().name,
                                type(err).__name__, err, failures)
                    if failures >= 20 or isinstance(err, ReplayDivergence):
                        self.failure = err
                        self._stop.set()
                        return
                    time.sleep(min(5.0, 0.2 * failures))
                    continue
                if step is not self._advance:
                    self._stop.wait(interval)
        return run

    def request_stop(self) -> None:
        """Ask every stage to stop (safe from a signal handler); `wait()` then returns."""
        self._stop.set()

    def wait(self) -> None:
        """Block until the node stops (a signal, `stop()`, or a fatal error)."""
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        self._stop.set()
        if self.http:
            if any(thread.name == "http" for thread in self._threads):
                self.http.shutdown()  # waits for serve_forever, so only when it runs
            self.http.server_close()
        for thread in self._threads:
            if thread.name != "http":
                thread.join(timeout=10)
        self.machine.stop()
        self.repository.close()
