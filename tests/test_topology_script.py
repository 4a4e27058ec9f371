"""Topology scripts (no root): Mininet-WiFi's propagation model to a station's rate at its boundaries, and the
script builder producing the project's EdgeTopology (shape, addresses, rates from positions, mobility)."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from common.errors import ConfigError
from topology.radio import (NOISE_FLOOR_DBM, channel_ghz, phy_rate_mbps, position_at, radio_link,
                            reference_loss_db, rssi_dbm, station_links)
from topology.script import Mininet_wifi, load_script
from topology.topo import EdgeTopology, paper_topology

SCRIPTS = Path(__file__).resolve().parent.parent / "topology" / "scripts"
LOG3 = {"model": "logDistance", "exp": 3}


def test_log_distance_signal_is_mininet_wifis_formula():
    assert round(reference_loss_db(2.412), 2) == 40.1 and channel_ghz(6) == pytest.approx(2.437)
    # 14 dBm + 2 x 5 dBi - (int(40.1) + int(30 log10 20)) = 24 - (40 + 39)
    assert rssi_dbm(20, LOG3) == -55
    assert rssi_dbm(1, LOG3) == -16 and rssi_dbm(0, LOG3) == rssi_dbm(0.1, LOG3) == 14
    assert rssi_dbm(20, {"model": "logDistance", "exp": 4}) == 24 - (40 + 52)
    assert rssi_dbm(20, {"model": "friis"}) == rssi_dbm(20, {"model": "logDistance", "exp": 2})
    with pytest.raises(ConfigError, match="ITU"):
        rssi_dbm(20, {"model": "ITU"})


@pytest.mark.parametrize("rssi, rate", [
    (-20, 54.0), (-65, 54.0), (-66, 48.0), (-65.5, 48.0), (-70, 36.0), (-74, 24.0), (-77, 18.0), (-79, 12.0),
    (-81, 9.0), (-82, 6.0), (-82.5, 1.0), (-91, 1.0), (-91.5, None), (-120, None)])
def test_the_rate_is_the_fastest_whose_sensitivity_the_signal_meets(rssi, rate):
    assert phy_rate_mbps(rssi, "g") == rate


def test_other_modes_and_the_noise_floor():
    assert phy_rate_mbps(-76, "b") == 11.0 and phy_rate_mbps(-77, "b") == 1.0
    assert phy_rate_mbps(-65, "a") == 54.0 and NOISE_FLOOR_DBM == -91
    with pytest.raises(ConfigError, match="modes"):
        phy_rate_mbps(-50, "ax")


def test_a_station_gets_its_share_of_the_top_rate_in_range_and_no_link_out_of_it():
    link = radio_link("sta1", (155.0, 50.0, 0.0), "ap1", (100.0, 50.0, 0.0), 60, 1, {"exp": 4}, "g", 20)
    assert (link.distance_m, link.rssi_dbm, link.phy_mbps) == (55.0, -85, 1.0)
    assert link.mbps == pytest.approx(20 / 54)
    at_range = radio_link("sta1", (160.0, 50.0, 0.0), "ap1", (100.0, 50.0, 0.0), 60, 1, {"exp": 3}, "g", 20)
    assert (at_range.distance_m, at_range.rssi_dbm, at_range.phy_mbps) == (60, -69, 36.0)  # at the range: in
    with pytest.raises(ConfigError, match=r"sta1 at 160.5,50,0 is 60.5 m from ap1, outside its range \(60 m\)"):
        radio_link("sta1", (160.5, 50.0, 0.0), "ap1", (100.0, 50.0, 0.0), 60, 1, {"exp": 3}, "g", 20)
    with pytest.raises(ConfigError, match="under the noise floor"):
        radio_link("sta1", (300.0, 50.0, 0.0), "ap1", (100.0, 50.0, 0.0), 500, 1, {"exp": 4}, "g", 20)


def test_a_mobile_station_moves_in_a_straight_line_between_its_start_and_stop():
    track = [[10.0, 0.0, 0.0, 0.0], [30.0, 100.0, 50.0, 0.0]]
    assert position_at(track, 0) == (0.0, 0.0, 0.0) and position_at(track, 10) == (0.0, 0.0, 0.0)
    assert position_at(track, 20) == (50.0, 25.0, 0.0)
    assert position_at(track, 30) == position_at(track, 999) == (100.0, 50.0, 0.0)


def tiny(far: bool = False) -> Mininet_wifi:
    """`one_cell.py`'s builder, before `topology()`: sta1 near ap1, sta2 near it or (edited) far out."""
    net = runpy.run_path(str(SCRIPTS / "one_cell.py"))["network"]()
    if far:
        net.nodes["sta2"].position = (105.0, 50.0, 0.0)
    return net


def test_the_builder_gives_the_projects_topology_with_rates_from_positions():
    near, far = tiny().topology(), tiny(far=True).topology()
    assert [n.name for n in near.nodes] == ["ap1", "val1", "sta1", "sta2", "mgr", "chain"]
    assert near.address("sta2") == "10.0.1.11" and near.address("val1") == "10.0.1.1"
    assert near.node("mgr").routes == (("10.0.1.0/24", "10.1.1.2"),) and near.address("chain") == "10.2.0.2"
    assert near.propagation == {"model": "logDistance", "exp": 4} and near.wifi == {"mode": "g", "channels": [1]}
    near_rates, far_rates = ({link.a.node: link.mbps for link in topo.links if link.kind == "radio"}
                             for topo in (near, far))
    assert near_rates == {"sta1": 20.0, "sta2": 20.0}
    assert far_rates["sta1"] == 20.0 and far_rates["sta2"] == pytest.approx(20 / 54)
    assert far.node("sta2").position == (105.0, 50.0, 0.0)
    assert {link.kind for link in far.links} == {"radio", "ap", "backbone"}
    assert EdgeTopology.from_dict(far.to_dict()).to_dict() == far.to_dict()


def test_the_paper_script_is_the_paper_topology():
    script, paper = load_script(SCRIPTS / "paper_network.py"), paper_topology()
    assert script.to_dict() == {**paper.to_dict(), "wifi": {"mode": "g", "channels": [1, 6]}}
    assert {name: link.mbps for name, link in station_links(paper).items()} == \
        {link.a.node: link.mbps for link in paper.links if link.kind == "radio"}


@pytest.mark.parametrize("script, stations, slowest", [
    ("more_stations.py", 24, 36.0), ("mobile_station.py", 3, 1.0), ("weak_cell.py", 4, 1.0),
    ("one_cell.py", 2, 54.0)])
def test_the_variants_build(script, stations, slowest):
    topo = load_script(SCRIPTS / script)
    assert len(topo.stations) == stations
    assert min(link.phy_mbps for link in station_links(topo).values()) == slowest


def test_the_mobile_station_slows_down_as_it_walks_away():
    topo = load_script(SCRIPTS / "mobile_station.py")
    assert list(topo.mobility) == ["sta2", "sta3"]
    rates = [station_links(topo, seconds)["sta2"].phy_mbps for seconds in (0, 30, 60, 90, 200)]
    assert rates == [54.0, 36.0, 12.0, 1.0, 1.0]
    assert station_links(topo, 90)["sta3"].phy_mbps == 54.0 and station_links(topo, 0)["sta3"].phy_mbps == 1.0


@pytest.mark.parametrize("edit, message", [
    (lambda net: net.addLink("sta1", "val1"), "cannot link sta1"),
    (lambda net: net.addStation("sta3", position="50,50,0"), "not linked into the network: sta3"),
    (lambda net: net.addLink("sta1", "ap1", bw=54), "not bw"),
    (lambda net: net.addHost("x", role="router"), "role"),
    (lambda net: net.addHost("manager2", role="manager"), "named 'mgr'"),
    (lambda net: net.addStation("sta1"), "added twice"),
    (lambda net: net.mobility("sta2", "start", time=0, position="50,50,0"), "both a mobility 'start' and a 'stop'"),
    (lambda net: (net.mobility("sta2", "start", time=0, position="50,50,0"),
                  net.mobility("sta2", "stop", time=9, position="150,50,0")), "outside its range"),
])
def test_scripts_that_do_not_fit_the_protocols_network_are_refused(edit, message):
    net = tiny()
    with pytest.raises(ConfigError, match=message):
        edit(net)
        net.topology()


def test_stations_link_after_configure_nodes_and_a_script_needs_network(tmp_path):
    net = Mininet_wifi()
    net.addAccessPoint("ap1")
    net.addStation("sta1")
    with pytest.raises(ConfigError, match="configureNodes"):
        net.addLink("sta1", "ap1")
    (tmp_path / "s.py").write_text("x = 1\n")
    with pytest.raises(ConfigError, match="no network"):
        load_script(tmp_path / "s.py")


def test_describe_prints_each_stations_rate(capsys):
    from fedrollup.cli import main

    assert main(["topology", "describe", "--script", str(SCRIPTS / "weak_cell.py")]) == 0
    out = capsys.readouterr().out
    assert "0.3704 Mbit/s (1 Mb/s PHY): sta4 (55 m, -85 dBm)" in out and "exp 4" in out
