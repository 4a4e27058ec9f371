"""`python -m dapp`: the fedrollup backend, as a Cartesi Machine (or the host-mode node) runs it.

Environment: ``ROLLUP_HTTP_SERVER_URL`` (default http://127.0.0.1:5004) and ``FEDROLLUP_ETHER_PORTAL``
(default the canonical @cartesi/rollups 2.2.0 EtherPortal). Logs one line per input on stderr.
"""
from __future__ import annotations

import logging
import os
import sys

from dapp.backend import Backend, run
from dapp.portal import ether_portal_address
from dapp.rollup_client import DEFAULT_URL, RollupClient, RollupServerError


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="dapp: %(message)s")
    url = os.environ.get("ROLLUP_HTTP_SERVER_URL", DEFAULT_URL)
    portal = ether_portal_address()
    logging.getLogger("dapp").info("fedrollup backend on %s, trusting EtherPortal %s", url, portal)
    try:
        run(Backend(RollupClient(url), portal))
    except RollupServerError as err:
        logging.getLogger("dapp").error("stopping: %s", err)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
