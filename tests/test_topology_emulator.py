"""Choosing the emulator: Mininet-WiFi only with both mn_wifi and mac80211_hwsim, else the wired fallback."""
from __future__ import annotations

import pytest

from topology.emulator import (MININET_WIFI, MININET_WIRED, EmulatorUnavailable, Probes, choose_emulator,
                               kernel_module_available)


def probes(**facts: bool) -> Probes:
    base = {"mn_wifi": True, "hwsim": True, "netem": True, "mininet": True, "root": True}
    base.update(facts)
    return Probes(**{name: (lambda value=value: value) for name, value in base.items()})


def test_wifi_runs_when_the_package_and_the_radios_are_there():
    choice = choose_emulator(probes())
    assert choice.name == MININET_WIFI and choice.netem and choice.limitations == ()


@pytest.mark.parametrize("missing, named", [("mn_wifi", "mn_wifi package"), ("hwsim", "mac80211_hwsim")])
def test_either_missing_piece_falls_back_to_wired_mininet_and_says_which(missing, named):
    choice = choose_emulator(probes(**{missing: False}))
    assert choice.name == MININET_WIRED
    assert named in choice.reason
    assert any("radio" in item for item in choice.limitations)


def test_without_netem_delay_and_loss_are_named_as_not_emulated():
    wired = choose_emulator(probes(hwsim=False, netem=False))
    wifi = choose_emulator(probes(netem=False))
    assert not wired.netem and any("sch_netem" in item for item in wired.limitations)
    assert wifi.name == MININET_WIFI and any("delay and loss" in item for item in wifi.limitations)
    assert "cannot emulate: link delay and loss" in wired.describe()


def test_wired_can_be_asked_for_where_wifi_would_run():
    choice = choose_emulator(probes(), want_wired=True)
    assert choice.name == MININET_WIRED and "asked" in choice.reason


def test_no_emulator_without_root_or_without_mininet():
    with pytest.raises(EmulatorUnavailable, match="root"):
        choose_emulator(probes(root=False))
    with pytest.raises(EmulatorUnavailable, match="make topology-deps"):
        choose_emulator(probes(hwsim=False, mininet=False))


def test_an_absent_kernel_module_is_reported_absent():
    assert kernel_module_available("fedrollup_no_such_module") is False


def test_the_cli_is_mininet_wifis_where_it_runs_and_mininets_on_the_fallback(monkeypatch):
    import sys
    import types

    from topology.paper_topology import open_cli

    opened = []
    for name in ("mn_wifi", "mn_wifi.cli", "mininet", "mininet.cli", "mininet.log"):
        module = types.ModuleType(name)
        module.CLI = lambda net, _name=name: opened.append((_name, net))
        module.setLogLevel = lambda level: None
        monkeypatch.setitem(sys.modules, name, module)
    open_cli("wifi-net", wifi=True)
    open_cli("wired-net", wifi=False)
    assert opened == [("mn_wifi.cli", "wifi-net"), ("mininet.cli", "wired-net")]
