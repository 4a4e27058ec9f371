"""Turning an `EdgeTopology` into namespaces with Mininet-WiFi or wired Mininet, and always tearing it down.

`EmulatedNetwork` is a context manager: leaving the `with` block, an exception, Ctrl-C, SIGTERM or SIGHUP
all stop every process started on a host, stop Mininet, and then check (and force) that no process,
namespace or interface of the run is left. A new run first cleans what a crashed earlier run left behind.
"""
from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from common.errors import ConfigError
from topology import clean
from topology.emulator import MININET_WIFI, EmulatorChoice
from topology.radio import station_links
from topology.topo import EdgeTopology

PROXY_VARIABLES = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class NetworkError(RuntimeError):
    """The emulated network could not be built or did not behave (said in words, with the host)."""


def _quiet_mininet(verbose: bool) -> None:
    from mininet.log import setLogLevel  # optional: Mininet, only with `make topology-deps`
    setLogLevel("info" if verbose else "critical")  # tc's HTB quantum notes are not errors


def _build_wired(topo: EdgeTopology) -> Any:
    """Mininet with one LinuxBridge per AP, hosts for stations, and TCLink (HTB) bandwidth on every link."""
    from mininet.link import TCLink  # optional: Mininet, only with `make topology-deps`
    from mininet.net import Mininet  # optional: Mininet
    from mininet.node import Host  # optional: Mininet
    from mininet.nodelib import LinuxBridge  # optional: Mininet

    net = Mininet(controller=None, switch=LinuxBridge, host=Host, link=TCLink, build=False,
                  autoSetMacs=False, waitConnected=False)
    for node in topo.nodes:
        if node.role == "access_point":
            net.addSwitch(node.name, cls=LinuxBridge, stp=False, dpid=f"{topo.nodes.index(node) + 1:016x}")
        else:
            net.addHost(node.name, ip=None)
    for link in topo.links:
        shaping = {"bw": link.mbps}
        if link.kind == "radio" and topo.rates.radio_delay_ms:
            shaping["delay"] = f"{topo.rates.radio_delay_ms:g}ms"
        if link.kind == "radio" and topo.rates.radio_loss_pct:
            shaping["loss"] = topo.rates.radio_loss_pct
        net.addLink(link.a.node, link.b.node, params1={"ip": link.a.ip} if link.a.ip else {},
                    params2={"ip": link.b.ip} if link.b.ip else {}, **shaping)
    return net


def _build_wifi(topo: EdgeTopology) -> Any:
    """Mininet-WiFi as its users write it: APs and stations with positions, ranges and a propagation model
    (wmediumd interference), validators, manager and chain as wired hosts, TCLink bandwidth on wired links.
    The APs run standalone (no controller), like bridges. `radio_mbps` does not apply here: the radio's rate
    is the 802.11 mode's under the propagation model. A script's mobility becomes Mininet-WiFi's. It runs only
    where mac80211_hwsim exists; its calls are checked against Mininet-WiFi's API in
    tests/test_topology_wifi_builder.py."""
    from mininet.link import TCLink  # optional: Mininet, only with `make topology-deps`
    from mn_wifi.link import wmediumd  # optional: Mininet-WiFi, only where it is installed
    from mn_wifi.net import Mininet_wifi  # optional: Mininet-WiFi
    from mn_wifi.wmediumdConnector import interference  # optional: Mininet-WiFi

    net = Mininet_wifi(controller=None, link=wmediumd, wmediumd_mode=interference, build=False,
                       autoSetMacs=False, waitConnected=False)
    channels = topo.wifi.get("channels") or [1]
    radio_links = {link.a.node: link for link in topo.links if link.kind == "radio"}
    stations = {}
    for node in topo.nodes:
        position = ",".join(f"{c:g}" for c in node.position)
        if node.role == "access_point":
            net.addAccessPoint(node.name, ssid=f"group{node.group}", mode=topo.wifi.get("mode", "g"),
                               channel=str(channels[(node.group - 1) % len(channels)]), position=position,
                               range=node.range_m, failMode="standalone")
        elif node.role == "station":
            stations[node.name] = net.addStation(node.name, ip=radio_links[node.name].a.ip, position=position,
                                                 range=node.range_m)
        else:
            net.addHost(node.name, ip=None)
    net.setPropagationModel(**topo.propagation)
    net.configureWifiNodes()
    for link in topo.links:
        if link.kind == "radio":  # association; the rate comes from the 802.11 mode and the propagation model
            net.addLink(link.a.node, link.b.node)
            continue
        net.addLink(link.a.node, link.b.node, cls=TCLink, bw=link.mbps,
                    params1={"ip": link.a.ip} if link.a.ip else {}, params2={"ip": link.b.ip} if link.b.ip else {})
    if topo.mobility:  # Mininet-WiFi moves them itself; its clock starts with the network, not the rounds
        net.startMobility(time=0)
        for name, track in topo.mobility.items():
            for event, (seconds, *xyz) in zip(("start", "stop"), track):
                net.mobility(stations[name], event, time=seconds, position=",".join(f"{c:g}" for c in xyz))
        net.stopMobility(time=max(track[1][0] for track in topo.mobility.values()))
    return net


class EmulatedNetwork:
    """A built, running topology. Use as `with EmulatedNetwork(topo, choice, run_dir) as network:`.

    `network.host(name)` is the Mininet node of a station or host; `network.topo` the description."""

    def __init__(self, topo: EdgeTopology, choice: EmulatorChoice, run_dir: Path, verbose: bool = False) -> None:
        self.topo = topo
        self.choice = choice
        self.run_dir = Path(run_dir).resolve()
        self.run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.verbose = verbose
        self.net: Any = None
        self.build_s = 0.0
        self.stop_s = 0.0
        self._stopped = False
        self._previous_handlers: dict[int, Any] = {}
        self._on_stop: list = []

    # -- lifecycle ------------------------------------------------------------------------------------
    def __enter__(self) -> EmulatedNetwork:
        self._trap_signals()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        _quiet_mininet(self.verbose)
        stale = clean.clean(only_stale=True)
        if stale:
            print(f"removed what an earlier run left behind: {stale.describe()}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        saved = {key: os.environ.pop(key) for key in PROXY_VARIABLES if key in os.environ}
        os.environ[clean.MARK] = self.run_id  # inherited by every host shell and so every host process
        try:
            clean.write_state(self.run_id, [], self.run_dir)  # the owner is on record before anything exists
            builder = _build_wifi if self.choice.name == MININET_WIFI else _build_wired
            self.net = builder(self.topo)
            clean.write_state(self.run_id, self._root_interfaces(), self.run_dir)
            self.net.start()
            self._configure_routing()
        except Exception as err:
            raise NetworkError(f"building the {self.choice.name} network failed: {err}") from err
        finally:
            os.environ.pop(clean.MARK, None)
            os.environ.update(saved)
        self.build_s = time.monotonic() - started

    def on_stop(self, callback) -> None:
        """Run `callback()` first when the network stops (services stop before their hosts go)."""
        self._on_stop.append(callback)

    def stop(self) -> None:
        """Stop services, every process on every host, Mininet; then remove whatever is still there."""
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        try:  # a second Ctrl-C must not cut the teardown short
            previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        except ValueError:  # not the main thread
            previous_int = None
        try:
            for callback in reversed(self._on_stop):
                try:
                    callback()
                except Exception as err:  # a failing stop must not keep the network up
                    print(f"while stopping services: {err}")
            namespaces = {clean.netns_of(h.pid) for h in self._hosts() if h.pid}
            shells = self.shell_pids()
            strays = [pid for pid in clean.run_processes(self.run_id, namespaces) if pid not in shells]
            clean.kill_all(strays)
            if self.net is not None:
                self.net.stop()
        finally:
            rest = clean.leftovers(self.run_id)
            if rest:
                clean.clean(self.run_id)
            else:
                clean.state_path(self.run_id).unlink(missing_ok=True)
            self._restore_signals()
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)
            self.stop_s = time.monotonic() - started

    # -- access ---------------------------------------------------------------------------------------
    def host(self, name: str) -> Any:
        return self.net.get(name)

    def shell_pids(self) -> set[int]:
        """Pids of Mininet's own shells (one per node); everything else on the hosts was started on them."""
        return {n.pid for n in self._nodes() if getattr(n, "pid", None)}

    def _nodes(self) -> list:
        if self.net is None:
            return []
        return (list(self.net.hosts) + list(self.net.switches) + list(getattr(self.net, "stations", []))
                + list(getattr(self.net, "aps", [])))

    def _hosts(self) -> list:
        if self.net is None:
            return []
        return [n for n in list(self.net.hosts) + list(getattr(self.net, "stations", []))
                if getattr(n, "inNamespace", True)]

    def _root_interfaces(self) -> list[str]:
        """Bridges of the APs and their ports: what lives in the root namespace and outlives a crash."""
        names = set()
        for switch in list(self.net.switches) + list(getattr(self.net, "aps", [])):
            names.add(switch.name)
            names.update(i.name for i in switch.intfList() if i.name != "lo")
        return sorted(names)

    def _configure_routing(self) -> None:
        for node in self.topo.nodes:
            if node.role == "access_point":
                continue
            host = self.host(node.name)
            if node.forwarding:
                host.cmd("sysctl -qw net.ipv4.ip_forward=1")
            for destination, via in node.routes:
                out = host.cmd(f"ip route replace {destination} via {via}")
                if out.strip():
                    raise NetworkError(f"route {destination} via {via} on {node.name}: {out.strip()}")

    # -- signals --------------------------------------------------------------------------------------
    def _trap_signals(self) -> None:
        """SIGTERM and SIGHUP unwind like Ctrl-C, so the `with` block's teardown always runs."""
        def interrupt(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
        try:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._previous_handlers[sig] = signal.signal(sig, interrupt)
        except ValueError:  # not the main thread: the caller owns signals
            self._previous_handlers.clear()

    def _restore_signals(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    # -- measurements -----------------------------------------------------------------------------------
    def interface_bytes(self, name: str) -> dict[str, tuple[int, int]]:
        """{interface: (rx_bytes, tx_bytes)} inside a host's namespace (its own /proc/net/dev)."""
        counters = {}
        for line in self.host(name).cmd("cat /proc/net/dev").splitlines()[2:]:
            if ":" not in line:
                continue
            interface, data = line.split(":", 1)
            fields = data.split()
            if interface.strip() != "lo" and len(fields) >= 9:
                counters[interface.strip()] = (int(fields[0]), int(fields[8]))
        return counters

    def radio_links(self, seconds: float) -> dict[str, dict]:
        """Each station's radio link `seconds` after the federated rounds began, for metrics.json: position,
        distance to its AP, signal (dBm), PHY rate and `mbps`, the rate its link runs at. On the wired fallback
        a mobile station's link is first re-shaped (TCLink) to the rate its position then gives
        (`topology.radio`); on Mininet-WiFi the radio moves it, and `mbps` is the model's estimate."""
        wifi = self.choice.name == MININET_WIFI
        shaped = {link.a.node: link.mbps for link in self.topo.links if link.kind == "radio"}
        try:
            links = station_links(self.topo, seconds)
        except ConfigError as err:  # a hand-edited topology file with a station out of range: rates as given
            return {s.name: {"position": list(s.position), "mbps": shaped[s.name], "note": str(err)}
                    for s in self.topo.stations}
        report = {}
        for name, radio in links.items():
            if name in self.topo.mobility and not wifi and radio.mbps != shaped[name]:
                self._shape(name, radio.access_point, radio.mbps)
            rate = radio.mbps if name in self.topo.mobility or wifi else shaped[name]
            report[name] = {**radio.as_dict(), "mbps": round(rate, 4),
                            "emulated_by": "mininet-wifi" if wifi else "tclink"}
        return report

    def _shape(self, station: str, access_point: str, mbps: float) -> None:
        """Set the bandwidth of a station's radio link, both ways (TCLink/HTB), keeping delay and loss."""
        rates = self.topo.rates
        extra = {"delay": f"{rates.radio_delay_ms:g}ms"} if rates.radio_delay_ms else {}
        extra.update({"loss": rates.radio_loss_pct} if rates.radio_loss_pct else {})
        for link in self.net.linksBetween(self.host(station), self.host(access_point)):
            for intf in (link.intf1, link.intf2):
                intf.config(bw=mbps, **extra)
        self.topo.links = [replace(link, mbps=mbps) if link.kind == "radio" and link.a.node == station else link
                           for link in self.topo.links]  # the topology says what runs now

    def ping(self, source: str, destination: str, count: int = 1) -> bool:
        out = self.host(source).cmd(f"ping -c {count} -W 2 {self.topo.address(destination)}")
        return f"{count} received" in out

    def reachable(self, source: str, address: str, port: int, timeout_s: float = 1.0) -> bool:
        """A TCP connection from `source` to address:port succeeds (bash's /dev/tcp, nothing to install)."""
        out = self.host(source).cmd(f"timeout {timeout_s:g} bash -c '</dev/tcp/{address}/{port}' 2>/dev/null "
                                    "&& echo open")
        return "open" in out

