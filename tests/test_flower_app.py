"""The project is a Flower App (issue 16): `flwr run .` runs the whole federation on Flower's Simulation Engine (Ray)
with the same options as `fedrollup simulate`, and reaches the same decisions and accuracy as the in-process grid."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from flwr.app import Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from common.errors import ConfigError
from flower_sim.config import SimulationConfig
from flower_sim.grid import GroupGrid, InProcessGrid

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
APP = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["flwr"]["app"]


def test_the_apps_run_config_is_simulates_options_with_their_defaults():
    """`flwr run . -c "rounds=3 strategy='krum'"` takes exactly `fedrollup simulate`'s options (Flower refuses a key
    the app does not declare), with the same defaults, plus "out"."""
    assert APP["config"] == {**SimulationConfig().to_run_config(), "model": "", "out": "",  # "": the task's model
                             "deployment": "", "node-url": ""}  # "": not recorded on a rollup
    assert SimulationConfig.from_run_config(APP["config"]) == SimulationConfig()
    assert SimulationConfig.from_run_config({**APP["config"], "task": "qos"}).validate().model == "qos"


def test_the_components_are_our_server_and_client_apps():
    from flower_sim import server_app, trainer  # imported here: loading them is what the test checks
    assert APP["components"] == {"serverapp": "flower_sim.server_app:app", "clientapp": "flower_sim.trainer:app"}
    assert isinstance(server_app.app, ServerApp) and isinstance(trainer.app, ClientApp)


def test_flwr_build_bundles_the_apps_code_and_not_the_rest_of_the_repository(tmp_path):
    subprocess.run([str(BIN / "flwr"), "build", "--app", str(REPO)], cwd=tmp_path, check=True, capture_output=True,
                   env={**os.environ, "FLWR_HOME": str(tmp_path / "flwr-home")})
    (fab,) = tmp_path.glob("*.fab")
    names = zipfile.ZipFile(fab).namelist()
    assert {"flower_sim/server_app.py", "flower_sim/trainer.py", "dapp/qnn.py", "common/accounts.py"} <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("build", "tests", "rollups_node", "topology", ".venv")]
    assert fab.stat().st_size < 2 * 1024 * 1024  # Flower's limit is 10 MB


class AnsweringLater:
    """A runtime's grid: a reply exists only once `send_and_receive` has waited for it, never right after a push."""

    def __init__(self) -> None:
        self.waited: list[int] = []

    def push_messages(self, messages):
        return [str(m.metadata.dst_node_id) for m in messages]

    def pull_messages(self, message_ids):
        return []

    def send_and_receive(self, messages, *, timeout=None):
        self.waited += [m.metadata.dst_node_id for m in messages]
        return [Message(RecordDict({"metrics": MetricRecord({"trainer-id": n})}), dst_node_id=n,
                        message_type="query") for n in self.waited]


def test_a_validators_group_grid_waits_for_the_runtimes_replies():
    """On Flower's engines replies arrive after the push: a validator's view must wait as the runtime's grid does
    (it once pulled at once and judged an empty round)."""
    InProcessGrid(ClientApp(), 0, {})  # as a runtime does before any Message is built: the run's task identity
    runtime = AnsweringLater()
    group = GroupGrid(runtime, [11, 12])
    asked = [Message(RecordDict({}), dst_node_id=n, message_type="query") for n in (11, 12)]
    assert len(list(group.send_and_receive(asked))) == 2 and runtime.waited == [11, 12]
    with pytest.raises(ValueError, match="not in this validator's group"):
        group.send_and_receive([Message(RecordDict({}), dst_node_id=13, message_type="query")])


@pytest.mark.slow
def test_flwr_run_on_the_simulation_engine_decides_as_the_in_process_grid_and_records_on_the_rollup(tmp_path):
    """`flwr run .` (a local SuperLink, Ray actors for the trainers) against `fedrollup simulate` on the same options:
    the same accepted and rejected updates and the same global accuracy (weights may differ in the last float bits:
    TensorFlow's thread count changes float sums, so bit-identical models are not promised across engines). The
    run records on a local rollup (`deployment`, `node-url`): every round closed there, and the audit passes."""
    from fedrollup.stack import local_stack  # starts anvil and the node: this test only
    from frontend_console.audit import audit  # web3: this test only
    from rollups_client.l1 import L1  # web3: this test only

    options = ("rounds=2 trainers=8 validators=2 model='logreg' attack='gaussian' malicious=0.25 attack-prob=1.0 "
               "fraction-train=0.5")
    env = {**os.environ, "FLWR_HOME": str(tmp_path / "flwr-home"), "PATH": f"{BIN}:{os.environ['PATH']}"}
    out = tmp_path / "flwr"
    with local_stack(tmp_path / "chain", block_time=0.5, consensus="authority") as stack:
        rollup = f"deployment='{stack.deployment_path}' node-url='{stack.node_url}'"
        run = subprocess.run([str(BIN / "flwr"), "run", str(REPO), "--stream", "-c", f"{options} out='{out}' {rollup}",
                              "--federation-config", "num-supernodes=8"], env=env, cwd=tmp_path, capture_output=True,
                             text=True, timeout=400)
        try:
            assert (out / "metrics.json").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
        finally:
            _stop_local_superlink(tmp_path / "flwr-home")
        recorded = json.loads((out / "metrics.json").read_text())
        assert recorded["rollup"]["task_id"] == 1
        # each round closed on the rollup with the manager's global model, bit for bit (the recorder checks it)
        assert [len(r["rollup"]["global_digest"]) for r in recorded["rounds"]] == [64, 64]
        report = audit(stack.node, L1(stack.deployment.rpc_url, stack.deployment), run_dir=out)
        assert report.verdict().startswith("AUDIT PASSED"), report.verdict()
    simulate = subprocess.run([str(BIN / "fedrollup"), "simulate", "--rounds", "2", "--trainers", "8", "--model",
                               "logreg", "--attack", "gaussian", "--malicious", "0.25", "--attack-prob", "1",
                               "--fraction-train", "0.5", "--out", str(tmp_path / "sim")],
                              capture_output=True, text=True, timeout=300)
    assert simulate.returncode == 0, simulate.stderr[-2000:]
    ray, ours = (json.loads((d / "metrics.json").read_text())["rounds"] for d in (out, tmp_path / "sim"))

    def decisions(rounds: list) -> list:  # the trainers sampled each round, and what their validator decided
        return [sorted((c["trainer_id"], c["accepted"]) for c in r["contributions"]) for r in rounds]
    assert decisions(ray) == decisions(ours) and [len(d) for d in decisions(ours)] == [4, 4]
    assert decisions(ours)[0] != decisions(ours)[1]  # each round samples its own half
    assert any(not accepted for d in decisions(ours) for _, accepted in d)  # the always-on noise was rejected
    assert [r["global_accuracy_bps"] for r in ray] == [r["global_accuracy_bps"] for r in ours]


def _stop_local_superlink(flwr_home: Path) -> None:
    """The local SuperLink `flwr run` started for this test (it runs detached, logging under our FLWR_HOME)."""
    mine = str(flwr_home / "local-superlink")
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if "flower-superlink" in cmdline and mine in cmdline:
            os.kill(int(proc.name), signal.SIGTERM)


def test_a_recorded_flwr_run_needs_an_absolute_deployment_file_that_exists(tmp_path):
    """A ServerApp runs in the SuperLink's folder: a relative deployment path would name another file; a missing one
    says how to make it. Both in one line, before any key is used."""
    from flower_sim.server_app import open_rollup  # imported here: loading it is part of what is checked
    with pytest.raises(ConfigError, match="absolute path"):
        open_rollup(SimulationConfig(), "contracts-config/deployments/local.json", "")
    with pytest.raises(ConfigError, match="fedrollup chain up"):
        open_rollup(SimulationConfig(), str(tmp_path / "none.json"), "")
