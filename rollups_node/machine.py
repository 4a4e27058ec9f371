"""The host-mode stand-in for the Cartesi Machine: the backend process and the rollup HTTP server it talks to.

The node owns the backend as the real node owns the machine: it spawns the backend command with
`ROLLUP_HTTP_SERVER_URL` set, hands it one request at a time, and collects what it emitted. That URL holds
the rollup HTTP API's per-run secret path: only this child gets it (its environment, a log only the node's
user reads); the node logs the address without it. When the backend dies or raises an exception, the
machine is restarted (a fresh process and a new secret) and the node replays the accepted inputs, which is
how a host process gets the machine's revert.
"""
from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from rollups_node.rollup_http import RollupHttpServer, Session
from rollups_node.rollup_http_schema import MAX_OUTPUTS, MAX_REPORTS

log = logging.getLogger("rollups_node.machine")


def _die_with_parent() -> None:
    """In the backend child: be killed when the node dies, even by SIGKILL (Linux PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class MachineError(RuntimeError):
    """The backend could not be started or stopped answering."""


@dataclasses.dataclass
class AdvanceResult:
    status: str  # "accept", "reject", "exception", "halted", "outputs_limit" or "reports_limit"
    outputs: list[bytes]
    reports: list[bytes]
    exception: Optional[bytes] = None


class HostMachine:
    def __init__(self, command: list[str], port: int = 0, finish_timeout: float = 10.0,
                 log_path: Optional[Path] = None, ready_timeout: float = 120.0,
                 advance_timeout: float = 300.0, max_outputs: int = MAX_OUTPUTS,
                 max_reports: int = MAX_REPORTS, env: Optional[dict[str, str]] = None) -> None:
        self.command, self.port, self.finish_timeout = command, port, finish_timeout
        self.env = dict(env or {})  # what the backend is configured with beyond the node's own environment
        self.max_outputs, self.max_reports = max_outputs, max_reports
        self.log_path, self.ready_timeout, self.advance_timeout = log_path, ready_timeout, advance_timeout
        self.server: Optional[RollupHttpServer] = None
        self.process: Optional[subprocess.Popen] = None
        self.lock = threading.Lock()  # one request at a time, like a machine

    @property
    def ready(self) -> bool:
        return bool(self.server and self.process and self.process.poll() is None
                    and self.server.backend_waiting.is_set())

    def start(self) -> None:
        """Start the rollup HTTP server and the backend; return when the backend waits on /finish."""
        self.server = RollupHttpServer(self.port, self.finish_timeout, max_outputs=self.max_outputs,
                                       max_reports=self.max_reports)
        self.port = self.server.server_address[1]  # a restart reuses the same port
        threading.Thread(target=self.server.serve_forever, name="rollup-http", daemon=True).start()
        env = dict(os.environ, **self.env, ROLLUP_HTTP_SERVER_URL=self.server.url)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        if self.log_path:
            os.fchmod(out.fileno(), 0o600)  # the backend may log its URL, and the URL holds the secret
        try:
            self.process = subprocess.Popen(self.command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        except OSError as err:
            self.stop()
            raise MachineError(f"cannot start the backend {' '.join(self.command)!r}: {err}") from err
        finally:
            if self.log_path:
                out.close()
        deadline = time.monotonic() + self.ready_timeout
        while not self.server.backend_waiting.wait(0.05):
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise MachineError(f"the backend {' '.join(self.command)!r} exited with code {code} before "
                                   f"asking for its first input" + (f" (see {self.log_path})" if self.log_path else ""))
            if time.monotonic() > deadline:
                self.stop()
                raise MachineError(f"the backend did not call /finish within {self.ready_timeout:g} s")
        log.info("backend %r is up (pid %d), rollup HTTP API at %s",
                 " ".join(self.command), self.process.pid, self.server.address)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        self.process = None
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def restart(self) -> None:
        log.info("restarting the backend with a fresh state")
        with self.lock:  # no inspect may be in flight while the process is replaced
            self.stop()
            self.start()

    def _run(self, session: Session, timeout: float) -> Session:
        with self.lock:
            if not self.ready:
                raise MachineError("the backend is not running")
            self.server.submit(session)
            deadline = time.monotonic() + timeout
            while not session.done.wait(0.02):
                if self.process.poll() is not None:
                    session.finish("halted", f"backend exited with code {self.process.returncode}".encode())
                elif time.monotonic() > deadline:
                    session.finish("halted", f"backend did not finish within {timeout:g} s".encode())
            return session

    def advance(self, data: dict, first_output_index: int) -> AdvanceResult:
        """Hand the backend one advance-state request (its JSON `data`: `dapp.advance_request.encode_advance`);
        outputs are numbered from `first_output_index`."""
        request = {"request_type": "advance_state", "data": data}
        session = self._run(Session(request, first_output_index), self.advance_timeout)
        return AdvanceResult(session.status, session.outputs, session.reports, session.exception)

    def inspect(self, payload: bytes, timeout: float = 60.0) -> AdvanceResult:
        request = {"request_type": "inspect_state", "data": {"payload": "0x" + payload.hex()}}
        session = self._run(Session(request), timeout)
        return AdvanceResult(session.status, [], session.reports, session.exception)
