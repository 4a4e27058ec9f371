"""Replay a recorded run through another backend and compare every result with what the node stored.

The node's database holds every input it read and what the backend answered: each input's status
(accepted, rejected, exception), its outputs (notices and vouchers, stored only when accepted), its reports
and the outputs Merkle root after it. `replay_run` copies the inputs into a fresh database and feeds them,
in order, through the node's own advancer driving another backend command (the riscv64 build under QEMU,
`make riscv-replay`), then compares the two databases input by input, byte for byte. Nothing touches L1;
the recorded database is only read.
"""
from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from common.errors import FedrollupError
from rollups_node.advancer import Advancer, ReplayDivergence
from rollups_node.machine import HostMachine, MachineError
from rollups_node.merkle import OutputsTree
from rollups_node.model import INPUT_NONE, Input
from rollups_node.sqlite_repository import SqliteRepository

ALL = 1 << 62  # "every row" for the repository's paged reads


class ReplayError(FedrollupError):
    """The recorded database cannot be replayed (missing, empty, or not a node's database)."""


@dataclasses.dataclass(frozen=True)
class InputResult:
    """What one input produced: everything the node stores about it, as bytes."""
    status: str
    outputs: tuple[bytes, ...]
    reports: tuple[bytes, ...]
    outputs_hash: Optional[str]  # the outputs Merkle root after the input


@dataclasses.dataclass
class ReplayReport:
    inputs: int
    outputs: int
    reports: int
    statuses: dict[str, int]
    startup_seconds: float  # until the backend asked for its first input
    seconds: float  # feeding the inputs (restarts after an exception included)
    differences: list[str]

    @property
    def identical(self) -> bool:
        return not self.differences

    def verdict(self) -> str:
        counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(self.statuses.items()))
        what = (f"{self.inputs} inputs ({counts}), {self.outputs} outputs, {self.reports} reports "
                f"in {self.seconds:.1f} s ({self.inputs / max(self.seconds, 1e-9):.2f} inputs/s; the backend "
                f"started in {self.startup_seconds:.1f} s)")
        if self.identical:
            return f"REPLAY IDENTICAL: {what}, every status, output and report byte for byte"
        return (f"REPLAY DIFFERS at {len(self.differences)} inputs: {what}; first: {self.differences[0]}")


def results_of(repository: SqliteRepository) -> dict[int, InputResult]:
    """Every processed input's result, by input index."""
    outputs: dict[int, list[bytes]] = {}
    for out in repository.list_outputs(limit=ALL)[0]:
        outputs.setdefault(out.input_index, []).append(out.raw_data)
    reports: dict[int, list[bytes]] = {}
    for rep in repository.list_reports(limit=ALL)[0]:
        reports.setdefault(rep.input_index, []).append(rep.raw_data)
    return {item.index: InputResult(item.status, tuple(outputs.get(item.index, ())),
                                    tuple(reports.get(item.index, ())), item.outputs_hash)
            for item in repository.list_inputs(limit=ALL)[0] if item.status != INPUT_NONE}


def _difference(index: int, recorded: InputResult, replayed: Optional[InputResult]) -> Optional[str]:
    """How the replayed result of input `index` differs from the recorded one (None: identical)."""
    if replayed is None:
        return f"input {index}: not processed by the replay"
    if replayed.status != recorded.status:
        return f"input {index}: status {replayed.status}, recorded {recorded.status}"
    for kind in ("outputs", "reports"):
        got, want = getattr(replayed, kind), getattr(recorded, kind)
        if len(got) != len(want):
            return f"input {index}: {len(got)} {kind}, recorded {len(want)}"
        for position, (a, b) in enumerate(zip(got, want)):
            if a != b:
                first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                return (f"input {index}: {kind[:-1]} {position} differs from byte {first} "
                        f"({len(a)} bytes, recorded {len(b)})")
    if replayed.outputs_hash != recorded.outputs_hash:
        return f"input {index}: outputs Merkle root {replayed.outputs_hash}, recorded {recorded.outputs_hash}"
    return None


def compare(recorded: dict[int, InputResult], replayed: dict[int, InputResult]) -> list[str]:
    """Every input whose replayed result differs from the recorded one, said in one line each."""
    found = [_difference(index, result, replayed.get(index)) for index, result in sorted(recorded.items())]
    return [text for text in found if text]


def _fresh_copy(recorded: SqliteRepository, path: Path) -> tuple[SqliteRepository, list[Input]]:
    """A new database at `path` with the recorded application and processed inputs, all unprocessed."""
    app = recorded.application()
    if app is None:
        raise ReplayError(f"{recorded.path} has no application: not a node's database")
    inputs = [dataclasses.replace(item, status=INPUT_NONE, outputs_hash=None, created_at="", updated_at="")
              for item in recorded.list_inputs(limit=ALL)[0] if item.status != INPUT_NONE]
    if not inputs:
        raise ReplayError(f"{recorded.path} holds no processed input: nothing to replay")
    fresh = SqliteRepository(path)
    fresh.save_application(app)
    fresh.add_inputs(inputs, recorded.last_read_block())
    return fresh, inputs


def replay_run(database: Path, backend_command: list[str], work_dir: Optional[Path] = None,
               progress: Callable[[str], None] = lambda _: None, ready_timeout: float = 600.0,
               advance_timeout: float = 600.0, progress_every: float = 10.0,
               backend_env: Optional[dict[str, str]] = None) -> ReplayReport:
    """Feed every processed input of the node database `database` through `backend_command` (started as the
    node starts its backend) and compare each result with the recorded one. The replay's own database and
    the backend's log go to `work_dir` (default: a temporary folder, removed afterwards)."""
    if not Path(database).is_file():
        raise ReplayError(f"no node database at {database}")
    with tempfile.TemporaryDirectory(prefix="fedrollup-replay-") as scratch:
        folder = Path(work_dir or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        replay_db = folder / "replay.sqlite"
        for stale in (replay_db, replay_db.with_name("replay.sqlite-wal"), replay_db.with_name("replay.sqlite-shm")):
            stale.unlink(missing_ok=True)  # a previous replay's, with its write-ahead log
        recorded_repo = SqliteRepository(database)
        try:
            recorded = results_of(recorded_repo)
            fresh, inputs = _fresh_copy(recorded_repo, replay_db)
        finally:
            recorded_repo.close()
        machine = HostMachine(backend_command, log_path=folder / "backend.log", ready_timeout=ready_timeout,
                              advance_timeout=advance_timeout, env=backend_env)  # e.g. the recorded run's market
        try:
            start = time.perf_counter()
            progress(f"starting the backend: {' '.join(backend_command)} (log in {folder / 'backend.log'})")
            try:
                machine.start()
            except MachineError as err:
                raise ReplayError(str(err)) from err
            startup = time.perf_counter() - start
            progress(f"backend up after {startup:.1f} s; replaying {len(inputs)} inputs")
            advancer = Advancer(fresh, machine, OutputsTree([]), threading.Lock())
            start = said = time.perf_counter()
            for done, item in enumerate(fresh.unprocessed_inputs(limit=ALL), start=1):
                try:
                    if not machine.ready:  # it died on an input that raised: a fresh one, the accepted replayed
                        advancer.rebuild_backend()
                    advancer.process(item)
                except ReplayDivergence as err:  # after an exception, the backend's rebuilt state differs
                    raise ReplayError(f"the backend diverged while rebuilding its state: {err}") from err
                if time.perf_counter() - said >= progress_every or done == len(inputs):
                    said = time.perf_counter()
                    progress(f"{done}/{len(inputs)} inputs replayed ({said - start:.0f} s)")
            seconds = time.perf_counter() - start
            replayed = results_of(fresh)
        finally:
            machine.stop()
            fresh.close()
    statuses: dict[str, int] = {}
    for result in recorded.values():
        statuses[result.status] = statuses.get(result.status, 0) + 1
    return ReplayReport(inputs=len(recorded), outputs=sum(len(r.outputs) for r in recorded.values()),
                        reports=sum(len(r.reports) for r in recorded.values()), statuses=statuses,
                        startup_seconds=startup, seconds=seconds, differences=compare(recorded, replayed))
