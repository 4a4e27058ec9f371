"""Leaving the machine as it was found: what a run left behind, and removing it (like `mn -c`, but only ours).

A run is recognised by two marks it leaves as it builds: the environment variable `FEDROLLUP_TOPOLOGY_RUN`
that every host shell (and so every process started on a host) inherits, and a state file under
`/run/fedrollup-topology/` naming the run's owner pid and the interfaces and bridges it made in the root
namespace. Cleaning kills every process in a marked process's network namespace (which removes the namespace
and the veth ends inside it), then deletes the recorded root-namespace interfaces that are still there.
Nothing unmarked is touched.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MARK = "FEDROLLUP_TOPOLOGY_RUN"
STATE_DIR = Path(os.environ.get("FEDROLLUP_TOPOLOGY_STATE", "/run/fedrollup-topology"))


@dataclass
class Leftovers:
    """What a run (or every run) still holds: processes by pid, root-namespace interfaces, state files."""

    processes: list[int] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    state_files: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.interfaces)

    def describe(self) -> str:
        parts = []
        if self.processes:
            parts.append(f"{len(self.processes)} process(es) {self.processes[:8]}")
        if self.interfaces:
            parts.append(f"{len(self.interfaces)} interface(s) {self.interfaces[:8]}")
        return ", ".join(parts) or "nothing"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def netns_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def root_netns() -> str:
    """The initial network namespace: kthreadd's (pid 2), which is readable where pid 1's may not be."""
    return netns_of(2)


def run_mark(pid: int) -> str | None:
    """The run id a process carries in its environment, if any."""
    for item in _read(Path(f"/proc/{pid}/environ")).split(b"\0"):
        if item.startswith(MARK.encode() + b"="):
            return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _protected() -> set[int]:
    """This process and its ancestors: a clean run from inside a host must not kill itself."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = _read(Path(f"/proc/{pid}/stat")).decode(errors="replace")
        try:
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            break
    return pids


def run_processes(run_id: str | None = None, namespaces: set[str] | None = None) -> list[int]:
    """Pids of processes marked with `run_id` (any run when None) and of every process sharing their
    network namespace (or one of `namespaces`), except the root namespace's unmarked processes."""
    root_ns = root_netns()
    if not root_ns:  # without a known root namespace, a namespace sweep could reach the whole machine
        raise RuntimeError("cannot read the root network namespace (/proc/2/ns/net); run as root")
    pids = _all_pids()
    spaces = set(namespaces or ())
    marked = set()
    for pid in pids:
        mark = run_mark(pid)
        if mark is not None and (run_id is None or mark == run_id):
            marked.add(pid)
            if netns_of(pid) != root_ns:
                spaces.add(netns_of(pid))
    spaces.discard("")
    spaces.discard(root_ns)
    found = {pid for pid in pids if netns_of(pid) in spaces} | marked
    return sorted(found - _protected() - {1, 2})


def kill_all(pids: list[int], grace_s: float = 5.0) -> None:
    """SIGTERM, wait up to `grace_s` for them to go, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 2.0)
        while time.monotonic() < deadline and any(_running(pid) for pid in pids):
            time.sleep(0.05)
        pids = [pid for pid in pids if _running(pid)]
        if not pids:
            return


def _running(pid: int) -> bool:
    stat = _read(Path(f"/proc/{pid}/stat")).decode(errors="replace")
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def root_interfaces() -> set[str]:
    return set(os.listdir("/sys/class/net")) if Path("/sys/class/net").exists() else set()


# -- state files ------------------------------------------------------------------------------------------
def state_path(run_id: str) -> Path:
    return STATE_DIR / f"{run_id}.json"


def write_state(run_id: str, interfaces: list[str], run_dir: Path) -> Path:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = state_path(run_id)
    path.write_text(json.dumps({"run_id": run_id, "owner_pid": os.getpid(), "interfaces": sorted(interfaces),
                                "run_dir": str(run_dir)}, indent=2) + "\n")
    return path


def _states(run_id: str | None) -> list[tuple[Path, dict]]:
    paths = [state_path(run_id)] if run_id else sorted(STATE_DIR.glob("*.json"))
    found = []
    for path in paths:
        try:
            found.append((path, json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return found


def leftovers(run_id: str | None = None) -> Leftovers:
    """What is still there of `run_id` (of every recorded run when None)."""
    present = root_interfaces()
    states = _states(run_id)
    interfaces = sorted({i for _, s in states for i in s.get("interfaces", []) if i in present})
    return Leftovers(run_processes(run_id), interfaces, [p for p, _ in states])


def clean(run_id: str | None = None, only_stale: bool = False) -> Leftovers:
    """Remove what `run_id` (every run when None) left behind; return what was removed.

    `only_stale` keeps runs whose owner process is still alive (used when a new run starts, so two runs in
    parallel do not clean each other)."""
    removed = Leftovers()
    for path, state in _states(run_id):
        owner = int(state.get("owner_pid", 0))
        if only_stale and owner and _running(owner) and owner != os.getpid():
            continue
        rid = state.get("run_id", path.stem)
        pids = run_processes(rid)
        kill_all(pids)
        removed.processes += pids
        present = root_interfaces()
        for name in state.get("interfaces", []):
            if name in present:
                subprocess.run(["ip", "link", "del", name], capture_output=True)
                removed.interfaces.append(name)
        path.unlink(missing_ok=True)
        removed.state_files.append(path)
    if run_id is None and not only_stale:  # marked processes of runs whose state file is gone
        pids = run_processes(None)
        kill_all(pids)
        removed.processes += pids
    return removed
