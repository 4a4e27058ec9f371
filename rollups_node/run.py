"""Running the node in the foreground: logging, claim key, signals, and a clean stop."""
from __future__ import annotations

import logging
import os
import signal
import sys

from common.errors import ConfigError
from contracts_config.deploy import ANVIL_KEY_0
from contracts_config.deployment import Deployment, load
from dapp.market import Market
from rollups_node.advancer import ReplayDivergence
from rollups_node.config import CLAIMER_KEY_ENV, CORS_ORIGINS_ENV, OWNER_KEY_ENV, NodeOptions, backend_command
from rollups_node.machine import MachineError
from rollups_node.node import DEFAULT_BACKEND, Node, NodeConfig

DEV_CHAIN_ID = 31337


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stdout,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", force=True)
    for noisy in ("web3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def claim_key(given: str | None, deployment: Deployment, claims: bool = True) -> str | None:
    """The key the claimer votes with: --key, $FEDROLLUP_CLAIMER_KEY, $FEDROLLUP_OWNER_KEY (Authority only),
    anvil's account 0 for an Authority on the dev chain; None with --no-claims (the node only reads)."""
    if not claims:
        return None
    key = given or os.environ.get(CLAIMER_KEY_ENV) or (None if deployment.is_quorum else os.environ.get(OWNER_KEY_ENV))
    if key:
        return key
    if deployment.is_quorum:
        raise ConfigError(f"a Quorum member's node votes with its claim key: pass --key or set {CLAIMER_KEY_ENV} "
                          "(or --no-claims to only read)")
    if deployment.chain_id == DEV_CHAIN_ID:
        return ANVIL_KEY_0
    raise ConfigError(f"the claimer needs the Authority owner's key: pass --key or set {OWNER_KEY_ENV} "
                      "(or --no-claims to only read)")


def run_node_foreground(options: NodeOptions) -> int:
    configure_logging(options.log_level)
    deployment = load(options.deployment)
    options.db.parent.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(deployment=deployment, database=options.db,
                        claimer_key=claim_key(options.key, deployment, options.claims), late_votes=options.late_votes,
                        backend_command=backend_command(options.backend_command) or list(DEFAULT_BACKEND),
                        http_host=options.host, http_port=options.port, rollup_http_port=options.rollup_http_port,
                        finish_timeout=options.finish_timeout, backend_log=options.backend_log, rpc_url=options.rpc,
                        cors_origins=options.cors_origins if options.cors_origins is not None
                        else os.environ.get(CORS_ORIGINS_ENV, ""),
                        backend_env=Market.of(deployment.broker or None, deployment.broker_fee_bps).environment())
    node = Node(config)
    signal.signal(signal.SIGTERM, lambda *_: node.request_stop())
    try:
        node.start()
    except MachineError as err:
        raise ConfigError(str(err)) from err
    except ReplayDivergence as err:
        raise ConfigError(f"refusing to start: {err}") from err
    try:
        node.wait()
    except KeyboardInterrupt:
        pass
    finally:
        logging.getLogger("rollups_node").info("node stopping")
        node.stop()
    if node.failure is not None:
        print(f"node stopped on error: {node.failure}", file=sys.stderr)
        return 1
    return 0
