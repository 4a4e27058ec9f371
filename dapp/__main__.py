"""`python -m dapp`: the fedrollup backend, as a Cartesi Machine (or the host-mode node) runs it.

Environment: ``ROLLUP_HTTP_SERVER_URL`` (default http://127.0.0.1:5004), ``FEDROLLUP_ETHER_PORTAL``
(default the canonical @cartesi/rollups 2.2.0 EtherPortal), and the market's ``FEDROLLUP_BROKER`` and
``FEDROLLUP_BROKER_FEE_BPS`` (default: no broker, no fee; `dapp.market`). Logs one line per input on stderr.
"""
from __future__ import annotations

import logging
import os
import sys

from dapp.backend import Backend, run
from dapp.market import market_from_env
from dapp.portal import ether_portal_address
from dapp.rollup_client import DEFAULT_URL, RollupClient, RollupServerError
from dapp.state import State


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="dapp: %(message)s")
    url = os.environ.get("ROLLUP_HTTP_SERVER_URL", DEFAULT_URL)
    portal = ether_portal_address()
    try:
        market = market_from_env()
    except ValueError as err:
        logging.getLogger("dapp").error("stopping: %s", err)
        return 2
    logging.getLogger("dapp").info("fedrollup backend on %s, trusting EtherPortal %s; %s", url, portal,
                                   f"broker {market.broker} takes {market.fee_bps} bps" if market.broker
                                   else "no broker's fee")
    try:
        run(Backend(RollupClient(url), portal, State(market=market)))
    except RollupServerError as err:
        logging.getLogger("dapp").error("stopping: %s", err)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
