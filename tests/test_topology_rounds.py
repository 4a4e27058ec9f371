"""The pieces of the federated rounds over the emulated network that need no root: the run config handed to
`flwr run`, the FL configuration taken from the network, the manager's model exchange, the memory estimate."""
from __future__ import annotations

import argparse
import threading
import tomllib
from http.server import ThreadingHTTPServer

import numpy as np
import pytest

from flower_sim.config import SimulationConfig
from flower_sim.validator_app import fetch_global, post_result, weights_from_bytes, weights_to_bytes
from topology.federated_rounds import memory_estimate, simulation_config, write_edge_app
from topology.flower_services import run_config
from topology.manager_host import Exchange, make_handler
from topology.topo import paper_topology


def test_run_config_quotes_strings_and_keeps_numbers_and_booleans():
    text = run_config({"strategy": "mad", "rounds": 2, "lr": 0.05, "flag": True, "out": "/tmp/a b"})
    assert text == 'strategy="mad" rounds=2 lr=0.05 flag=true out="/tmp/a b"'


def test_the_app_declares_the_validator_serverapp_and_the_timed_trainer(tmp_path):
    defaults = {**SimulationConfig().to_run_config(), "validator-id": 0, "manager-url": "", "out": ""}
    app = tomllib.loads((write_edge_app(tmp_path, defaults) / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "flower_sim.validator_app:app",
                                 "clientapp": "flower_sim.station_app:app"}
    assert SimulationConfig.from_run_config(app["config"]) == SimulationConfig()


def test_the_network_decides_trainers_and_validators_the_options_the_rest():
    options = argparse.Namespace(rounds=3, stations=99, validators=9, strategy="krum", model="logreg", seed=7,
                                 out=None)
    cfg = simulation_config(paper_topology(stations=6, validators=2), options)
    assert (cfg.trainers, cfg.validators, cfg.rounds, cfg.strategy, cfg.model, cfg.seed) == (6, 2, 3, "krum",
                                                                                            "logreg", 7)
    with pytest.raises(Exception, match="evenly"):
        simulation_config(paper_topology(stations=5, validators=2), options)


def test_validators_wait_for_the_global_model_and_hand_theirs_back():
    exchange = Exchange()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(exchange))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)]
        threading.Timer(0.5, exchange.publish, (1, weights_to_bytes(weights))).start()  # published late
        got, seconds = fetch_global(url, 1, timeout_s=10)
        assert all(np.array_equal(a, b) for a, b in zip(got, weights)) and seconds < 5
        post_result(url, 1, 1, {"report": {"round": 1}, "timings": {}, "weights": ""})
        post_result(url, 1, 0, {"report": {"round": 1}, "timings": {}, "weights": ""})
        assert sorted(exchange.wait_all(1, 2, timeout_s=1)) == [0, 1]
        with pytest.raises(RuntimeError, match="only validators"):
            exchange.wait_all(2, 2, timeout_s=0.1)
        with pytest.raises(RuntimeError, match="round 9"):
            fetch_global(url, 9, timeout_s=0.3)
    finally:
        server.shutdown()
    assert [a.shape for a in weights_from_bytes(weights_to_bytes(weights))] == [(2, 3), (3,)]


def test_memory_scales_per_station_from_the_median_station():
    peaks = {"sta1": 300, "sta2": 500, "sta3": 400, "val1": 1000, "mgr": 2000}
    assert memory_estimate(peaks, 20) == {"stations": 20, "per_station_bytes": 400, "other_hosts_bytes": 3000,
                                          "estimated_bytes": 3000 + 20 * 400}
