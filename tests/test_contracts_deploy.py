"""Deploying the official Cartesi 2.2.0 contracts with CREATE2, and the deployment file other parts read."""
from __future__ import annotations

import pytest
from eth_abi import encode

from contracts_config import anvil as anvil_module
from contracts_config.deploy import ANVIL_KEY_0, CANONICAL_ADDRESSES, deploy
from contracts_config.deployment import load, save
from contracts_config.transactions import address_of, connect
from fedrollup.cli import main
from common.errors import ConfigError
from node_fixtures import running_anvil


@pytest.fixture(scope="module")
def chain():
    with running_anvil(block_time=None) as url:  # mine on every transaction
        yield url


def test_contracts_land_on_canonical_addresses_and_are_wired_together(chain):
    deployment = deploy(chain, ANVIL_KEY_0, epoch_length=7, template_hash="0x" + "ab" * 32)
    assert deployment.input_box == CANONICAL_ADDRESSES["InputBox"]
    assert deployment.ether_portal == CANONICAL_ADDRESSES["EtherPortal"]
    w3 = connect(chain)
    app = w3.eth.contract(address=deployment.application, abi=deployment.abi("Application"))
    authority = w3.eth.contract(address=deployment.consensus, abi=deployment.abi("Authority"))
    portal = w3.eth.contract(address=deployment.ether_portal, abi=deployment.abi("EtherPortal"))
    assert app.functions.getDataAvailability().call() == bytes.fromhex("b12c9ede") + encode(
        ["address"], [deployment.input_box])
    assert app.functions.getOutputsMerkleRootValidator().call() == deployment.consensus
    assert app.functions.getTemplateHash().call() == bytes.fromhex("ab" * 32)
    assert app.functions.owner().call() == address_of(ANVIL_KEY_0) == deployment.owner
    assert authority.functions.getEpochLength().call() == 7
    assert authority.functions.owner().call() == deployment.owner
    assert portal.functions.getInputBox().call() == deployment.input_box
    assert deployment.chain_id == 31337 and deployment.epoch_length == 7
    assert 0 < deployment.input_box_block <= deployment.deployment_block


def test_a_second_deploy_reuses_the_contracts_and_other_parameters_give_another_app(chain):
    first = deploy(chain, ANVIL_KEY_0, template_hash="0x" + "01" * 32)
    block = connect(chain).eth.block_number
    again = deploy(chain, ANVIL_KEY_0, template_hash="0x" + "01" * 32)
    assert again == first and connect(chain).eth.block_number == block  # nothing sent
    other = deploy(chain, ANVIL_KEY_0, template_hash="0x" + "02" * 32)
    assert other.application != first.application and other.input_box == first.input_box


def test_the_deployment_file_round_trips(chain, tmp_path, monkeypatch):
    deployment = deploy(chain, ANVIL_KEY_0, template_hash="0x" + "03" * 32)
    path = save(deployment, tmp_path / "d.json")
    assert load(path) == deployment
    monkeypatch.setenv("FEDROLLUP_DEPLOYMENT", str(path))
    assert load() == deployment
    assert any(entry.get("name") == "addInput" for entry in load().abi("InputBox"))


def test_chain_deploy_command_writes_the_file(chain, tmp_path, capsys):
    out = tmp_path / "deployed.json"
    code = main(["chain", "deploy", "--rpc", chain, "--key", ANVIL_KEY_0, "--epoch-length", "3",
                 "--template-hash", "0x" + "04" * 32, "--out", str(out)])
    assert code == 0 and load(out).epoch_length == 3
    assert CANONICAL_ADDRESSES["InputBox"] in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, message", [
    ({"template_hash": "0x1234"}, "template hash"),
    ({"epoch_length": 0}, "epoch length"),
])
def test_bad_parameters_are_one_line_errors(chain, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        deploy(chain, ANVIL_KEY_0, **kwargs)


def test_an_unreachable_chain_and_a_missing_anvil_are_one_line_errors(tmp_path, monkeypatch, capsys):
    port = anvil_module.free_port()
    assert main(["chain", "deploy", "--rpc", f"http://127.0.0.1:{port}", "--key", ANVIL_KEY_0]) == 2
    assert "no Ethereum JSON-RPC node answers" in capsys.readouterr().err
    monkeypatch.setattr(anvil_module, "ANVIL_BINARY", tmp_path / "missing" / "anvil")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="anvil is missing"):
        anvil_module.start_anvil(port)


def test_free_ports_come_from_below_the_ephemeral_range_and_are_free():
    """A node's port chosen from the kernel's ephemeral range could be taken by a client socket before the node binds
    it (it once failed a demo with "Address already in use"): ports come from below that range."""
    import socket  # local: only this test opens sockets itself
    low = int(anvil_module.EPHEMERAL_RANGE.read_text().split()[0])
    for _ in range(20):
        first = anvil_module.free_port(4)
        assert anvil_module.FREE_PORTS_FROM <= first and first + 3 < low
        for port in range(first, first + 4):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
