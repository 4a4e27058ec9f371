"""The manager link over TLS (issue 16): a validator talks to an https:// manager only when its certificate verifies
against the validator's CA and names the address it dials, never falling back to plain HTTP; the service keeps
serving after a failed handshake or a client that says nothing; the signed-post rules still hold under TLS."""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import pytest

from common.errors import ConfigError
from fedrollup.cli import main
from flower_sim.config import SimulationConfig
from flower_sim.link_auth import HEADER
from flower_sim.manager_link import (Exchange, client_context, fetch_config, fetch_run_id, post_result, serve,
                                     server_context)
from test_manager_link_auth import ADDRESSES, KEYS, document
from topology.tls import make_certificates

CFG = SimulationConfig(rounds=1, trainers=4, validators=2, model="logreg").validate()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The manager's certificate for 127.0.0.1 from one CA, one from another CA, one naming another address."""
    folder = tmp_path_factory.mktemp("certs")
    return {"ours": make_certificates(folder / "ours", {"mgr": ["127.0.0.1"], "elsewhere": ["10.9.9.9"]}),
            "theirs": make_certificates(folder / "theirs", {"mgr": ["127.0.0.1"]})["mgr"]}


@pytest.fixture
def tls_manager(certs):
    mgr = certs["ours"]["mgr"]
    exchange = Exchange(CFG, validators=ADDRESSES)
    server = serve(exchange, "127.0.0.1", 0, server_context(mgr.cert, mgr.key))
    yield exchange, f"https://127.0.0.1:{server.server_address[1]}", mgr.ca
    server.shutdown()
    server.server_close()


def test_a_validator_trusting_the_managers_ca_fetches_and_posts_over_tls(tls_manager):
    exchange, url, ca = tls_manager
    assert fetch_config(url, timeout_s=5, ca=ca) == CFG
    upload = post_result(url, 1, 0, document(), KEYS[0], ca)
    assert upload["upload_bytes"] > 0 and 0 in exchange.results[1]


def test_under_tls_a_post_still_needs_the_validators_signature(tls_manager):
    """TLS says who the manager is; only the signature says who the validator is."""
    exchange, url, ca = tls_manager
    context = client_context(url, ca)
    for headers, code in (({}, 401), ({HEADER: "0x" + "00" * 65}, 401)):
        request = urllib.request.Request(f"{url}/validator/1/0", data=b"{}", headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5, context=context)
        assert refused.value.code == code
    with pytest.raises(RuntimeError, match="403"):  # validator 1's key posting as validator 0
        post_result(url, 1, 0, document(), KEYS[1], ca)
    assert exchange.results == {}


@pytest.mark.parametrize("whose, said", [("theirs", "did not verify against the CA in --manager-ca"),
                                         ("elsewhere", "IP address mismatch")])
def test_a_validator_refuses_a_certificate_of_another_ca_or_for_another_address(certs, whose, said, capfd):
    cert = certs["theirs"] if whose == "theirs" else certs["ours"]["elsewhere"]
    server = serve(Exchange(CFG, validators=ADDRESSES), "127.0.0.1", 0, server_context(cert.cert, cert.key))
    url = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        started = time.monotonic()
        with pytest.raises(ConfigError, match=said) as refused:
            fetch_config(url, timeout_s=30, ca=certs["ours"]["mgr"].ca)  # refused at once, not retried for 30 s
        assert time.monotonic() - started < 5 and "--manager-ca FILE" in str(refused.value)
        assert len(str(refused.value).splitlines()) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert "TLS handshake failed" in capfd.readouterr().err  # the manager says it in one line, no traceback


def test_an_https_manager_without_the_ca_is_refused_and_never_asked_over_plain_http(tls_manager):
    exchange, url, _ = tls_manager
    with pytest.raises(ConfigError, match="the system's CAs"):
        fetch_run_id(url)  # a self-made CA is no system CA
    exchange_was = dict(exchange.results)
    with pytest.raises(ConfigError, match="did not verify"):
        post_result(url, 1, 0, document(), KEYS[0], None)
    assert exchange.results == exchange_was == {}


def test_an_https_validator_dialing_a_plain_http_manager_says_so(certs):
    server = serve(Exchange(CFG, validators=ADDRESSES), "127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="no TLS with the manager"):
            fetch_config(f"https://127.0.0.1:{server.server_address[1]}", timeout_s=5, ca=certs["ours"]["mgr"].ca)
    finally:
        server.shutdown()
        server.server_close()


def test_the_service_keeps_serving_after_a_plain_http_client_and_a_silent_one(tls_manager, capfd):
    exchange, url, ca = tls_manager
    port = int(url.rsplit(":", 1)[1])
    silent = socket.create_connection(("127.0.0.1", port))  # connects, says nothing, stays open
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET /run HTTP/1.1\r\nHost: mgr\r\n\r\n")
            try:
                answer = plain.recv(4096)
            except ConnectionResetError:  # the manager drops it
                answer = b""
            assert exchange.run_id.encode() not in answer  # no answer in clear
        assert fetch_run_id(url, ca) == exchange.run_id  # while the silent client still holds its connection
        assert post_result(url, 1, 0, document(), KEYS[0], ca)["upload_bytes"] > 0
    finally:
        silent.close()
    err = capfd.readouterr().err
    assert err.count("TLS handshake failed (HTTP_REQUEST); a plain-HTTP client: it should dial https://") == 1
    assert "Traceback" not in err


def test_link_options_that_cannot_work_are_one_line_errors(certs, tmp_path):
    mgr = certs["ours"]["mgr"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="not https://"):
        client_context("http://m:8700", mgr.ca)
    with pytest.raises(ConfigError, match="no such file"):
        client_context("https://m:8700", tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="not a PEM CA certificate"):
        client_context("https://m:8700", garbage)
    with pytest.raises(ConfigError, match="--tls-key .* no such file"):
        server_context(mgr.cert, tmp_path / "missing.key")
    for cert, key in ((mgr.cert, garbage), (mgr.cert, certs["ours"]["elsewhere"].key)):  # unreadable, not its key
        with pytest.raises(ConfigError, match="not a PEM certificate and its unencrypted private key"):
            server_context(cert, key)


@pytest.mark.parametrize("argv, said", [
    (["manager", "--tls-cert", "mgr.pem"], "give both --tls-cert and --tls-key"),
    (["manager", "--tls-cert", "mgr.pem", "--tls-key", "mgr.key"], "--tls-cert mgr.pem: no such file"),
    (["validator", "--id", "0", "--manager", "http://m:8700", "--manager-ca", "ca.pem", "--insecure"],
     "is not https://"),
    (["validator", "--id", "0", "--manager", "https://m:8700", "--manager-ca", "ca.pem", "--insecure"],
     "--manager-ca ca.pem: no such file"),
])
def test_a_role_given_bad_link_tls_options_says_why_in_one_line(argv, said, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
