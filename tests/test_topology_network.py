"""The emulated network for real (root): a reduced paper topology (2 validators, 4 stations) carries pings,
shaped traffic and Flower over TLS across the namespaces, and leaves nothing behind however it ends."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.topology_fixtures import MachineState, needs_mininet
from topology import clean, flower_services
from topology.emulator import choose_emulator
from topology.net import EmulatedNetwork
from topology.processes import HostProcesses
from topology.tls import make_certificates
from topology.topo import Rates, paper_topology
from topology.transfer import fetch_all, serve_payload

pytestmark = [needs_mininet, pytest.mark.slow]
FEDROLLUP = str(Path(sys.executable).parent / "fedrollup")


def assert_nothing_left(before: MachineState, run_id: str) -> None:
    namespaces, interfaces = MachineState.now().added_since(before)
    assert namespaces == set() and interfaces == set(), (namespaces, interfaces)
    assert not clean.leftovers(run_id), clean.leftovers(run_id).describe()


def test_reduced_topology_carries_flower_over_tls_and_leaves_nothing(tmp_path):
    topo = paper_topology(stations=4, validators=2)
    before = MachineState.now()
    with EmulatedNetwork(topo, choose_emulator(), tmp_path / "run") as network:
        assert MachineState.now().added_since(before)[0], "the hosts live in namespaces of their own"
        # routed reachability: station -> its validator, -> the other group, -> the chain host via the manager
        for a, b in [("sta1", "val1"), ("sta3", "val2"), ("sta1", "sta4"), ("sta2", "chain"), ("val2", "mgr")]:
            assert network.ping(a, b), f"{a} cannot reach {b}"
        processes = HostProcesses(network)
        services = flower_services.start_superlinks(processes, topo)
        flower_services.start_supernodes(processes, topo, services)
        flower_services.wait_registered(topo, services, timeout_s=120)
        assert {n: flower_services.registered_nodes(p) for n, p in services.superlinks.items()} == {"val1": 2, "val2": 2}
        ca = str(services.certificates["val1"].ca)
        assert flower_services.tls_handshake(processes, "sta2", services.addresses["val1"], ca).startswith("TLS")
        stranger = make_certificates(tmp_path / "other-ca", {"val1": ["10.0.1.1"]})["val1"].ca
        with pytest.raises(RuntimeError, match="CERTIFICATE_VERIFY_FAILED"):
            flower_services.tls_handshake(processes, "sta2", services.addresses["val1"], str(stranger))
        radio = network.interface_bytes("sta1")["sta1-eth0"]
        assert sum(radio) > 5_000, "registration traffic crossed sta1's radio link"
        pids = [p.popen.pid for p in processes.processes]
        run_id = network.run_id
    assert network.stop_s < 30
    assert not any(Path(f"/proc/{pid}").exists() and clean._running(pid) for pid in pids)
    assert_nothing_left(before, run_id)
    # and a second run right after builds and works again
    with EmulatedNetwork(topo, choose_emulator(), tmp_path / "run2") as network:
        assert network.ping("sta4", "val2")
    assert_nothing_left(before, network.run_id)


def test_radio_rate_shapes_a_model_download(tmp_path):
    topo = paper_topology(stations=2, validators=1, rates=Rates(radio_mbps=4, ap_mbps=100, backbone_mbps=100))
    with EmulatedNetwork(topo, choose_emulator(), tmp_path / "run") as network:
        processes = HostProcesses(network)
        url = serve_payload(processes, "val1", 1_000_000)
        (result,) = fetch_all(processes, ["sta1"], url)
    assert result.payload_bytes == 1_000_000 and result.link_bytes >= 1_000_000
    # 8 Mbit at 4 Mbit/s is 2 s; unshaped veth would take milliseconds
    assert 1.6 < result.seconds < 10, result.seconds


def wait_for_line(process: subprocess.Popen, text: str, timeout_s: float) -> str:
    seen, deadline = "", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen += line
        if text in line:
            return seen
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"never saw {text!r}; output so far:\n{seen}")


@pytest.mark.parametrize("how", ["ctrl-c", "kill-9"])
def test_interrupted_or_killed_runs_leave_nothing_after_cleanup(tmp_path, how):
    before = MachineState.now()
    runner = subprocess.Popen([FEDROLLUP, "topology", "--stations", "2", "--no-chain", "--no-cli", "--rounds", "0",
                               "--out", str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        wait_for_line(runner, "SuperLink ready", 90)
        runner.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        output = runner.communicate(timeout=60)[0]
    finally:
        if runner.poll() is None:
            runner.kill()
    if how == "ctrl-c":
        assert "interrupted" in output
    else:
        assert MachineState.now().added_since(before)[0], "a killed run leaves its namespaces behind"
        done = subprocess.run([FEDROLLUP, "topology", "clean"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "process" in done.stdout, done.stdout + done.stderr
    namespaces, interfaces = MachineState.now().added_since(before)
    assert namespaces == set() and interfaces == set(), (namespaces, interfaces)
    assert not clean.leftovers()


def test_topology_command_runs_a_recorded_federated_round_across_the_network(tmp_path):
    before = MachineState.now()
    out = tmp_path / "run"
    done = subprocess.run([FEDROLLUP, "topology", "--stations", "4", "--validators", "2", "--no-cli",
                           "--rounds", "1", "--model", "logreg", "--out", str(out)],
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "emulator: mininet" in done.stdout and "left behind: nothing" in done.stdout
    summary = json.loads((out / "topology-summary.json").read_text())
    checks = summary["checks"]
    assert all(checks["ping"].values())
    assert checks["chain_id_seen_from_sta1"] == 31337 and checks["node_alive_from_sta1"] is True
    assert set(checks["tls"]) == {"sta1", "sta3"} and all(v.startswith("TLS") for v in checks["tls"].values())
    assert checks["flwr_ls_from_mgr"] == {"val1": True, "val2": True}
    # one Flower round per group moved 400 kB to every station and back, intact, over the station's radio link
    assert [(r["validator"], r["nodes"], r["intact"]) for r in checks["echo"]["rounds"]] == [("val1", 2, 2),
                                                                                          ("val2", 2, 2)]
    assert min(checks["echo"]["bytes_per_station_per_round"].values()) >= 2 * 400_000
    assert "[superlink.val2]" in (out / "hosts" / "mgr" / "flwr-home" / "config.toml").read_text()
    # every role ran as the command a deployment's operator runs: the validators admitting their group's keys
    hosts = out / "hosts"
    for validator in ("val1", "val2"):
        said = (hosts / validator / "validator.log").read_text()
        assert "2 trainer key(s) registered, no other SuperNode admitted" in said
    assert all("SuperNode dialing" in (hosts / s / "trainer.log").read_text() for s in ("sta1", "sta2", "sta3", "sta4"))
    assert "manager serving the run's configuration" in (hosts / "mgr" / "manager.log").read_text()
    # each validator sent its own rollup inputs from a key only its host holds; the manager got addresses only
    manager_files = [p.read_bytes() for p in (hosts / "mgr").rglob("*") if p.is_file()]
    for validator in ("val1", "val2"):
        said = (hosts / validator / "validator.log").read_text()
        for what in ("its Register for task", "its report of round 1 from its own key",
                     "its model of round 1 (chunk 1 of 1) from its own key"):
            assert f"sent {what}" in said, what
        key_file = hosts / validator / "validator-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip().encode()
        assert not any(key in data or key[2:] in data for data in manager_files)
    assert "(each validator from its own process and key)" in (hosts / "mgr" / "manager.log").read_text()
    # each trainer registered from a key only its station holds (in its round 1, before it replied) and signed its
    # update with it; the manager was given its address, in trainer id order, and holds no trainer key
    roster = (hosts / "mgr" / "trainer-addresses").read_text().split()
    for t, station in enumerate(("sta1", "sta2", "sta3", "sta4")):
        said = (hosts / station / "trainer.log").read_text()
        assert f"trainer {t} sent its Register for task" in said and f"from its own key ({roster[t][:10]}…" in said
        assert f"trainer {t}'s agent follows the rollup from its own key ({roster[t]})" in said
        key_file = hosts / station / "trainer-rollup-key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = key_file.read_text().strip().encode()
        assert not any(key in data or key[2:] in data for data in manager_files)
    assert "(each trainer from its own device and key, in its first round)" in \
        (hosts / "mgr" / "manager.log").read_text()
    assert min(b["rx_bytes"] for b in summary["station_bytes_after_registration"].values()) > 1_000
    assert json.loads((out / "topology.json").read_text())["format"] == "fedrollup-topology/1"
    # one federated round: each validator's ServerApp on its SuperLink trained its stations, the manager host
    # averaged the two models, and the round is on the chain host's rollup (RoundRecorded read from the node)
    metrics = json.loads((out / "metrics.json").read_text())
    (record,) = metrics["rounds"]
    assert metrics["config"]["trainers"] == 4 and metrics["config"]["validators"] == 2
    assert sorted(c["trainer_id"] for c in record["contributions"]) == [0, 1, 2, 3]
    assert [v["validator_id"] for v in record["validators"]] == [0, 1] and record["global_accuracy"] > 0.5
    assert (out / "round-001.frq").exists() and (out / "round-001-validator-1.frq").exists()
    (recorded,) = metrics["rollup"]["recorded"]
    assert recorded["round"] == 1 and recorded["global_digest"] == record["global_digest"]
    timings = record["timings"]
    assert {"training_s", "validation_s", "network_s", "upload_s", "chain_s", "wall_s"} <= set(timings)
    assert timings["training_s"] > 0 and timings["chain_s"] > 0 and timings["network_s"] > timings["upload_s"] > 0
    assert min(record["bytes_per_station"].values()) > 2 * 7850 * 4, "the logreg model went down and back up"
    # each validator timed sending its model (base64 FRQ1) and report to the manager host over the backbone
    uploads = record["upload_per_validator"]
    assert sorted(uploads) == ["0", "1"] and all(u["upload_s"] > 0 for u in uploads.values())
    assert min(u["upload_bytes"] for u in uploads.values()) >= 4 / 3 * 7892, "the logreg model (FRQ1) went up"
    assert "upload to the manager" in done.stdout
    assert metrics["topology"]["peak_pss_bytes"] > 0
    # the auditors' console audited the run from the manager host: its verdict is the summary's last line
    assert metrics["audit"]["passed"] is True, metrics["audit"]
    assert metrics["audit"]["verdict"].startswith("AUDIT PASSED") and "1 round of 1 task" in metrics["audit"]["verdict"]
    assert "3 model files match their digests" in metrics["audit"]["verdict"], "the global and validators' .frq"
    summary_lines = done.stdout[:done.stdout.index("summary written to")].strip().splitlines()
    assert summary_lines[-1] == metrics["audit"]["verdict"]
    namespaces, interfaces = MachineState.now().added_since(before)
    assert namespaces == set() and interfaces == set()
