"""The node's public HTTP server as its own process, over a seeded database: `python tests/reader_server.py DB PORT
[REQUEST_TIMEOUT [REQUEST_DEADLINE]]`. It imports what the node imports (web3, eth_account: Python's recursion limit at 100,000),
so an attack that would kill the node kills this process too; it prints "ready" once it serves."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rollups_node.node  # noqa: E402,F401  (the node's imports: eth_account raises the recursion limit)
from reader_fixtures import seeded_repository  # noqa: E402
from rollups_node.inspector import Inspector  # noqa: E402
from rollups_node.jsonrpc import JsonRpcReader  # noqa: E402
from rollups_node.server import REQUEST_DEADLINE, REQUEST_TIMEOUT, NodeHttpServer  # noqa: E402


class NoMachine:
    """Inspect answers 503 here: the attacks on inspect paths are the backend's (tests/test_dapp_*)."""
    ready = False


def main() -> None:
    db, port = Path(sys.argv[1]), int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else REQUEST_TIMEOUT
    deadline = float(sys.argv[4]) if len(sys.argv) > 4 else REQUEST_DEADLINE
    repo = seeded_repository(db, claimed=True)
    server = NodeHttpServer("127.0.0.1", port, JsonRpcReader(repo, 31337), Inspector(repo, NoMachine()),
                            healthy=lambda: True, request_timeout=timeout, request_deadline=deadline)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
