"""The pieces of the federated rounds over the emulated network that need no root: the run config handed to
`flwr run`, the FL configuration taken from the network, the manager's model exchange and the validators' timed
uploads, the network share of a round, the memory estimate, an audit that cannot run."""
from __future__ import annotations

import json
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from contracts_config.anvil import free_port
from dapp.eip712 import Domain
from flower_sim.manager_link import (Exchange, fetch_global, fetch_task, make_handler, post_result,
                                     weights_from_bytes, weights_to_bytes)
from flower_sim.signatures import RollupTask
from test_manager_link_auth import ADDRESSES, KEYS
from test_manager_link_auth import document as signed_round
from topology.federated_rounds import audit_run, memory_estimate, simulation_config
from flower_sim.deployment import run_config
from flower_sim.manager_role import round_timings
from topology.paper_topology import TopologyOptions
from topology.processes import HostProcess
from topology.topo import paper_topology


def test_run_config_quotes_strings_and_keeps_numbers_and_booleans():
    text = run_config({"strategy": "mad", "rounds": 2, "lr": 0.05, "flag": True, "out": "/tmp/a b"})
    assert text == 'strategy="mad" rounds=2 lr=0.05 flag=true out="/tmp/a b"'


def test_the_network_decides_trainers_and_validators_the_options_the_rest():
    options = TopologyOptions(rounds=3, stations=99, validators=9, strategy="krum", model="logreg", seed=7)
    cfg = simulation_config(paper_topology(stations=6, validators=2), options)
    assert (cfg.trainers, cfg.validators, cfg.rounds, cfg.strategy, cfg.model, cfg.seed) == (6, 2, 3, "krum",
                                                                                            "logreg", 7)
    with pytest.raises(Exception, match="evenly"):
        simulation_config(paper_topology(stations=5, validators=2), options)
    qos = simulation_config(paper_topology(stations=6, validators=2), TopologyOptions(task="qos"))
    assert (qos.task, qos.model) == ("qos", "qos")  # each station trains on its own QoS windows
    assert simulation_config(paper_topology(stations=6, validators=2), TopologyOptions()).model == "cnn"


def test_validators_wait_for_the_global_model_and_hand_theirs_back():
    exchange = Exchange(validators=ADDRESSES)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(exchange))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)]
        threading.Timer(0.5, exchange.publish, (1, weights_to_bytes(weights, b"FRQ1..."))).start()  # published late
        got, frq1, seconds = fetch_global(url, 1, timeout_s=10)
        assert all(np.array_equal(a, b) for a, b in zip(got, weights)) and seconds < 5
        assert frq1 == b"FRQ1..."  # the bytes a validator that keeps the global commits as they are
        document = signed_round(validator=1, model=b"m" * 30_000)
        upload = post_result(url, 1, 1, document, KEYS[1])
        post_result(url, 1, 0, signed_round(validator=0, model=b"m"), KEYS[0])
        assert sorted(exchange.wait_all(1, 2, timeout_s=1)) == [0, 1]
        # the validator timed its upload and told the manager: seconds and the request body it sent
        assert upload["upload_bytes"] == len(json.dumps(document)) and 0 < upload["upload_s"] < 5
        uploads = exchange.wait_uploads(1, 2, timeout_s=1)
        assert uploads[1] == upload and uploads[0]["upload_bytes"] < 2_000
        with pytest.raises(RuntimeError, match="only validators"):
            exchange.wait_all(2, 2, timeout_s=0.1)
        with pytest.raises(RuntimeError, match=r"only validators \[\] timed their upload"):
            exchange.wait_uploads(2, 2, timeout_s=0.1)
        with pytest.raises(RuntimeError, match="round 9"):
            fetch_global(url, 9, timeout_s=0.3)
        # the rollup task the stations sign for: none until the manager publishes it
        assert fetch_task(url) is None
        task = RollupTask(4, Domain(31337, "0x" + "cd" * 20))
        exchange.publish_task(task)
        assert fetch_task(url) == task
    finally:
        server.shutdown()
    assert [a.shape for a in weights_from_bytes(weights_to_bytes(weights))[0]] == [(2, 3), (3,)]
    assert weights_from_bytes(weights_to_bytes(weights))[1] == b""  # round 1: floats only


def test_memory_scales_per_station_from_the_median_station():
    peaks = {"sta1": 300, "sta2": 500, "sta3": 400, "val1": 1000, "mgr": 2000}
    assert memory_estimate(peaks, 20) == {"stations": 20, "per_station_bytes": 400, "other_hosts_bytes": 3000,
                                          "estimated_bytes": 3000 + 20 * 400}


def test_the_network_share_of_a_round_includes_the_validators_upload_to_the_manager():
    station = {"training_s": 5.0, "clientapp_start_s": 1.0, "station_transfer_s": 2.0, "fetch_global_s": 0.5}
    results = {0: {"timings": station}, 1: {"timings": {**station, "station_transfer_s": 1.0}}}
    uploads = {0: {"upload_s": 0.25, "upload_bytes": 560_000}, 1: {"upload_s": 3.0, "upload_bytes": 560_000}}
    reports = [SimpleNamespace(validation_s=0.4, aggregation_s=0.1)] * 2
    timings = round_timings(results, uploads, reports, averaging_s=0.0, scoring_s=0.2, chain_s=1.5, wall_s=12.0)
    assert timings["upload_s"] == 3.0
    assert timings["network_s"] == 1.0 + 0.5 + 3.0, "validator 1: fewer station seconds, a slow upload"


class LocalProcesses:
    """Runs a host's process right here (the audit needs no namespace to fail): the HostProcesses calls audit_run
    makes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def start(self, host: str, name: str, argv: list[str]) -> HostProcess:
        log = self.folder / f"{host}-{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return HostProcess(host, name, popen, log)

    def stop(self, process: HostProcess) -> None:
        process.popen.kill()


@pytest.mark.slow
def test_an_audit_that_cannot_reach_the_chain_is_a_failed_verdict_not_a_pass(tmp_path):
    port = free_port()
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps({
        "name": "gone", "chain_id": 31337, "rpc_url": f"http://127.0.0.1:{port}", "application_name": "fedrollup",
        "deployment_block": 4, "input_box_block": 1, "epoch_length": 10, "template_hash": "0x" + "00" * 32,
        "owner": "0x" + "11" * 20, "contracts": {"InputBox": "0x" + "22" * 20, "Application": "0x" + "33" * 20},
        "abis": {}}))
    chain = SimpleNamespace(node_url=f"http://127.0.0.1:{port}", l1_rpc_url=f"http://127.0.0.1:{port}",
                            deployment=deployment)
    result = audit_run(LocalProcesses(tmp_path), chain, tmp_path, timeout_s=60)
    assert result["passed"] is False
    assert result["verdict"].startswith("AUDIT FAILED: the audit could not run (")
    assert "\n" not in result["verdict"] and Path(result["log"]).exists()


def test_a_reply_lost_on_the_way_leaves_its_station_out_instead_of_stalling_the_round(capsys):
    from flower_sim.validator_app import TimedGrid

    class LossyGrid:  # delivers to every node, but node 3's reply never comes back
        def send_and_receive(self, messages, timeout=None):
            self.timeout = timeout
            return [SimpleNamespace(metadata=SimpleNamespace(src_node_id=m.metadata.dst_node_id),
                                    has_error=lambda: False,
                                    content={"metrics": {"train-s": 1.0, "startup-s": 0.5}})
                    for m in messages if m.metadata.dst_node_id != 3]

    inner = LossyGrid()
    grid = TimedGrid(inner, [1, 2, 3], reply_timeout_s=7.5)
    sent = [SimpleNamespace(metadata=SimpleNamespace(dst_node_id=n)) for n in (1, 2, 3)]
    replies = list(grid.send_and_receive(sent))
    assert inner.timeout == 7.5                       # Flower's own default would wait forever
    assert [r.metadata.src_node_id for r in replies] == [1, 2]
    said = capsys.readouterr().out
    assert "1 of 3 stations did not answer" in said and "(nodes 3)" in said
    assert grid.last["training_s"] == 1.0 and grid.last["clientapp_start_s"] == 0.5


def test_the_manager_announces_each_closed_round_in_a_line_the_driver_reads(tmp_path, capsys):
    from flower_sim.manager_link import ClosedRoundAnnouncer, closed_round
    from topology.processes import OutputLines

    log = tmp_path / "manager.log"
    log.write_text("manager closed round 1\n")  # an earlier run's line: not this run's
    lines = OutputLines(log)
    ClosedRoundAnnouncer().on_round_closed(SimpleNamespace(round=2))
    with log.open("a") as out:
        out.write(capsys.readouterr().out + "round 2 closed: global accuracy 0.9\nmanager closed rou")
    assert [closed_round(line) for line in lines.read()] == [2, None]
    with log.open("a") as out:
        out.write("nd 3\n")
    assert [closed_round(line) for line in lines.read()] == [3]
