"""Cleaning touches only what a run marked: its processes (and their namespaces) and its recorded interfaces."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.topology_fixtures import needs_root
from topology import clean


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(clean, "STATE_DIR", tmp_path / "state")
    return tmp_path / "state"


def sleeper(mark: str | None) -> subprocess.Popen:
    env = dict(os.environ)
    env.pop(clean.MARK, None)
    if mark:
        env[clean.MARK] = mark
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)


@needs_root
def test_clean_kills_the_marked_run_and_nothing_else(state_dir):
    ours, other_run, unmarked = sleeper("run-a"), sleeper("run-b"), sleeper(None)
    try:
        time.sleep(0.3)
        path = clean.write_state("run-a", ["fedrollup-none0"], state_dir)
        assert ours.pid in clean.leftovers("run-a").processes
        assert unmarked.pid not in clean.run_processes(None)
        # while another live process owns run-a, a new run's stale-only sweep leaves it alone
        path.write_text(path.read_text().replace(f'"owner_pid": {os.getpid()}', f'"owner_pid": {unmarked.pid}'))
        assert clean.clean(only_stale=True).processes == [] and path.exists()
        removed = clean.clean("run-a")
        assert ours.pid in removed.processes and ours.wait(timeout=5) is not None
        assert other_run.poll() is None and unmarked.poll() is None
        assert not clean.state_path("run-a").exists() and not clean.leftovers("run-a")
    finally:
        for process in (ours, other_run, unmarked):
            process.kill()
            process.wait()


@needs_root
def test_the_root_namespace_is_never_swept_whole():
    # an unmarked process in the root namespace is never a leftover, whatever namespaces are asked about
    assert os.getpid() not in clean.run_processes(None, {clean.root_netns()})
    assert 1 not in clean.run_processes(None, {clean.netns_of(os.getpid())})
