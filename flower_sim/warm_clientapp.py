"""A warm ClientApp executor: a station's SuperExec that forks each ClientApp from a preloaded process.

Why: with Flower's default `--isolation subprocess` the SuperNode starts `flower-superexec`, which starts a
fresh `flwr-clientapp` process for every message; each one imports TensorFlow (4-6 s of CPU) before it
trains its 175 samples for ~0.6 s. Here the SuperNode runs with the documented `--isolation process`, and
this process (`python -m flower_sim.warm_clientapp`) plays `flower-superexec` next to it: Flower's own loop
(`run_superexec`: task acquisition from the SuperNode's Runtime API, the task token, signal handling,
`--parent-pid` monitoring) with an executor whose `launch` starts a child forked from a forkserver that
imported TensorFlow and the app once. The child runs Flower's `run_clientapp(...)` with the task's token,
exactly what `flwr-clientapp` runs, and leaves with `os._exit`. The forkserver only ever imports modules
(no HTTP client, no thread of ours), so every child starts from the same clean state and trains as
deterministically as a fresh process.

Flower 1.41 internals this module relies on (and no other module of ours touches them):
  * `flwr.supercore.superexec.run_superexec`: `run_superexec(...)` builds its executor by calling the
    module-level name `get_executor` and takes no executor argument, so `serve` rebinds that name to return
    ours for this process;
  * the executor protocol of `flwr.supercore.superexec.executor.types` (`ExecutionSpec`, `LaunchResult`;
    `get_eligible_capacity`, `wait_for_capacity`, `launch`, `reconcile`, `close`), as `SubprocessExecutor`
    implements it; `TaskType.CLIENT_APP` (`flwr.supercore.constant`) is the only task type taken;
  * `flwr.supernode.runtime.run_clientapp.run_clientapp`: ends with `flwr_exit` (SystemExit) and registers
    signal and exit handlers in module globals, hence the clean forkserver and the child's `os._exit`;
  * `flwr.supercore.tls.validate_and_resolve_root_certificates`, as `flwr-clientapp` uses it.
"""
from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass, field

from flwr.supercore.constant import TaskType
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResult
from flwr.supercore.tls import validate_and_resolve_root_certificates
from flwr.supernode.runtime.run_clientapp import run_clientapp

# the module, not its function of the same name (the package could re-export that one day)
superexec_loop = importlib.import_module("flwr.supercore.superexec.run_superexec")

# what `python -m flower_sim.warm_clientapp` preloads unless told otherwise: the stations' trainer
DEFAULT_PRELOAD = ("tensorflow", "keras", "flwr.clientapp", "flwr.supernode.runtime.run_clientapp",
                   "flower_sim.station_app")
READY = "warm ClientApp executor ready"


def say(text: str) -> None:
    print(f"[warm-clientapp] {text}", flush=True)


def run_task(address: str, token: str, insecure: bool, root_certificates: str | None,
             parent_pid: int | None) -> None:
    """The forked child: Flower's `run_clientapp` for one task, then `os._exit` with its exit code, so none
    of the forkserver's (multiprocessing's) exit machinery runs in it."""
    code = 1
    try:
        run_clientapp(runtime_api_address=address, token=token, insecure=insecure,
                      certificates=validate_and_resolve_root_certificates(root_certificates, insecure),
                      parent_pid=parent_pid, runtime_dependency_install=False)
        code = 0
    except SystemExit as done:  # flwr_exit ends every run_clientapp this way
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001  (reported, then the exit code says it)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _ready() -> None:
    """A no-op child: starting one proves the forkserver has finished its preloading."""


@dataclass
class WarmExecutor:
    """Flower's executor protocol, forking every ClientApp task from a preloaded forkserver."""

    preload: tuple[str, ...] = DEFAULT_PRELOAD
    children: dict[int, tuple[multiprocessing.process.BaseProcess, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(list(self.preload))

    def warm_up(self) -> float:
        """Start the forkserver and wait until it has imported `preload`; the seconds that took."""
        started = time.monotonic()
        probe = self.context.Process(target=_ready, name="warm-up")
        probe.start()
        probe.join()
        if probe.exitcode != 0:
            raise RuntimeError(f"the forkserver could not start (preloading {', '.join(self.preload)})")
        return time.monotonic() - started

    def get_eligible_capacity(self, supported_task_types: set[TaskType], *, insecure: bool = False,
                              root_certificates_path: str | None = None) -> tuple[set[TaskType], set[str]]:
        """ClientApp tasks only, never a capacity wait (as `SubprocessExecutor`)."""
        del insecure, root_certificates_path
        return set(supported_task_types) & {TaskType.CLIENT_APP}, set()

    def wait_for_capacity(self, task_type: TaskType | None = None, *, fab_hash: str | None = None,
                          insecure: bool = False, root_certificates_path: str | None = None) -> None:
        del task_type, fab_hash, insecure, root_certificates_path

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        if spec.task_type != TaskType.CLIENT_APP:
            return LaunchResult.failed(f"this executor runs ClientApps only, not {spec.task_type}")
        child = self.context.Process(
            target=run_task, name=f"clientapp-task-{spec.task_id}",
            args=(spec.runtime_api_address, spec.token, spec.insecure, spec.root_certificates_path,
                  spec.parent_pid))
        try:
            child.start()
        except OSError as err:
            return LaunchResult.failed(f"could not fork the ClientApp: {err}")
        self.children[spec.task_id] = (child, time.monotonic())
        say(f"task {spec.task_id}: ClientApp forked as pid {child.pid}")
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap the children that finished, saying how each ended."""
        for task_id, (child, started) in list(self.children.items()):
            if child.exitcode is None:
                continue
            say(f"task {task_id}: ClientApp pid {child.pid} exited with code {child.exitcode} after "
                f"{time.monotonic() - started:.1f} s")
            child.close()
            del self.children[task_id]

    def close(self) -> None:
        """Stop children still running (their SuperNode is going away), then reap them."""
        for child, _ in self.children.values():
            if child.exitcode is None:
                child.terminate()
        for child, _ in self.children.values():
            child.join(5)
            if child.exitcode is None:
                child.kill()
                child.join(2)
        self.reconcile()


def serve(runtime_api_address: str, insecure: bool, root_certificates: str | None, parent_pid: int | None,
          preload: tuple[str, ...]) -> None:
    """Warm the forkserver, then run Flower's SuperExec loop with the warm executor; returns never (exits
    through Flower's handlers when signalled or when `parent_pid` goes)."""
    executor = WarmExecutor(tuple(preload))
    say(f"preloading {', '.join(preload)} in a forkserver ...")
    say(f"{READY}: preloaded in {executor.warm_up():.1f} s; serving ClientApp tasks of the SuperNode's "
        f"Runtime API at {runtime_api_address}")
    superexec_loop.get_executor = lambda *args, **kwargs: executor
    superexec_loop.run_superexec(runtime_api_address=runtime_api_address, insecure=insecure,
                                 root_certificates_path=root_certificates, parent_pid=parent_pid,
                                 runtime_dependency_install=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flower_sim.warm_clientapp",
        description="A SuperNode's SuperExec (for `flower-supernode --isolation process`) that forks each "
                    "ClientApp from a process that preloaded TensorFlow and the app.")
    parser.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API, host:port")
    tls = parser.add_mutually_exclusive_group(required=True)
    tls.add_argument("--insecure", action="store_true", help="the Runtime API without TLS")
    tls.add_argument("--root-certificates", default=None, help="CA of the Runtime API's TLS certificate")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process (the SuperNode) exits")
    parser.add_argument("--preload", nargs="+", default=list(DEFAULT_PRELOAD), metavar="MODULE",
                        help="modules the forkserver imports once")
    parser.add_argument("--also-preload", nargs="+", default=[], metavar="MODULE",
                        help="more modules to import once, after --preload's")
    args = parser.parse_args(argv)
    serve(args.runtime_api_address, args.insecure, args.root_certificates, args.parent_pid,
          tuple(args.preload + args.also_preload))
    return 0


if __name__ == "__main__":  # run the module proper, so the children's target is pickled by its real name
    from flower_sim import warm_clientapp

    sys.exit(warm_clientapp.main())
