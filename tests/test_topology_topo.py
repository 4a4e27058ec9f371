"""The paper's topology as data: groups, addresses, routes, positions and the topology file (no root needed)."""
from __future__ import annotations

import ipaddress
import json
import math

import pytest

from common.errors import ConfigError
from topology.topo import EdgeTopology, Rates, paper_topology


def test_paper_network_has_twenty_stations_in_two_groups_of_ten():
    topo = paper_topology()
    assert len(topo.stations) == 20 and len(topo.validators) == 2
    assert [len(topo.group(v.group)) for v in topo.validators] == [10, 10]
    assert [n.name for n in topo.by_role("access_point")] == ["ap1", "ap2"]
    assert {n.name for n in topo.by_role("manager")} == {"mgr"} and {n.name for n in topo.by_role("chain")} == {"chain"}
    # each validator is wired to its own AP and to the manager; the chain hangs off the manager
    wired = {(link.a.node, link.b.node) for link in topo.links if link.kind != "radio"}
    assert {("ap1", "val1"), ("ap2", "val2"), ("mgr", "val1"), ("mgr", "val2"), ("mgr", "chain")} <= wired


def test_uneven_split_gives_the_first_groups_the_remainder():
    topo = paper_topology(stations=7, validators=3)
    assert [len(topo.group(g)) for g in (1, 2, 3)] == [3, 2, 2]
    assert [s.name for s in topo.stations] == [f"sta{i}" for i in range(1, 8)]


def test_addresses_are_unique_deterministic_and_on_their_groups_subnet():
    topo = paper_topology(stations=20, validators=2)
    again = paper_topology(stations=20, validators=2)
    everything = [ip for n in topo.nodes for ip in topo.addresses(n.name)]
    assert len(everything) == len(set(everything))
    assert everything == [ip for n in again.nodes for ip in again.addresses(n.name)]
    assert topo.address("val1") == "10.0.1.1" and topo.address("val2") == "10.0.2.1"
    assert topo.address("sta1") == "10.0.1.10" and topo.address("sta11") == "10.0.2.10"
    assert topo.address("chain") == "10.2.0.2"
    for station in topo.stations:
        gateway = ipaddress.ip_interface(f"{topo.address(topo.validator_of(station.name).name)}/24").network
        assert ipaddress.ip_address(topo.address(station.name)) in gateway


def test_every_route_goes_via_a_neighbour_on_a_shared_link():
    topo = paper_topology(stations=6, validators=3)
    for node in topo.nodes:
        own = [ipaddress.ip_interface(i.ip) for link in topo.links for i in (link.a, link.b)
               if i.node == node.name and i.ip]
        for _, via in node.routes:
            assert any(ipaddress.ip_address(via) in iface.network for iface in own), (node.name, via)
    # the manager can reach every group's subnet
    assert {dst for dst, _ in topo.node("mgr").routes} == {"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"}


def test_partitions_number_stations_inside_their_group():
    topo = paper_topology(stations=5, validators=2)
    assert [topo.partition(s.name) for s in topo.stations] == [(0, 3), (1, 3), (2, 3), (0, 2), (1, 2)]


def test_stations_sit_in_their_own_aps_range_and_out_of_the_others():
    topo = paper_topology()
    aps = topo.by_role("access_point")
    for station in topo.stations:
        for ap in aps:
            distance = math.dist(station.position, ap.position)
            assert (distance <= ap.range_m) == (ap.group == station.group), (station.name, ap.name)


def test_topology_file_round_trip(tmp_path):
    topo = paper_topology(stations=6, validators=2, rates=Rates(radio_mbps=11, ap_mbps=54, backbone_mbps=1000))
    loaded = EdgeTopology.load(topo.save(tmp_path / "net" / "topology.json"))
    assert loaded.to_dict() == topo.to_dict()
    assert loaded.rates.radio_mbps == 11 and loaded.node("sta4").routes == (("default", "10.0.2.1"),)


def test_an_edited_topology_file_is_honoured(tmp_path):
    data = paper_topology(stations=4, validators=2).to_dict()
    for link in data["links"]:
        if link["kind"] == "radio":
            link["mbps"] = 5.5
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    assert {link.mbps for link in EdgeTopology.load(path).links if link.kind == "radio"} == {5.5}


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "format"),
    (lambda d: d["links"].append({**d["links"][0], "a": {"node": "ghost", "ip": ""}}), "unknown node 'ghost'"),
    (lambda d: d["nodes"].append(dict(d["nodes"][0])), "duplicate node names"),
    (lambda d: d["nodes"][0].update(role="satellite"), "unknown role"),
    (lambda d: d["rates"].update(radio_mbps=0), "radio-mbps"),
])
def test_bad_topology_files_are_refused_in_one_line(tmp_path, change, message):
    data = paper_topology(stations=4, validators=2).to_dict()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message):
        EdgeTopology.load(path)


def test_missing_or_non_json_file_is_a_usage_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        EdgeTopology.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not JSON"):
        EdgeTopology.load(tmp_path / "x.json")


@pytest.mark.parametrize("stations, validators", [(1, 2), (0, 1), (10, 0)])
def test_impossible_sizes_are_refused(stations, validators):
    with pytest.raises(ConfigError):
        paper_topology(stations=stations, validators=validators)


def test_describe_saves_a_file_that_topology_runs_accept(tmp_path, capsys):
    from fedrollup.cli import main

    path = tmp_path / "paper.json"
    assert main(["topology", "describe", "--stations", "6", "--validators", "3", "--save", str(path)]) == 0
    topo = EdgeTopology.load(path)
    assert [len(topo.group(g)) for g in (1, 2, 3)] == [2, 2, 2]
    assert main(["topology", "describe"]) == 0
    assert "group 2: ap2 <- 10 stations (sta11 10.0.2.10 .. sta20 10.0.2.19), validator val2 10.0.2.1" in \
        capsys.readouterr().out


def test_bad_sizes_on_the_command_line_are_one_line_errors(capsys):
    from fedrollup.cli import main

    assert main(["topology", "--stations", "1", "--no-cli"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "fedrollup topology: error: --stations must be between 2 (one per validator) and 400, got 1"
