"""`fedrollup console serve`: the explorer page and its JSON on a local HTTP server.

Routes (GET only): `/` the page, `/explorer.js`, `/explorer.css`, `/api/snapshot` (built once, rebuilt with
`?refresh=1`), `/api/audit` (the audit runs once in the background when the server starts: `running`, then
`passed` with its verdict and notes, or `failed` with its first discrepancy). A request that fails answers a
JSON error with status 500 and the server goes on; anything else is 404. It binds to loopback unless told
otherwise: it serves what anyone may read from the node and L1, but nothing needs to reach it from outside.
"""
from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from common.errors import ConfigError
from frontend_console.audit import AuditFailure, audit
from frontend_console.explorer import snapshot
from rollups_client.l1 import L1
from rollups_client.node import NodeClient

PAGE_DIR = Path(__file__).resolve().parent / "explorer_page"
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
          "/explorer.css": ("explorer.css", "text/css; charset=utf-8")}


class Explorer:
    """What the server answers: the snapshot (cached) and the audit's state (computed once, in the background)."""

    def __init__(self, node: NodeClient, l1: L1, run_dir: Path | None = None, audit_timeout: float = 120.0) -> None:
        self.node, self.l1, self.run_dir, self.audit_timeout = node, l1, run_dir, audit_timeout
        self._snapshot: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.audit: dict[str, Any] = {"state": "running"}

    def start_audit(self) -> threading.Thread:
        thread = threading.Thread(target=self._run_audit, name="audit", daemon=True)
        thread.start()
        return thread

    def _run_audit(self) -> None:
        try:
            report = audit(self.node, self.l1, run_dir=self.run_dir, force_claims=False, timeout=self.audit_timeout)
        except AuditFailure as failure:
            self.audit = {"state": "failed", "verdict": f"AUDIT FAILED: {failure}", "discrepancy": str(failure)}
        except (ConfigError, OSError, ValueError) as err:
            self.audit = {"state": "error", "verdict": f"the audit could not run: {err}"}
        else:
            self.audit = {"state": "passed", "verdict": report.verdict(), "notes": report.notes}

    def snapshot(self, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            if self._snapshot is None or refresh:
                self._snapshot = snapshot(self.node, self.l1)
            return self._snapshot


def handler_for(explorer: Explorer) -> type[BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[dict[str, list[str]]], Any]] = {
        "/api/snapshot": lambda query: explorer.snapshot(refresh=query.get("refresh") == ["1"]),
        "/api/audit": lambda query: explorer.audit,
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "fedrollup-explorer"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path in STATIC:
                name, kind = STATIC[url.path]
                self._send(HTTPStatus.OK, (PAGE_DIR / name).read_bytes(), kind)
            elif url.path in routes:
                try:
                    body, status = routes[url.path](parse_qs(url.query)), HTTPStatus.OK
                except Exception as err:  # a node or L1 that fails must not stop the server
                    body, status = {"error": f"{type(err).__name__}: {err}"}, HTTPStatus.INTERNAL_SERVER_ERROR
                self._send(status, json.dumps(body).encode(), "application/json")
            else:
                self._send(HTTPStatus.NOT_FOUND, b'{"error": "not found"}', "application/json")

        def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
            pass  # quiet: the console prints what matters

    return Handler


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The explorer's HTTP server, bound (port 0: any free port); `serve_forever()` runs it."""
    try:
        server = ThreadingHTTPServer((host, port), handler_for(explorer))
    except (OSError, OverflowError) as err:
        raise ConfigError(f"cannot serve the explorer on {host}:{port}: {getattr(err, 'strerror', None) or err}") \
            from None
    server.daemon_threads = True
    return server
