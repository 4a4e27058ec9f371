"""QoS measured on the emulated network: the seeded load schedule, the command's errors and progress lines (no
root), and one short measurement on a real two-station cell (root): goodput within the link, RTT up under load."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fedrollup.cli import main
from tests.topology_fixtures import needs_mininet
from topology.emulator import choose_emulator
from topology.net import EmulatedNetwork
from topology.qos_measure import COLUMNS, DUTY, Measurement, describe_window, load_schedule, measure, write_csv
from topology.script import Mininet_wifi, load_script

STATIONS = [f"sta{k}" for k in range(1, 6)]
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "flower_sim" / "qos_sample" / "emulated.csv"


def test_the_same_seed_gives_the_same_load_and_another_seed_or_cell_another():
    schedule = load_schedule(STATIONS, 200, seed=7, cell=0)
    assert schedule == load_schedule(STATIONS, 200, seed=7, cell=0)
    assert schedule != load_schedule(STATIONS, 200, seed=8, cell=0)
    assert schedule != load_schedule(STATIONS, 200, seed=7, cell=1)
    assert load_schedule(STATIONS, 50, seed=7) == schedule[:50], "more windows extend the same schedule"


def test_each_station_is_on_and_off_in_runs_and_the_cells_load_varies():
    schedule = load_schedule(STATIONS, 2000, seed=3)
    assert all(active <= set(STATIONS) for active in schedule)
    for station in STATIONS:
        states = [station in active for active in schedule]
        assert DUTY[0] - 0.1 < sum(states) / len(states) < DUTY[1] + 0.1, station
        switches = sum(a != b for a, b in zip(states, states[1:]))
        assert switches < len(states) / 2, f"{station} flips nearly every window: no busy runs"
    duties = sorted(sum(s in active for active in schedule) for s in STATIONS)
    assert duties[-1] - duties[0] > 200, "stations differ in how busy they are"
    assert {len(active) for active in schedule} >= {1, 2, 3, 4}, "the number of senders varies over time"


@pytest.mark.parametrize("argv, message", [
    (["--windows", "0"], "--windows must be between 1 and 10000, got 0"),
    (["--window-seconds", "0.05"], "--window-seconds must be between 0.2 and 30, got 0.05"),
    (["--script", "no/such/script.py"], "topology script no/such/script.py does not exist"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main(["topology", "--measure-qos", str(tmp_path / "q.csv"), *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"fedrollup topology: error: {message}\n"
    assert not (tmp_path / "q.csv").exists()


def test_a_folder_is_not_a_csv(tmp_path, capsys):
    assert main(["topology", "--measure-qos", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"fedrollup topology: error: --measure-qos names a folder ({tmp_path}); "
                                       "give the CSV file to write\n")


def test_progress_line_says_load_goodput_and_rtt_per_cell_and_window():
    measured = [Measurement(0, "sta1", 6, 2, 2.14, 12.0), Measurement(0, "sta2", 6, 2, 6.31, 48.2),
                Measurement(0, "sta3", 6, 2, 0.0, 3.5)]
    assert describe_window(0, 6, 40, measured) == ("cell 1, window 7/40: 2 stations active, goodput 2.1–6.3 "
                                                   "Mbit/s, RTT 3.5–48.2 ms")
    idle = [Measurement(1, "sta4", 0, 0, 0.0, 0.05)]
    assert describe_window(1, 0, 3, idle) == "cell 2, window 1/3: no station active, RTT 0.1–0.1 ms"


def test_the_shipped_sample_is_what_its_readme_says_it_is():
    """Its senders are exactly those seed 42's schedule turns on in qos_cells.py (change the schedule: measure
    the sample again), each within its link; it stays small enough to ship."""
    assert SAMPLE.stat().st_size <= 200_000
    with open(SAMPLE) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    topo = load_script(ROOT / "topology" / "scripts" / "qos_cells.py")
    windows = 1 + max(int(r["window"]) for r in rows)
    assert len(rows) == windows * len(topo.stations)
    for validator in topo.validators:
        schedule = load_schedule([s.name for s in topo.group(validator.group)], windows, 42, validator.group - 1)
        for row in (r for r in rows if int(r["cell"]) == validator.group - 1):
            active = schedule[int(row["window"])]
            assert (float(row["goodput_mbps"]) > 0) == (row["station"] in active), row
            assert int(row["active_stations"]) == len(active), row
            assert float(row["goodput_mbps"]) <= float(row["link_mbps"]), row


def two_stations():
    """One cell: sta1 50 m from its AP (6.7 Mbit/s at path loss exponent 3.5), sta2 60 m (4.4 Mbit/s)."""
    net = Mininet_wifi(radio_mbps=20)
    ap1 = net.addAccessPoint("ap1", position="50,50,0", range=70)
    val1, mgr = net.addHost("val1", role="validator"), net.addHost("mgr", role="manager")
    chain = net.addHost("chain", role="chain")
    stations = [net.addStation("sta1", position="100,50,0", range=70),
                net.addStation("sta2", position="110,50,0", range=70)]
    net.setPropagationModel(model="logDistance", exp=3.5)
    net.configureNodes()
    for sta in stations:
        net.addLink(sta, ap1)
    for a, b in ((ap1, val1), (val1, mgr), (mgr, chain)):
        net.addLink(a, b)
    return net.topology()


@needs_mininet
@pytest.mark.slow
def test_measured_goodput_stays_within_the_link_and_rtt_grows_under_load(tmp_path):
    topo = two_stations()
    schedule = {1: [frozenset(), frozenset({"sta1", "sta2"}), frozenset({"sta2"})]}
    lines = []
    with EmulatedNetwork(topo, choose_emulator(want_wired=True), tmp_path / "run") as network:
        rows = measure(network, schedule, window_s=0.6, progress=lines.append)
    path = write_csv(rows, tmp_path / "qos.csv")
    with open(path) as f:
        read = list(csv.DictReader(f))
    assert tuple(read[0]) == COLUMNS and len(read) == 6 and len(lines) == 3
    by = {(r["station"], int(r["window"])): r for r in read}
    links = [float(by[s, 0]["link_mbps"]) for s in ("sta1", "sta2")]
    assert links == pytest.approx([20 * 18 / 54, 20 * 12 / 54], abs=1e-3)
    for (station, window), row in by.items():
        link, goodput = float(row["link_mbps"]), float(row["goodput_mbps"])
        active = station in schedule[1][window]
        assert int(row["active_stations"]) == len(schedule[1][window])
        if active:  # the link carries the load, and never more than its rate (+ HTB's 15 kB burst)
            assert 0.5 * link < goodput <= link * 1.02 + 0.2, row
        else:
            assert goodput == 0.0, row
    idle = {s: float(by[s, 0]["rtt_ms"]) for s in ("sta1", "sta2")}
    for station, window in (("sta1", 1), ("sta2", 1), ("sta2", 2)):
        loaded = float(by[station, window]["rtt_ms"])
        assert loaded > max(5 * idle[station], idle[station] + 10), (station, window, loaded, idle)
