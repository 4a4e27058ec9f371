"""The warm ClientApp executor against a real SuperLink and SuperNode on loopback (no root, no network
emulation): it runs each task's ClientApp in a forked child that is reaped, and it exits with its SuperNode."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topology.echo_round import write_echo_app
from flower_sim.warm_clientapp import READY

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = Path(f"/proc/{parent}/task/{task}/children").read_text().split()
            except OSError:
                kids = []
            for kid in map(int, kids):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def test_each_task_runs_in_a_reaped_fork_and_the_executor_ends_with_its_supernode(tmp_path):
    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flwr-home"), "FLWR_TELEMETRY_ENABLED": "0",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "PYTHONUNBUFFERED": "1", "NO_PROXY": "*",
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # the SuperLink starts flower-superexec
    link, runtime = free_port(), free_port()
    (tmp_path / "flwr-home").mkdir()
    (tmp_path / "flwr-home" / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:{link}"\ninsecure = true\n')
    started: list[subprocess.Popen] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "wb") as log:
            process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(process)
        return process

    try:
        start("superlink", [str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port",
                            str(link), "--disable-runtime-dependency-installation"])
        supernode = start("supernode", [str(BIN / "flower-supernode"), "--insecure", "--superlink",
                                        f"127.0.0.1:{link}", "--isolation", "process", "--host", "127.0.0.1",
                                        "--port", str(runtime), "--node-config", "partition-id=2"])
        executor = start("executor", [sys.executable, "-m", "flower_sim.warm_clientapp", "--runtime-api-address",
                                      f"127.0.0.1:{runtime}", "--insecure", "--parent-pid", str(supernode.pid),
                                      "--preload", "flwr.clientapp", "topology.echo_app"])
        log = tmp_path / "executor.log"
        wait_for(lambda: listening(link), 30, "the SuperLink listening")
        wait_for(lambda: READY in log.read_text(), 30, "the forkserver preloaded")
        helpers = descendants(executor.pid)
        assert helpers, "the forkserver (and its resource tracker) run under the executor"
        out = tmp_path / "echo.json"
        run = subprocess.run([str(BIN / "flwr"), "run", str(write_echo_app(tmp_path / "app")), "local",
                              "--run-config", f'nodes=1 payload-bytes=4000 rounds=2 out="{out}"', "--stream"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
        assert out.exists(), run.stdout + run.stderr + log.read_text()
        # both rounds came back from the ClientApp, altered by its partition id (2), intact
        rounds = json.loads(out.read_text())["rounds"]
        assert [(r["replies"], r["intact"]) for r in rounds] == [(1, 1), (1, 1)], rounds
        wait_for(lambda: log.read_text().count("exited with code 0") == 2, 10, "both tasks reaped")
        text = log.read_text()
        forked = [int(line.split("forked as pid ")[1].split()[0]) for line in text.splitlines() if "forked as pid" in line]
        assert len(forked) == 2 and executor.pid not in forked and len(set(forked)) == 2, text
        assert not any(alive(pid) for pid in forked), "every ClientApp child is gone, none a zombie"
        assert descendants(executor.pid) == helpers, "nothing but the forkserver stays under the executor"
        # the SuperNode dies without a word: the executor notices (--parent-pid), its forkserver goes with it
        supernode.kill()
        supernode.wait(5)
        executor.wait(timeout=10)
        wait_for(lambda: not any(alive(pid) for pid in helpers), 10, "the forkserver exited with the executor")
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
