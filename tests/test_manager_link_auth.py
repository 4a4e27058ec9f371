"""The manager link takes a validator's round only from that validator's key, for this run, well formed: played as an
attacker on the network would (posting as a validator, replaying another run's post, sending junk), against the
real HTTP service. Every refusal is one line, keeps nothing, and the service goes on serving."""
from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from common import accounts
from dapp.qmodel import digest
from flower_sim.link_auth import HEADER, request_signer, sign_request
from flower_sim.manager_link import Exchange, fetch_run_id, make_handler, post_result, round_document
from flower_sim.records import ValidatorReport
from flower_sim.validator import ValidatorRound

KEYS = [accounts.private_key(accounts.validator_index(g)) for g in range(2)]
ADDRESSES = tuple(accounts.address(accounts.validator_index(g)) for g in range(2))
MODEL = b"FRQ1" + bytes(range(200))


def document(round_: int = 1, validator: int = 0, model: bytes = MODEL) -> dict:
    report = ValidatorReport(round=round_, validator_id=validator, strategy="mad", own_accuracy=0.9,
                             own_accuracy_bps=9000, contributions=(), model_file="m.frq", model_digest=digest(model),
                             training_s=1.0, validation_s=0.5, aggregation_s=0.1)
    return round_document(ValidatorRound(model, report), {"train_s": 1.5})


@pytest.fixture
def link():
    exchange = Exchange(validators=ADDRESSES)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(exchange))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield exchange, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def post(url: str, path: str, body: bytes, signature: str | None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json", **({HEADER: signature} if signature is not None else {})}
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def signed(key: str, run_id: str, path: str, body: bytes) -> str:
    return sign_request(key, run_id, "POST", path, body)


def test_a_validators_signed_round_is_taken_and_a_retry_of_it_is_harmless(link):
    exchange, url = link
    upload = post_result(url, 1, 0, document(), KEYS[0])
    assert post_result(url, 1, 0, document(), KEYS[0])["upload_bytes"] == upload["upload_bytes"]  # a retry
    assert exchange.wait_all(1, 1, timeout_s=1)[0] == document()
    assert set(exchange.wait_uploads(1, 1, timeout_s=1)[0]) == {"upload_s", "upload_bytes"}


@pytest.mark.parametrize("attack, status, words", [
    ("unsigned", 401, "unsigned"),
    ("garbage signature", 401, "not a signature"),
    ("another validator's key", 403, "not by validator 0"),
    ("an outsider's key", 403, "not by validator 0"),
    ("another run's signature", 403, "not by validator 0"),
    ("a validator the run does not have", 404, "no validator 7"),
    ("not JSON", 400, "not JSON"),
    ("not a round", 400, "not a validator's round"),
    ("another round's report", 400, "posted as validator 0's of round 1"),
    ("a model that is not the committed one", 400, "not the one whose digest"),
])
def test_a_forged_or_malformed_post_is_refused_in_one_line_and_keeps_nothing(link, attack, status, words):
    exchange, url = link
    path, run_id, body = "/validator/1/0", exchange.run_id, json.dumps(document()).encode()
    key, signature = KEYS[0], ""
    if attack == "another validator's key":
        key = KEYS[1]
    elif attack == "an outsider's key":
        key = accounts.private_key(99)
    elif attack == "another run's signature":
        run_id = "0" * 32  # a post captured in an earlier run, replayed
    elif attack == "a validator the run does not have":
        path = "/validator/1/7"
    elif attack == "not JSON":
        body = b"{round: 1"
    elif attack == "not a round":
        body = json.dumps({"report": {"round": 1}, "timings": {}, "model": ""}).encode()
    elif attack == "another round's report":
        body = json.dumps(document(round_=2)).encode()
    elif attack == "a model that is not the committed one":
        body = json.dumps(document() | {"model": base64.b64encode(MODEL[:-1] + b"!").decode()}).encode()
    if attack != "unsigned":
        signature = "0xdeadbeef" if attack == "garbage signature" else signed(key, run_id, path, body)
    code, answer = post(url, path, body, signature if attack != "unsigned" else None)
    assert (code, answer.count("\n")) == (status, 1) and words in answer, answer
    assert exchange.results == {} and exchange.uploads == {}
    assert fetch_run_id(url) == exchange.run_id  # still serving


def test_a_validator_cannot_change_its_round_once_posted_nor_post_junk_figures(link):
    exchange, url = link
    post_result(url, 1, 0, document(), KEYS[0])
    other = json.dumps(document() | {"timings": {"train_s": 99.0}}).encode()
    code, answer = post(url, "/validator/1/0", other, signed(KEYS[0], exchange.run_id, "/validator/1/0", other))
    assert code == 409 and "cannot change it" in answer
    assert exchange.results[1][0] == document()
    junk = json.dumps({"upload_s": -1, "upload_bytes": "many"}).encode()
    code, answer = post(url, "/upload/2/0", junk, signed(KEYS[0], exchange.run_id, "/upload/2/0", junk))
    assert code == 400 and "upload_s" in answer and 2 not in exchange.uploads


def test_a_post_too_large_or_to_an_unknown_path_is_refused_without_reading_it(link):
    exchange, url = link
    request = urllib.request.Request(url + "/validator/1/0", data=b"x", method="POST",
                                     headers={"Content-Length": str(10**9)})
    with pytest.raises(urllib.error.HTTPError, match="413"):
        urllib.request.urlopen(request, timeout=10)
    assert post(url, "/global/1", b"{}", "")[0] == 404
    assert exchange.results == {} and fetch_run_id(url) == exchange.run_id


def test_the_signature_names_its_signer_and_nothing_else_verifies():
    body = b'{"a": 1}'
    signature = sign_request(KEYS[0], "run", "POST", "/validator/1/0", body)
    assert request_signer(signature, "run", "POST", "/validator/1/0", body) == ADDRESSES[0].lower()
    for changed in [("run2", "/validator/1/0", body), ("run", "/validator/2/0", body), ("run", "/validator/1/0",
                                                                                        b'{"a": 2}')]:
        assert request_signer(signature, *changed[:1], "POST", *changed[1:]) != ADDRESSES[0].lower()
    with pytest.raises(ValueError, match="not a signature"):
        request_signer("0x1234", "run", "POST", "/", body)
