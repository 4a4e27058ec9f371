"""A researcher's edit, for real (root, the wired fallback): one station of `topology/scripts/one_cell.py` moved
from 5 m to 55 m of its access point; the same run (seed, model, one round) before and after the edit."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.topology_fixtures import needs_mininet

pytestmark = [needs_mininet, pytest.mark.slow]
FEDROLLUP = str(Path(sys.executable).parent / "fedrollup")
SCRIPT = Path(__file__).resolve().parent.parent / "topology" / "scripts" / "one_cell.py"


def run_script(script: Path, out: Path) -> dict:
    """`fedrollup topology --script` for one federated round of the cnn, no chain; its round 1 in metrics.json.
    The cnn (0.4 MB each way) rather than logreg (31 kB): the transfer, not Flower's polling, must dominate the
    difference."""
    done = subprocess.run([FEDROLLUP, "topology", "--script", str(script), "--model", "cnn", "--rounds", "1",
                           "--seed", "3", "--no-chain", "--no-cli", "--echo-rounds", "0", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text())["rounds"][0]


def test_moving_a_station_away_lowers_its_rate_and_slows_its_round_not_its_bytes(tmp_path):
    near = tmp_path / "near.py"
    near.write_text(SCRIPT.read_text())
    far = tmp_path / "far.py"
    far.write_text(SCRIPT.read_text().replace("addStation('sta2', position='45,50,0'",
                                              "addStation('sta2', position='105,50,0'"))
    assert far.read_text() != near.read_text()
    before, after = run_script(near, tmp_path / "near"), run_script(far, tmp_path / "far")
    moved, still = after["radio_per_station"]["sta2"], before["radio_per_station"]["sta2"]
    assert (still["position"], still["distance_m"], still["phy_mbps"], still["mbps"]) == ([45, 50, 0], 5, 54, 20)
    assert (moved["position"], moved["distance_m"], moved["rssi_dbm"], moved["phy_mbps"]) == ([105, 50, 0], 55, -85, 1)
    assert moved["mbps"] == pytest.approx(20 / 54, abs=1e-3)
    assert after["radio_per_station"]["sta1"] == before["radio_per_station"]["sta1"]   # the other one did not move
    # the same model crosses the link: the bytes stay (Flower's polling adds a little with a longer round) ...
    assert after["bytes_per_station"]["sta2"] == pytest.approx(before["bytes_per_station"]["sta2"], rel=0.2)
    # ... at 1/54 of the rate: the round's network share grows by seconds
    # 8.3 s more on an idle machine (3.1 → 11.4 s), 2.5 s more under a full `make test` (5.8 → 8.2 s)
    assert after["timings"]["network_s"] > before["timings"]["network_s"] + 1.0, (before["timings"], after["timings"])
