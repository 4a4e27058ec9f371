"""The Mininet-WiFi builder, checked against a recording stand-in of `mn_wifi`.

This machine (and CI) has no mac80211_hwsim, so Mininet-WiFi itself cannot run here. These tests check that
the builder asks Mininet-WiFi for the paper's network the way its API takes it (signatures as in
intrig-unicamp/mininet-wifi 2.7: `Mininet_wifi(link=wmediumd, wmediumd_mode=interference, ...)`,
`addAccessPoint(name, ssid=, mode=, channel=, position=, range=)`, `addStation(name, ip=, position=, range=)`,
`setPropagationModel(model=, exp=)`, `configureWifiNodes()`, `addLink(sta, ap)` for association and
`addLink(a, b, cls=TCLink, bw=)` for wired links).
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from topology import net as net_module
from topology.topo import Rates, paper_topology


class RecordingWifiNet:
    """Records every call the builder makes, in order."""

    def __init__(self, **options) -> None:
        self.options = options
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def named(self, method: str) -> list[tuple[tuple, dict]]:
        return [(args, kwargs) for name, args, kwargs in self.calls if name == method]


@pytest.fixture
def built(monkeypatch):
    """Build the 20-station paper topology with the stand-in modules; returns (topology, recorded net)."""
    wmediumd, interference, tclink = object(), object(), type("TCLink", (), {})
    modules = {
        "mn_wifi": types.ModuleType("mn_wifi"),
        "mn_wifi.net": types.SimpleNamespace(Mininet_wifi=RecordingWifiNet),
        "mn_wifi.link": types.SimpleNamespace(wmediumd=wmediumd),
        "mn_wifi.wmediumdConnector": types.SimpleNamespace(interference=interference),
        "mininet": types.ModuleType("mininet"),
        "mininet.link": types.SimpleNamespace(TCLink=tclink),
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    topo = paper_topology(stations=20, validators=2, rates=Rates())
    net = net_module._build_wifi(topo)
    return topo, net, dict(wmediumd=wmediumd, interference=interference, tclink=tclink)


def test_the_network_uses_wmediumd_interference_and_no_controller(built):
    _, net, parts = built
    assert net.options["link"] is parts["wmediumd"]
    assert net.options["wmediumd_mode"] is parts["interference"]
    assert net.options["controller"] is None and net.options["build"] is False


def test_one_access_point_per_validator_group_on_distinct_channels_with_position_and_range(built):
    topo, net, _ = built
    aps = net.named("addAccessPoint")
    assert len(aps) == 2
    assert {kw["ssid"] for _, kw in aps} == {"group1", "group2"}
    assert len({kw["channel"] for _, kw in aps}) == 2          # neighbouring groups do not share a channel
    for args, kw in aps:
        node = topo.node(args[0])
        assert kw["position"] == ",".join(f"{c:g}" for c in node.position) and kw["range"] == node.range_m
        assert kw["mode"] == "g" and kw["failMode"] == "standalone"


def test_every_station_is_placed_with_its_range_and_its_addressed_radio_interface(built):
    topo, net, _ = built
    stations = net.named("addStation")
    assert [args[0] for args, _ in stations] == [s.name for s in topo.stations]
    radio_ip = {link.a.node: link.a.ip for link in topo.links if link.kind == "radio"}
    for args, kw in stations:
        node = topo.node(args[0])
        assert kw["ip"] == radio_ip[node.name] and kw["ip"]
        assert kw["position"] and kw["range"] == node.range_m


def test_validators_manager_and_chain_are_wired_hosts_with_tclink_rates(built):
    topo, net, parts = built
    hosts = {args[0] for args, _ in net.named("addHost")}
    assert hosts == {n.name for n in topo.nodes if n.role not in ("station", "access_point")}
    assert {v.name for v in topo.validators} <= hosts and len(hosts) == len(topo.validators) + 2  # + manager, chain
    wired = [(args, kw) for args, kw in net.named("addLink") if kw.get("cls") is parts["tclink"]]
    expected = [link for link in topo.links if link.kind != "radio"]
    assert len(wired) == len(expected)
    assert sorted(kw["bw"] for _, kw in wired) == sorted(link.mbps for link in expected)


def test_stations_associate_after_the_radios_are_configured_and_the_propagation_model_is_set(built):
    topo, net, _ = built
    order = [name for name, _, _ in net.calls]
    configured = order.index("configureWifiNodes")
    assert order.index("setPropagationModel") < configured
    associations = [i for i, (name, _, kw) in enumerate(net.calls) if name == "addLink" and "cls" not in kw]
    assert len(associations) == len(topo.stations)
    assert min(associations) > configured
    assert net.named("setPropagationModel")[0][1] == topo.propagation


def test_a_scripts_mobile_station_moves_in_mininet_wifi_as_the_script_says(built):
    from topology.script import load_script

    # `built` leaves the stand-in modules in place for this build
    topo = load_script(Path(__file__).resolve().parent.parent / "topology" / "scripts" / "mobile_station.py")
    net = net_module._build_wifi(topo)
    assert [kw for _, kw in net.named("startMobility")] == [{"time": 0}]
    assert [(args[1], kw) for args, kw in net.named("mobility")] == [
        ("start", {"time": 0.0, "position": "105,100,0"}), ("stop", {"time": 90.0, "position": "155,100,0"}),
        ("start", {"time": 0.0, "position": "45,100,0"}), ("stop", {"time": 90.0, "position": "95,100,0"})]
    assert [kw for _, kw in net.named("stopMobility")] == [{"time": 90.0}]
    assert [kw["channel"] for _, kw in net.named("addAccessPoint")] == ["6"]
