"""Long-running processes on emulated hosts: each in its host's namespace, its own folder, logs, FLWR_HOME.

Every host gets `<run>/hosts/<host>/` as working folder, with `flwr-home/` as its FLWR_HOME (Mininet hosts
share one filesystem, so a shared ~/.flwr would mix the hosts' state). A process is started with
`mnexec -da <host shell pid>` (Mininet's `popen`) in a session of its own, so stopping it stops its children.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from topology.net import PROXY_VARIABLES, EmulatedNetwork

VENV_BIN = Path(sys.executable).parent


@dataclass
class HostProcess:
    """A process running on an emulated host."""

    host: str
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class HostProcesses:
    """Starts, watches and stops the processes of one network; stops them all when the network stops."""

    def __init__(self, network: EmulatedNetwork) -> None:
        self.network = network
        self.processes: list[HostProcess] = []
        network.on_stop(self.stop_all)

    def host_dir(self, host: str) -> Path:
        path = self.network.run_dir / "hosts" / host
        (path / "flwr-home").mkdir(parents=True, exist_ok=True)
        return path

    def environment(self, host: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
        env.update({"FLWR_HOME": str(self.host_dir(host) / "flwr-home"), "FLWR_TELEMETRY_ENABLED": "0",
                    "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
                    "TF_CPP_MIN_LOG_LEVEL": "3", "NO_PROXY": "*", "PYTHONUNBUFFERED": "1",
                    "FEDROLLUP_TOPOLOGY_RUN": self.network.run_id, "FEDROLLUP_HOST": host,
                    "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
        env.update(extra or {})
        return env

    def log_path(self, host: str, name: str) -> Path:
        """Where the output of process `name` on `host` goes."""
        return self.host_dir(host) / f"{name}.log"

    def start(self, host: str, name: str, argv: list[str], env: dict[str, str] | None = None) -> HostProcess:
        """Start `argv` on `host`; output goes to <host dir>/<name>.log."""
        folder = self.host_dir(host)
        log = self.log_path(host, name)
        with open(log, "ab") as out:
            popen = self.network.host(host).popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                  stderr=subprocess.STDOUT, cwd=folder,
                                                  env=self.environment(host, env))
        process = HostProcess(host, name, popen, log)
        self.processes.append(process)
        return process

    def run(self, host: str, name: str, argv: list[str], timeout_s: float,
            env: dict[str, str] | None = None) -> HostProcess:
        """Run `argv` on `host` to completion (a `fedrollup chain up`, a probe); raise if it fails."""
        process = self.start(host, name, argv, env)
        try:
            code = process.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.stop(process)
            raise RuntimeError(f"{name} on {host} did not finish within {timeout_s:g} s (log {process.log})")
        if code != 0:
            raise RuntimeError(f"{name} on {host} exited with code {code}: {process.log_tail(3)}")
        return process

    def stop(self, process: HostProcess, grace_s: float = 10.0) -> None:
        """SIGTERM to the process's session, SIGKILL after `grace_s`."""
        if not process.alive:
            return
        try:  # mnexec -d made the process a session (and group) leader
            os.killpg(process.popen.pid, signal.SIGTERM)
            process.popen.wait(timeout=grace_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(timeout=5)

    def stop_all(self, grace_s: float = 10.0) -> None:
        """SIGTERM every running process at once, then SIGKILL those still up after `grace_s`."""
        running = [p for p in self.processes if p.alive]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for process in running:
                try:
                    os.killpg(process.popen.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
            while time.monotonic() < deadline and any(p.alive for p in running):
                time.sleep(0.05)
            running = [p for p in running if p.alive]
            if not running:
                return


class OutputLines:
    """A process's output read as it comes: the complete lines its log gained since the last `read`
    (whatever the log held when this reader was made is skipped)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        self.pending = b""

    def read(self) -> list[str]:
        try:
            with open(self.log, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        *complete, self.pending = (self.pending + data).split(b"\n")
        return [line.decode(errors="replace") for line in complete]


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, process: HostProcess | None = None,
               interval_s: float = 0.3) -> float:
    """Poll `check` until true; return the seconds it took. Fails early when `process` dies."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        if process is not None and not process.alive:
            raise RuntimeError(f"{what}: {process.name} on {process.host} exited with code "
                               f"{process.popen.returncode}: {process.log_tail(3)}")
        time.sleep(interval_s)
    detail = f" (log {process.log})" if process else ""
    raise RuntimeError(f"{what}: not within {timeout_s:g} s{detail}")
