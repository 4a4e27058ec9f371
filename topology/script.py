"""Write the edge network as a Mininet-WiFi script: `net = Mininet_wifi()`, access points, stations, positions,
ranges, a propagation model, links, optional mobility; `net.topology()` is the project's `EdgeTopology`.

A topology script (`topology/scripts/*.py`) reads like a Mininet-WiFi example, written against this thin
builder so every run path keeps working: `fedrollup topology --script FILE` loads the script, calls its
`network()` and runs the network on Mininet-WiFi where the machine has it (`topology.net._build_wifi` hands
positions, ranges, the propagation model and the mobility to Mininet-WiFi) and on the wired fallback
elsewhere, where `topology.radio` turns the same positions and propagation model into each station's link
rate (a station moved away from its AP gets a lower rate; a mobile station's rate is set again before every
federated round from where its track puts it then).

The shape is the protocol's, so the builder checks it: each station links to one access point, each access
point to one validator (its group), every validator to the one manager, the manager to the chain host.
Addresses and routes are the project's deterministic ones (`topology.topo`): a script places nodes, it does
not address them. Groups are numbered in the order the access points were added, and each group's stations
are its trainers in the order they were added.
"""
from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError
from topology.radio import radio_link, station_links
from topology.topo import EdgeTopology, Interface, Link, Node, Rates

HOST_ROLES = ("validator", "manager", "chain")
FIXED_NAMES = {"manager": "mgr", "chain": "chain"}


@dataclass
class ScriptNode:
    """What `addStation`/`addAccessPoint`/`addHost` return: a handle for `addLink` and `mobility`."""

    name: str
    role: str
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range_m: float = 0.0
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def _position(value) -> tuple[float, float, float]:
    """Mininet-WiFi's position: '10,20,0' (or a sequence); z defaults to 0."""
    parts = [float(p) for p in (value.split(",") if isinstance(value, str) else value)]
    if not 2 <= len(parts) <= 3:
        raise ConfigError(f"a position is 'x,y' or 'x,y,z' in metres, got {value!r}")
    return tuple(parts + [0.0] * (3 - len(parts)))


class Mininet_wifi:  # noqa: N801 - Mininet-WiFi's own spelling, so scripts read like its examples
    """The builder a topology script writes against; its methods are Mininet-WiFi's, with its arguments.

    The constructor takes the wired rates (Mbit/s): `radio_mbps` is a station's rate next to its AP (the
    802.11 mode's top rate; farther stations get their share, `topology.radio`), `ap_mbps` the AP-validator
    links, `backbone_mbps` validator-manager and manager-chain; delay and loss of the radio links need netem."""

    def __init__(self, radio_mbps: float = 20.0, ap_mbps: float = 100.0, backbone_mbps: float = 100.0,
                 radio_delay_ms: float = 0.0, radio_loss: float = 0.0) -> None:
        self.rates = Rates(radio_mbps, ap_mbps, backbone_mbps, radio_delay_ms, radio_loss)
        self.rates.check()
        self.nodes: dict[str, ScriptNode] = {}
        self.links: list[tuple[str, str, float | None]] = []
        self.propagation: dict = {"model": "logDistance", "exp": 3}
        self.mode = "g"
        self.tracks: dict[str, dict[str, list[float]]] = {}
        self.configured = False

    # -- nodes ------------------------------------------------------------------------------------------
    def _add(self, node: ScriptNode) -> ScriptNode:
        if node.name in self.nodes:
            raise ConfigError(f"{node.name} is added twice")
        self.nodes[node.name] = node
        return node

    def addAccessPoint(self, name: str, position="0,0,0", range: float = 50.0, mode: str = "g",  # noqa: A002,N802
                       channel=None, ssid: str | None = None) -> ScriptNode:
        """An access point: one validator group. `range` (m) is how far its stations may be; `mode` is the
        802.11 mode of every AP of the network; `channel` defaults to 1, 6, 11 in turn."""
        if self.by_role("access_point") and mode != self.mode:
            raise ConfigError("every access point of a network uses the same 802.11 mode")
        self.mode = mode
        channel = int(channel) if channel is not None else (1, 6, 11)[len(self.by_role("access_point")) % 3]
        return self._add(ScriptNode(name, "access_point", _position(position), float(range),
                                    {"channel": channel, "ssid": ssid}))

    def addStation(self, name: str, position="0,0,0", range: float = 50.0) -> ScriptNode:  # noqa: A002,N802
        """A trainer station at `position` (metres); it trains in the group of the AP it is linked to."""
        return self._add(ScriptNode(name, "station", _position(position), float(range)))

    def addHost(self, name: str, role: str, position="0,0,0") -> ScriptNode:  # noqa: N802
        """A wired host: `role` is validator, manager or chain (anvil and the rollup stack)."""
        if role not in HOST_ROLES:
            raise ConfigError(f"a host's role is one of {', '.join(HOST_ROLES)}, not {role!r}")
        if role in FIXED_NAMES and name != FIXED_NAMES[role]:
            raise ConfigError(f"the {role} host is named {FIXED_NAMES[role]!r} (the run's services look for it "
                              f"by that name), not {name!r}")
        return self._add(ScriptNode(name, role, _position(position)))

    def by_role(self, role: str) -> list[ScriptNode]:
        return [n for n in self.nodes.values() if n.role == role]

    # -- radio ------------------------------------------------------------------------------------------
    def setPropagationModel(self, model: str = "logDistance", exp: float = 3) -> None:  # noqa: N802
        """Mininet-WiFi's propagation model; the fallback computes rates for logDistance and friis."""
        self.propagation = {"model": model, "exp": exp}

    def configureNodes(self) -> None:  # noqa: N802
        """Mininet-WiFi configures the radios here; links to access points must come after it."""
        self.configured = True

    configureWifiNodes = configureNodes

    def mobility(self, node, event: str, time: float, position) -> None:
        """Mininet-WiFi's `net.mobility(sta, 'start', time=t0, position=p0)` and `(sta, 'stop', time=t1,
        position=p1)`: the station moves in a straight line from p0 to p1 between t0 and t1 seconds."""
        name = str(node)
        if name not in self.nodes or self.nodes[name].role != "station":
            raise ConfigError(f"only stations move: {name} is not a station of this network")
        if event not in ("start", "stop"):
            raise ConfigError(f"mobility events are 'start' and 'stop', not {event!r}")
        self.tracks.setdefault(name, {})[event] = [float(time), *_position(position)]

    def startMobility(self, time: float = 0, **_options) -> None:  # noqa: N802
        """Accepted for Mininet-WiFi's idiom; tracks are timed by their own `mobility` calls."""

    def stopMobility(self, time: float = 0, **_options) -> None:  # noqa: N802
        """Accepted for Mininet-WiFi's idiom; tracks are timed by their own `mobility` calls."""

    # -- links ------------------------------------------------------------------------------------------
    def addLink(self, node1, node2, bw: float | None = None) -> None:  # noqa: N802
        """A station to its access point (association: the rate comes from the propagation model, so no
        `bw`), an access point to its validator, a validator to the manager, the manager to the chain."""
        a, b = (self._named(n) for n in (node1, node2))
        if "station" in (a.role, b.role):
            if not self.configured:
                raise ConfigError("call net.configureNodes() before linking stations to access points")
            if bw is not None:
                raise ConfigError("a station's rate comes from its position and the propagation model, not bw")
        self.links.append((a.name, b.name, bw))

    def _named(self, node) -> ScriptNode:
        name = str(node)
        if name not in self.nodes:
            raise ConfigError(f"{name} was not added to the network")
        return self.nodes[name]

    def _peers(self, name: str, role: str) -> list[str]:
        return [b if a == name else a for a, b, _ in self.links if name in (a, b)
                and self.nodes[b if a == name else a].role == role]

    def _bw(self, a: str, b: str, default: float) -> float:
        return next((bw for x, y, bw in self.links if {x, y} == {a, b} and bw is not None), default)

    # -- the topology -----------------------------------------------------------------------------------
    def topology(self) -> EdgeTopology:
        """The `EdgeTopology` of the script: shape checked, addresses and routes assigned, each station's link
        rate from its distance to its AP under the propagation model."""
        aps, managers, chains = self.by_role("access_point"), self.by_role("manager"), self.by_role("chain")
        if len(managers) != 1 or len(chains) != 1:
            raise ConfigError("a network has one host with role='manager' and one with role='chain'")
        manager, chain = managers[0].name, chains[0].name
        for a, b, _ in self.links:
            kinds = {self.nodes[a].role, self.nodes[b].role}
            if kinds not in ({"station", "access_point"}, {"access_point", "validator"}, {"validator", "manager"},
                             {"manager", "chain"}):
                raise ConfigError(f"cannot link {a} ({self.nodes[a].role}) to {b} ({self.nodes[b].role}): "
                                  "stations link to an access point, an access point to its validator, "
                                  "validators to the manager, the manager to the chain")
        nodes: list[Node] = []
        links: list[Link] = []
        validators = []
        for g, ap in enumerate(aps, start=1):
            owners = self._peers(ap.name, "validator")
            stations = self._peers(ap.name, "station")
            if len(owners) != 1 or not stations:
                raise ConfigError(f"{ap.name} needs exactly one validator and at least one station linked to it")
            validator = self.nodes[owners[0]]
            if self._peers(validator.name, "manager") != [manager]:
                raise ConfigError(f"{validator.name} must be linked to the manager {manager}")
            validators.append(validator.name)
            nodes += [Node(ap.name, "access_point", g, ap.position, ap.range_m),
                      Node(validator.name, "validator", g, validator.position,
                           routes=(("default", f"10.1.{g}.1"),), forwarding=True)]
            links.append(Link(Interface(ap.name, ""), Interface(validator.name, f"10.0.{g}.1/24"), "ap",
                              self._bw(ap.name, validator.name, self.rates.ap_mbps)))
            for k, name in enumerate(stations):
                if len(self._peers(name, "access_point")) != 1:
                    raise ConfigError(f"{name} must be linked to exactly one access point")
                station = self.nodes[name]
                rate = radio_link(name, station.position, ap.name, ap.position, ap.range_m,
                                  ap.params["channel"], self.propagation, self.mode, self.rates.radio_mbps)
                nodes.append(Node(name, "station", g, station.position, station.range_m,
                                  routes=(("default", f"10.0.{g}.1"),)))
                links.append(Link(Interface(name, f"10.0.{g}.{10 + k}/24"), Interface(ap.name, ""), "radio",
                                  rate.mbps))
        orphans = [n.name for n in self.by_role("station") + self.by_role("validator")
                   if n.name not in {node.name for node in nodes}]
        if orphans:
            raise ConfigError(f"not linked into the network: {', '.join(orphans)}")
        if self._peers(manager, "chain") != [chain]:
            raise ConfigError(f"the manager {manager} must be linked to the chain host {chain}")
        nodes.append(Node(manager, "manager", 0, self.nodes[manager].position, forwarding=True,
                          routes=tuple((f"10.0.{g}.0/24", f"10.1.{g}.2") for g in range(1, len(aps) + 1))))
        nodes.append(Node(chain, "chain", 0, self.nodes[chain].position, routes=(("default", "10.2.0.1"),)))
        for g, validator in enumerate(validators, start=1):
            links.append(Link(Interface(manager, f"10.1.{g}.1/24"), Interface(validator, f"10.1.{g}.2/24"),
                              "backbone", self._bw(manager, validator, self.rates.backbone_mbps)))
        links.append(Link(Interface(manager, "10.2.0.1/24"), Interface(chain, "10.2.0.2/24"), "backbone",
                          self._bw(manager, chain, self.rates.backbone_mbps)))
        channels = [ap.params["channel"] for ap in aps]
        topo = EdgeTopology(nodes=nodes, links=links, rates=self.rates, propagation=dict(self.propagation),
                            wifi={"mode": self.mode, "channels": channels}, mobility=self._mobility())
        topo.check()
        for name, track in topo.mobility.items():  # both ends of a track must be in range: refused now, not mid-run
            station_links(topo, seconds=track[0][0])
            station_links(topo, seconds=track[1][0])
        return topo

    def _mobility(self) -> dict:
        tracks = {}
        for name, events in self.tracks.items():
            if set(events) != {"start", "stop"}:
                raise ConfigError(f"{name} needs both a mobility 'start' and a 'stop'")
            tracks[name] = [events["start"], events["stop"]]
        return tracks


def load_script(path: Path) -> EdgeTopology:
    """Run a topology script and return its network: the script defines `network()` returning a
    `Mininet_wifi` (or an `EdgeTopology`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"topology script {path} does not exist")
    namespace = runpy.run_path(str(path), run_name="fedrollup_topology_script")
    if not callable(namespace.get("network")):
        raise ConfigError(f"topology script {path} defines no network() function")
    built = namespace["network"]()
    if isinstance(built, Mininet_wifi):
        return built.topology()
    if isinstance(built, EdgeTopology):
        return built
    raise ConfigError(f"{path}: network() must return the Mininet_wifi it built")
