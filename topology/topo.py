"""The paper's edge network as plain data (like Mininet's `Topo`): nodes, links, addresses, positions.

Nothing here needs root. `paper_topology()` builds the description; `EdgeTopology.save/load` write and read
it as a JSON topology file; `topology.net` turns it into namespaces.

Shape (seed 003, §5): N trainer stations split evenly across V access points, one per validator group; each
validator host is wired to its group's AP; both validators are wired to the manager host; the chain host
(anvil + rollups node + backend) hangs off the manager. Addressing is routed and deterministic:

  group g (1..V)      10.0.g.0/24   validator g = 10.0.g.1 (the stations' gateway), station k of g = 10.0.g.(10+k)
  validator g - mgr   10.1.g.0/24   manager side 10.1.g.1, validator side 10.1.g.2
  manager - chain     10.2.0.0/24   manager side 10.2.0.1, chain side 10.2.0.2

Validators and the manager forward IP, so a station reaches the chain host through its validator and the
manager, as an edge cell reaches the core.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.errors import ConfigError

FORMAT = "fedrollup-topology/1"
ROLES = ("station", "access_point", "validator", "manager", "chain")


@dataclass(frozen=True)
class Rates:
    """Link rates in Mbit/s (Mininet's TCLink `bw`), and delay/loss that need netem or wmediumd."""

    radio_mbps: float = 20.0      # a station's radio link to its AP (802.11g goodput is about 20 Mbit/s)
    ap_mbps: float = 100.0        # the wired link between an AP and its validator
    backbone_mbps: float = 100.0  # validator - manager and manager - chain
    radio_delay_ms: float = 0.0   # applied only where netem (or Mininet-WiFi's wmediumd) is available
    radio_loss_pct: float = 0.0

    def check(self) -> None:
        for name in ("radio_mbps", "ap_mbps", "backbone_mbps"):
            value = getattr(self, name)
            if not 0 < value <= 1000:
                raise ConfigError(f"{name.replace('_', '-')} must be in (0, 1000] Mbit/s, got {value:g}")
        if self.radio_delay_ms < 0 or not 0 <= self.radio_loss_pct < 100:
            raise ConfigError("radio delay must be >= 0 ms and loss in [0, 100) %")


@dataclass(frozen=True)
class Interface:
    """One end of a link on a node: its address (CIDR) on that link's subnet."""

    node: str
    ip: str          # "10.0.1.1/24"; empty on an access point (a bridge has no address)


@dataclass(frozen=True)
class Link:
    """A link between two nodes; `kind` is radio (station-AP), ap (AP-validator) or backbone."""

    a: Interface
    b: Interface
    kind: str
    mbps: float


@dataclass(frozen=True)
class Node:
    """A station, access point or host. `position` (metres) and `range` are Mininet-WiFi's; `group` is the
    validator group (1..V) of stations, APs and validators, 0 for the manager and the chain host."""

    name: str
    role: str
    group: int = 0
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range_m: float = 0.0
    routes: tuple[tuple[str, str], ...] = ()   # (destination CIDR or "default", via) on hosts
    forwarding: bool = False                   # routes between its links (validators, manager)


@dataclass
class EdgeTopology:
    """The whole network: nodes in a stable order, links, rates and the Mininet-WiFi radio settings."""

    nodes: list[Node]
    links: list[Link]
    rates: Rates = field(default_factory=Rates)
    propagation: dict = field(default_factory=lambda: {"model": "logDistance", "exp": 3})
    wifi: dict = field(default_factory=lambda: {"mode": "g", "channels": [1, 6, 11]})
    # a mobile station's track, Mininet-WiFi's mobility(start, stop): {station: [[t0, x, y, z], [t1, x, y, z]]}
    mobility: dict = field(default_factory=dict)

    # -- lookups -------------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def by_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    @property
    def stations(self) -> list[Node]:
        return self.by_role("station")

    @property
    def validators(self) -> list[Node]:
        return self.by_role("validator")

    def group(self, g: int) -> list[Node]:
        """The stations of validator group `g` (1-based), in order."""
        return [n for n in self.stations if n.group == g]

    def validator_of(self, station: str) -> Node:
        g = self.node(station).group
        return next(v for v in self.validators if v.group == g)

    def addresses(self, name: str) -> list[str]:
        """Every address of a node, without prefix length, in link order."""
        return [i.ip.split("/")[0] for link in self.links for i in (link.a, link.b) if i.node == name and i.ip]

    def address(self, name: str) -> str:
        """The node's main address: the one its clients use (a validator's is its stations' gateway)."""
        found = self.addresses(name)
        if not found:
            raise KeyError(f"{name} has no address")
        return found[0]

    def partition(self, station: str) -> tuple[int, int]:
        """(partition-id, num-partitions) of a station inside its group, as SuperNode's --node-config wants."""
        members = self.group(self.node(station).group)
        return [n.name for n in members].index(station), len(members)

    # -- file -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "rates": asdict(self.rates), "propagation": self.propagation,
                "wifi": self.wifi, "mobility": self.mobility, "nodes": [asdict(n) for n in self.nodes],
                "links": [asdict(link) for link in self.links]}

    @classmethod
    def from_dict(cls, data: dict) -> EdgeTopology:
        if data.get("format") != FORMAT:
            raise ConfigError(f"not a topology file of format {FORMAT!r} (found {data.get('format')!r})")
        try:
            nodes = [Node(**{**n, "position": tuple(n["position"]),
                             "routes": tuple(tuple(r) for r in n.get("routes", ()))}) for n in data["nodes"]]
            links = [Link(a=Interface(**k["a"]), b=Interface(**k["b"]), kind=k["kind"], mbps=k["mbps"])
                     for k in data["links"]]
            topo = cls(nodes=nodes, links=links, rates=Rates(**data.get("rates", {})),
                       propagation=data.get("propagation", {}), wifi=data.get("wifi", {}),
                       mobility=data.get("mobility", {}))
        except (KeyError, TypeError) as err:
            raise ConfigError(f"malformed topology file: {err}") from None
        topo.check()
        return topo

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> EdgeTopology:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"topology file {path} does not exist") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"topology file {path} is not JSON: {err}") from None
        return cls.from_dict(data)

    def check(self) -> None:
        """Reject what Mininet would choke on later: unknown roles, duplicate names, dangling links."""
        self.rates.check()
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ConfigError("topology has duplicate node names")
        for node in self.nodes:
            if node.role not in ROLES:
                raise ConfigError(f"node {node.name} has unknown role {node.role!r}")
            if len(node.name) > 10:  # interface names <node>-ethN must fit Linux's 15 characters
                raise ConfigError(f"node name {node.name!r} is longer than 10 characters")
        for link in self.links:
            for end in (link.a, link.b):
                if end.node not in names:
                    raise ConfigError(f"a link names unknown node {end.node!r}")
        if not self.validators or not self.stations:
            raise ConfigError("a topology needs at least one validator and one station")
        if any(not self.group(v.group) for v in self.validators):
            raise ConfigError("every validator group needs at least one station")
        for name, track in self.mobility.items():
            if name not in names or self.node(name).role != "station":
                raise ConfigError(f"mobility names {name!r}, which is not a station")
            if len(track) != 2 or any(len(point) != 4 for point in track) or track[1][0] < track[0][0]:
                raise ConfigError(f"{name}'s mobility must be [[t0, x, y, z], [t1, x, y, z]] with t1 >= t0")


def paper_topology(stations: int = 20, validators: int = 2, rates: Rates | None = None,
                   spacing_m: float = 100.0, radius_m: float = 20.0, range_m: float = 50.0) -> EdgeTopology:
    """The paper's network: `stations` split evenly (the first groups take the remainder) across `validators`.

    APs stand `spacing_m` apart on a line; a group's stations sit on a circle of `radius_m` around their AP,
    inside its `range_m`, so in Mininet-WiFi each station associates with its own group's AP.
    """
    rates = rates or Rates()
    rates.check()
    if validators < 1 or validators > 200:
        raise ConfigError(f"--validators must be between 1 and 200, got {validators}")
    if stations < validators or stations > 200 * validators:
        raise ConfigError(f"--stations must be between {validators} (one per validator) and {200 * validators}, "
                         f"got {stations}")
    if not radius_m < range_m < spacing_m - radius_m:
        raise ConfigError("station radius must be inside the AP range, and the range must not reach the next "
                         "group's stations")
    nodes: list[Node] = []
    links: list[Link] = []
    sizes = [stations // validators + (1 if g < stations % validators else 0) for g in range(validators)]
    number = 0
    for g, size in enumerate(sizes, start=1):
        ap_xy = (spacing_m * g, 50.0, 0.0)
        ap = Node(f"ap{g}", "access_point", g, ap_xy, range_m)
        validator = Node(f"val{g}", "validator", g, (ap_xy[0], ap_xy[1] + 10.0, 0.0),
                         routes=(("default", f"10.1.{g}.1"),), forwarding=True)
        nodes += [ap, validator]
        links.append(Link(Interface(ap.name, ""), Interface(validator.name, f"10.0.{g}.1/24"), "ap", rates.ap_mbps))
        for k in range(size):
            number += 1
            angle = 2 * math.pi * k / size
            xy = (round(ap_xy[0] + radius_m * math.cos(angle), 2), round(ap_xy[1] + radius_m * math.sin(angle), 2),
                  0.0)
            station = Node(f"sta{number}", "station", g, xy, range_m, routes=(("default", f"10.0.{g}.1"),))
            nodes.append(station)
            links.append(Link(Interface(station.name, f"10.0.{g}.{10 + k}/24"), Interface(ap.name, ""),
                              "radio", rates.radio_mbps))
    manager_routes = tuple((f"10.0.{g}.0/24", f"10.1.{g}.2") for g in range(1, validators + 1))
    manager = Node("mgr", "manager", 0, (spacing_m * (validators + 1) / 2, 150.0, 0.0), routes=manager_routes,
                   forwarding=True)
    chain = Node("chain", "chain", 0, (manager.position[0], 200.0, 0.0), routes=(("default", "10.2.0.1"),))
    nodes += [manager, chain]
    for g in range(1, validators + 1):
        links.append(Link(Interface("mgr", f"10.1.{g}.1/24"), Interface(f"val{g}", f"10.1.{g}.2/24"),
                          "backbone", rates.backbone_mbps))
    links.append(Link(Interface("mgr", "10.2.0.1/24"), Interface("chain", "10.2.0.2/24"), "backbone",
                      rates.backbone_mbps))
    topo = EdgeTopology(nodes=nodes, links=links, rates=rates)
    topo.check()
    return topo
