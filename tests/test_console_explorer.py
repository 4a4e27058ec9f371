"""The auditors' explorer (`fedrollup console serve`) over a recorded history on anvil + the node + the backend:
its JSON, a server that survives a failing node, and the page in a real headless Chromium, honest and then with
a notice tampered in the node's database (the page marks it failed and the audit names it)."""
from __future__ import annotations

import contextlib
import json
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pytest
import requests

from console_fixtures import History, recorded_history, tampered_output
from dapp.schema import RewardPaid
from frontend_console.explorer_server import Explorer, make_server
from node_fixtures import wait_until
from rollups_client.l1 import L1
from rollups_client.node import NodeClient
from rollups_node.outputs import encode_notice

pytestmark = pytest.mark.slow
BROWSER = shutil.which("chromium") and shutil.which("chromedriver")
NEEDS_BROWSER = pytest.mark.skipif(not BROWSER, reason="needs Debian's chromium and chromium-driver "
                                                       "(`make test` as root installs them: make browser-deps)")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Iterator[History]:
    with recorded_history(tmp_path_factory.mktemp("explorer")) as recorded:
        yield recorded


@contextlib.contextmanager
def serving(history: History, node: NodeClient | None = None) -> Iterator[tuple[str, Explorer]]:
    l1 = L1(history.deployment.rpc_url, history.deployment)
    explorer = Explorer(node or history.node, l1, run_dir=history.run_dir, audit_timeout=60)
    server = make_server(explorer, "127.0.0.1", 0)
    explorer.start_audit()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", explorer
    finally:
        server.shutdown()
        server.server_close()


def rewarded(history: History) -> tuple[int, RewardPaid]:
    out = next(o for o in history.node.notices() if isinstance(o.message, RewardPaid))
    return out.index, out.message


def test_the_snapshot_holds_the_rounds_the_stakes_the_votes_and_every_output_validated(history):
    with serving(history) as (url, explorer):
        wait_until(lambda: explorer.audit["state"] != "running", 90, "the audit's verdict")
        assert explorer.audit["state"] == "passed", explorer.audit  # it waited for the last epoch to settle
        snap = requests.get(url + "/api/snapshot?refresh=1", timeout=60).json()
        assert requests.get(url + "/api/audit", timeout=10).json()["verdict"].startswith("AUDIT PASSED: ")
        assert requests.get(url + "/nothing", timeout=10).status_code == 404
    assert [(r["task"], r["round"]) for r in snap["rounds"]] == [(1, 1), (1, 2)]
    assert all(0 <= r["global_bps"] <= 10_000 and len(r["models"]) == 2 for r in snap["rounds"])
    assert {s["role"] for s in snap["stakes"]} == {"validator", "trainer"} and len(snap["stakes"]) == 6
    assert int(snap["rounds"][0]["trainer_paid"]["wei"]) > 0 and snap["tasks"][0]["state"] == "finished"
    assert snap["chain"]["consensus"] == "AUTHORITY" and snap["votes"]
    assert snap["outputs"] and {o["l1"] for o in snap["outputs"]} == {"validated"}
    json.dumps(snap)  # every value travels as JSON (wei as decimal strings)


def test_a_node_that_stops_answering_gets_an_error_page_not_a_dead_server(history):
    gone = NodeClient.at("http://127.0.0.1:9", history.deployment.application)  # nothing listens on port 9
    with serving(history, node=gone) as (url, _):
        failed = requests.get(url + "/api/snapshot", timeout=30)
        assert failed.status_code == 500 and "no rollups node answers" in failed.json()["error"]
        assert requests.get(url + "/", timeout=10).status_code == 200  # still serving


@NEEDS_BROWSER
def test_the_page_shows_the_rounds_and_a_tampered_notice_as_failing(history):
    from selenium.webdriver.common.by import By

    from frontend_console.screenshot import browser, wait_for_verdict

    index, paid = rewarded(history)
    page = browser()
    try:
        with serving(history) as (url, _):
            page.get(url)
            verdict = wait_for_verdict(page, 120)
            assert verdict.startswith("AUDIT PASSED: ") and "2 rounds" in verdict
            rounds = page.find_elements(By.CSS_SELECTOR, "#rounds-1 tbody tr")
            assert [r.get_attribute("data-round") for r in rounds] == ["1", "2"]
            states = [r.get_attribute("data-state") for r in page.find_elements(By.CSS_SELECTOR, "#outputs tbody tr")]
            assert states and set(states) == {"validated"}  # re-read once the audit saw every epoch settled
            assert page.find_elements(By.CSS_SELECTOR, "#task-1 svg")  # accuracy and stakes plotted
        forged = RewardPaid(paid.task_id, paid.round, paid.trainer, paid.amount * 2, paid.stake).encode()
        with tampered_output(history.db, index, encode_notice(forged)), serving(history) as (url, _):
            page.get(url)
            verdict = wait_for_verdict(page, 120)
            row = page.find_element(By.ID, f"output-{index}")
            assert row.get_attribute("data-state") == "failed" and "failed" in row.text
            assert [r.get_attribute("data-state") for r in page.find_elements(By.CSS_SELECTOR, "#outputs tbody tr")
                    ].count("failed") == 1
            assert verdict.startswith("AUDIT FAILED: ") and f"output {index} (RewardPaid" in verdict
            shot = history.run_dir / "explorer-tampered.png"
            page.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        page.quit()


@NEEDS_BROWSER
def test_console_serve_screenshot_lands_in_the_run_folder_with_the_verdict(history, tmp_path):
    import subprocess
    import sys

    deployment = tmp_path / "deployment.json"
    deployment.write_text(history.deployment.to_json())
    shot = history.run_dir / "explorer.png"
    done = subprocess.run([sys.executable, "-m", "fedrollup", "console", "serve", "--port", "0", "--node",
                           history.node_url, "--deployment", str(deployment), "--run-dir", str(history.run_dir),
                           "--screenshot", str(shot)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "AUDIT PASSED" in done.stdout and Path(shot).read_bytes()[:4] == b"\x89PNG"
