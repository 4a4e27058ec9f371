"""One command per role (`fedrollup manager`, `validator`, `trainer`): what each needs, the one-line errors for
what it cannot run, the pieces they share with the emulated network, and, for real, a validator's SuperLink
admitting its registered trainer and refusing a SuperNode whose key it never registered."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

from common.accounts import MNEMONIC_ENV
from common.errors import ConfigError
from fedrollup.cli import build_parser, main
from fedrollup.cli.manager import manager_options
from fedrollup.cli.simulate import simulation_config
from flower_sim.config import SimulationConfig
from flower_sim.deployment import READY_LINE, write_supernode_key
from flower_sim.manager_link import Exchange, fetch_config, make_handler
from flower_sim.validator_role import ValidatorOptions, write_validator_app
from topology.federated_rounds import manager_argv, option_argv
from topology.flower_services import MANAGER_HOST, MANAGER_PORT, FlowerServices, manager_link, manager_tls
from topology.topo import paper_topology
from topology.tls import make_certificates

FEDROLLUP = str(Path(sys.executable).parent / "fedrollup")


def help_of(command: str) -> str:
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices[command].format_help()


def test_each_role_command_says_what_it_needs_in_its_help():
    validator, trainer, manager = help_of("validator"), help_of("trainer"), help_of("manager")
    for option in ("--id", "--manager", "--tls-ca", "--tls-cert", "--tls-key", "--trainer-keys", "--mnemonic-file"):
        assert option in validator
    for option in ("--superlink", "--tls-ca", "--key", "--partition-id", "--num-partitions", "keygen"):
        assert option in trainer
    for option in ("--deployment", "--node", "--port", "--rounds", "--trainers", "--validators", "--mnemonic-file"):
        assert option in manager
    assert "--private-key" not in validator + trainer + manager, "a key is never given in clear on the command line"


@pytest.mark.parametrize("argv, said", [
    (["validator", "--id", "0", "--manager", "http://10.0.0.1:8700"], "give --tls-ca, --tls-cert and --tls-key"),
    (["validator", "--id", "0", "--manager", "10.0.0.1:8700", "--insecure"], "give the manager's URL"),
    (["validator", "--id", "0", "--manager", "http://m:8700", "--insecure", "--trainer-keys", "."],
     "--insecure runs without TLS"),
    (["trainer", "--superlink", "10.0.0.2:9100", "--insecure", "--partition-id", "4", "--num-partitions", "4"],
     "--partition-id 4 is not one of the --num-partitions 4"),
    (["trainer", "--superlink", "10.0.0.2", "--insecure", "--partition-id", "0", "--num-partitions", "4"],
     "host:port"),
    (["trainer", "--superlink", "10.0.0.2:9100", "--partition-id", "0", "--num-partitions", "4"], "give --tls-ca"),
    (["manager", "--deployment", "deployment.json"], "give both --deployment and --node"),
])
def test_a_role_command_that_cannot_run_says_why_in_one_line(argv, said, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_mnemonic_comes_from_a_file_and_a_bad_one_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(MNEMONIC_ENV, raising=False)
    short = tmp_path / "short"
    short.write_text("test test test\n")
    assert main(["trainer", "--mnemonic-file", str(short), "--superlink", "h:1", "--insecure", "--partition-id",
                 "0", "--num-partitions", "1"]) == 2
    assert "a BIP-39 mnemonic has 12 to 24 words, not 3" in capsys.readouterr().err
    assert MNEMONIC_ENV not in os.environ


def test_the_network_passes_the_manager_exactly_the_runs_configuration():
    cfg = SimulationConfig(rounds=3, trainers=6, validators=3, strategy="trust", model="logreg", seed=7,
                           dp="gaussian", payout="shapley", attack="labelflip", malicious=0.3).validate()
    args = build_parser().parse_args(["manager", *option_argv(cfg)])
    assert simulation_config(args) == cfg


def test_the_manager_command_hands_each_option_to_the_manager_role(tmp_path):
    deployment = tmp_path / "sepolia.json"
    deployment.write_text("{}")
    args = build_parser().parse_args(["manager", "--rounds", "3", "--deployment", str(deployment), "--node",
                                      "http://node:6751", "--rpc", "https://l1.example.org", "--round-timeout", "90",
                                      "--port", "8800", "--out", str(tmp_path / "run")])
    options = manager_options(args)
    assert (options.cfg.rounds, options.deployment, options.node_url, options.rpc_url, options.round_timeout_s,
            options.port, options.out) == (3, deployment, "http://node:6751", "https://l1.example.org", 90.0, 8800,
                                           tmp_path / "run")


def test_validators_fetch_the_runs_configuration_from_the_manager():
    cfg = SimulationConfig(rounds=2, trainers=4, model="logreg").validate()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Exchange(cfg)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert fetch_config(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=5) == cfg
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(ConfigError, match="did not answer within 0 s"):
        fetch_config(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=0)


def test_the_validator_app_declares_its_serverapp_and_the_timed_trainer_with_the_managers_configuration(tmp_path):
    """The run config carries the manager's whole configuration: the trainers' ClientApps build their model and
    data from it (`context.run_config`), not only the validator's ServerApp."""
    cfg = SimulationConfig(model="logreg", trainers=4, rounds=2).validate()
    values = {**cfg.to_run_config(), "validator-id": 1, "manager-url": "http://m:8700", "out": "/v/models"}
    app = tomllib.loads((write_validator_app(tmp_path, values) / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert app["components"] == {"serverapp": "flower_sim.validator_app:app",
                                 "clientapp": "flower_sim.station_app:app"}
    assert SimulationConfig.from_run_config(app["config"]) == cfg


def test_a_trainer_key_pair_is_one_flower_reads_and_its_private_half_stays_private(tmp_path, capsys):
    assert main(["trainer", "keygen", str(tmp_path / "sta1")]) == 0
    private, public = tmp_path / "sta1", tmp_path / "sta1.pub"
    key = load_ssh_private_key(private.read_bytes(), None)
    assert key.curve.name == "secp384r1" and oct(private.stat().st_mode & 0o777) == "0o600"
    assert load_ssh_public_key(public.read_bytes()).public_numbers() == key.public_key().public_numbers()
    assert main(["trainer", "keygen", str(private)]) == 2  # an existing key is kept
    assert "exists" in capsys.readouterr().err
    assert load_ssh_private_key(private.read_bytes(), None).private_numbers() == key.private_numbers()


def test_a_validator_advertises_its_bind_address_or_the_loopback():
    assert ValidatorOptions(host="10.0.1.1").address == "10.0.1.1:9100"
    assert ValidatorOptions(host="0.0.0.0", port=9200).address == "127.0.0.1:9200"
    assert ValidatorOptions(host="0.0.0.0", advertise="val1.example.org").address == "val1.example.org:9100"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_text(path: Path, text: str, process: subprocess.Popen, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        said = path.read_text(errors="replace") if path.exists() else ""
        if text in said:
            return said
        assert process.poll() is None, said[-2000:]
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {path} within {timeout_s} s")


@pytest.mark.slow
def test_a_validators_superlink_admits_its_registered_trainer_and_refuses_an_unregistered_one(tmp_path):
    certs = make_certificates(tmp_path / "certs", {"val1": ["127.0.0.1"]})["val1"]
    registered = tmp_path / "trainers-val1"
    registered.mkdir()
    write_supernode_key(tmp_path / "sta1").rename(registered / "sta1.pub")
    write_supernode_key(tmp_path / "stranger")
    port, manager = free_port(), f"https://127.0.0.1:{free_port()}"  # no manager: the validator waits for it
    logs = {name: tmp_path / f"{name}.log" for name in ("validator", "sta1", "stranger")}

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        with open(logs[name], "w") as log:
            return subprocess.Popen([FEDROLLUP, *argv], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)

    trainer = ["trainer", "--superlink", f"127.0.0.1:{port}", "--tls-ca", str(certs.ca), "--partition-id", "0",
               "--num-partitions", "1", "--clientapp-isolation", "subprocess"]
    validator = start("validator", ["validator", "--id", "0", "--manager", manager, "--manager-ca", str(certs.ca),
                                    "--host", "127.0.0.1",
                                    "--port", str(port), "--tls-ca", str(certs.ca), "--tls-cert", str(certs.cert),
                                    "--tls-key", str(certs.key), "--trainer-keys", str(registered),
                                    "--workdir", str(tmp_path / "validator")])
    started = []
    try:
        said = wait_for_text(logs["validator"], READY_LINE, validator, 60)
        assert "1 trainer key(s) registered, no other SuperNode admitted" in said and "not encrypted" not in said
        started += [start("sta1", [*trainer, "--key", str(tmp_path / "sta1"), "--runtime-port", str(free_port())]),
                    start("stranger", [*trainer, "--key", str(tmp_path / "stranger"),
                                       "--runtime-port", str(free_port())])]
        assert started[1].wait(timeout=90) != 0  # refused: Flower's exit code 305 (its low byte)
        stranger = logs["stranger"].read_text()
        assert "Failed to activate SuperNode" in stranger and "Traceback" not in stranger
        said = wait_for_text(logs["validator"], "[Fleet.ActivateNode] Activated", validator, 30)
        assert said.count("[Fleet.ActivateNode] Activated") == 1 and started[0].poll() is None
    finally:
        for process in [*started, validator]:
            process.terminate()
        for process in [*started, validator]:
            process.wait(timeout=30)


def test_the_network_serves_the_manager_link_over_https_to_validators_that_verify_it(tmp_path):
    """The driver's commands: with TLS the manager host's certificate (its addresses as SANs, the run CA) serves
    the link and every validator dials https:// with that CA; an --insecure network stays on http://."""
    topo = paper_topology(stations=4, validators=2)
    services = FlowerServices(certificates=make_certificates(tmp_path / "certs", {MANAGER_HOST: topo.addresses(
        MANAGER_HOST), "val1": topo.addresses("val1")}))
    cfg = SimulationConfig(rounds=1, trainers=4, validators=2, model="logreg").validate()
    argv = manager_argv(cfg, services, tmp_path / "run", topo.address(MANAGER_HOST), tmp_path / "f.json", 60, [])
    options = manager_options(build_parser().parse_args(argv[1:]))
    assert (options.tls_cert, options.tls_key) == (services.certificates[MANAGER_HOST].cert,
                                                   services.certificates[MANAGER_HOST].key)
    sans = x509.load_pem_x509_certificate(options.tls_cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert topo.address(MANAGER_HOST) in [str(ip) for ip in sans]  # what the validators dial
    url, verify = manager_link(services, topo.address(MANAGER_HOST))
    assert url == f"https://{topo.address(MANAGER_HOST)}:{MANAGER_PORT}"
    assert verify == ["--manager-ca", str(services.certificates[MANAGER_HOST].ca)]
    ValidatorOptions(manager=url, manager_ca=Path(verify[1]), insecure=True).checked()
    insecure = FlowerServices(insecure=True)
    assert manager_link(insecure, "10.0.0.1") == ("http://10.0.0.1:8700", []) and manager_tls(insecure) == []
