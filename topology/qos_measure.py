"""QoS measured on the emulated network: per station and window, TCP goodput to its validator and ping RTT.

`sudo fedrollup topology --measure-qos OUT.csv [--script FILE] [--windows N] [--seed S]` builds the network
alone (no chain, no Flower), and in every window each cell's stations that the seeded load schedule turns on
send over TCP to their validator at once, while every station of the cell pings its validator through the
same shaped path. The cells run their windows side by side (they share no link on the way to their validator).

What a row is (`COLUMNS`), one per station per window, idle stations included:

- `cell`: the validator group, 0-based; `window`: the window's index (its time, `window_s` apart);
- `distance_m`, `rssi_dbm`, `link_mbps`: the station's radio link as `topology.radio` derives it from its
  position (a mobile station's from where its track puts it at the window's start, reshaped on the wired
  fallback); `link_mbps` is the rate its link runs at (TCLink/HTB);
- `active_stations`: how many of the cell's stations send in this window;
- `goodput_mbps`: payload bytes the validator received from the station per second, over the window's
  `window_s` seconds from the connection's first data (`SINK` says how it is timed), in Mbit/s; 0 exactly when
  the station did not send (an active station that delivers nothing is an error, not a 0);
- `rtt_ms`: the median RTT of the pings (every `PING_INTERVAL_S`) the station sent its validator during the
  window; empty when none came back.

What the wired fallback can vary is the rate of each link and the load; the RTT grows with load because HTB
queues what its rate cannot send yet (the station's own link, and the access point's link to the validator
that the cell's stations share). It cannot make radio delay or loss (no netem here) nor air time shared by a
cell's stations: that part of the data comes from a generator, not from here.
"""
from __future__ import annotations

import csv
import math
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from topology.clean import leftovers
from topology.emulator import EmulatorUnavailable, choose_emulator
from topology.net import EmulatedNetwork
from topology.paper_topology import TopologyOptions, topology_from
from topology.processes import HostProcess, HostProcesses, OutputLines, wait_until
from topology.topo import EdgeTopology

COLUMNS = ("cell", "station", "distance_m", "rssi_dbm", "link_mbps", "active_stations", "window", "goodput_mbps",
           "rtt_ms")
SINK_PORT = 5301
PING_INTERVAL_S = 0.1
MAX_WINDOWS = 10_000
# On/off load: a station's share of busy windows (its duty) is drawn in DUTY, the mean length of one busy run
# plus one idle run in CYCLE windows (so that no run is shorter than one window on average).
DUTY = (0.2, 0.8)
CYCLE = (5.0, 12.0)

# The validator's receiver. Per connection it times the bytes that arrive after the first read, for `window`
# seconds, and prints "<peer address> <bytes> <seconds from the first read to the last one counted>". The first
# read is left out: what it returns may have waited in the socket while the (busy) machine had not yet run the
# receiver, so counting it from the moment of that read would overstate the rate.
SINK = r"""
import socket, sys, threading, time
address, port, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lock = threading.Lock()
def serve(conn, peer):
    first = last = None
    counted = 0
    try:
        while True:
            data = conn.recv(262144)
            now = time.monotonic()
            if not data:
                break
            if first is None:
                first = now
            elif now - first <= window:
                counted, last = counted + len(data), now
    except OSError:
        pass
    conn.close()
    with lock:  # one whole line at a time: connections end together
        sys.stdout.write(f"{peer[0]} {counted} {(last - first) if last else 0.0}\n")
        sys.stdout.flush()
server = socket.create_server((address, port), backlog=64)
while True:
    conn, peer = server.accept()
    threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
"""
# A station's sender: as fast as TCP lets it for `seconds`, then a reset (SO_LINGER 0), so what is still in
# its send buffer is dropped instead of trickling into the next window.
SEND = r"""
import socket, struct, sys, time
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
chunk, end = bytes(65536), time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    conn.send(chunk)
conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
conn.close()
"""
RTT = re.compile(r"time=([\d.]+) ms")


@dataclass(frozen=True)
class Measurement:
    """One station in one window: what it sent and what its pings saw."""

    cell: int
    station: str
    window: int
    active_stations: int
    goodput_mbps: float
    rtt_ms: float | None


def load_schedule(stations: list[str], windows: int, seed: int, cell: int = 0) -> list[frozenset[str]]:
    """Which stations send in each window: each station an on/off Markov chain of its own, seeded by (seed, cell,
    station), with a duty drawn in `DUTY` and a busy plus an idle run of `CYCLE` windows on average, starting in
    its stationary state. Load so varies over time and between stations; the same seed gives the same schedule."""
    chains = []
    for station in stations:
        rng = random.Random(f"qos-load/{seed}/{cell}/{station}")
        duty, cycle = rng.uniform(*DUTY), rng.uniform(*CYCLE)
        leave_on = 1.0 / (cycle * duty)               # P(on -> off): busy runs of cycle * duty windows on average
        leave_off = 1.0 / (cycle * (1.0 - duty))      # P(off -> on): so the long-run share on is `duty`
        on = rng.random() < duty
        states = []
        for _ in range(windows):
            states.append(on)
            on = rng.random() >= leave_on if on else rng.random() < leave_off
        chains.append(states)
    return [frozenset(s for s, states in zip(stations, chains) if states[w]) for w in range(windows)]


def check_options(out: Path, windows: int, window_s: float) -> None:
    """Refuse what would fail only after minutes of measuring."""
    if Path(out).is_dir():
        raise ConfigError(f"--measure-qos names a folder ({out}); give the CSV file to write")
    if not 1 <= windows <= MAX_WINDOWS:
        raise ConfigError(f"--windows must be between 1 and {MAX_WINDOWS}, got {windows}")
    if not 0.2 <= window_s <= 30:
        raise ConfigError(f"--window-seconds must be between 0.2 and 30, got {window_s:g}")


class QosProbe:
    """The receivers on the validators and the per-window senders and pings on the stations of one network."""

    def __init__(self, network: EmulatedNetwork, window_s: float) -> None:
        self.network = network
        self.topo: EdgeTopology = network.topo
        self.window_s = window_s
        self.processes = HostProcesses(network)
        self.sinks: dict[int, OutputLines] = {}

    def start_sinks(self) -> None:
        """One segment per packet on the stations' links, then a receiver on every validator."""
        for station in self.topo.stations:
            for intf in self.network.host(station.name).intfList():
                if intf.name != "lo":  # HTB lets a whole 64 KB GSO packet through on its last tokens
                    self.network.host(station.name).cmd(f"ip link set dev {intf.name} gso_max_segs 1")
        for validator in self.topo.validators:
            address = self.topo.address(validator.name)
            log = self.processes.log_path(validator.name, "qos-sink")
            sink = self.processes.start(validator.name, "qos-sink", [sys.executable, "-S", "-c", SINK, address,
                                                                     str(SINK_PORT), f"{self.window_s:g}"])
            wait_until(lambda: self.network.reachable(validator.name, address, SINK_PORT), 20,
                       f"QoS receiver on {validator.name}", sink)
            self.sinks[validator.group] = OutputLines(log)

    def window(self, active: dict[int, frozenset[str]], number: int) -> list[Measurement]:
        """One window in every cell at once: the active stations send, every station pings its validator."""
        pings: dict[str, tuple[HostProcess, OutputLines]] = {}
        senders: list[HostProcess] = []
        count = max(2, round(self.window_s / PING_INTERVAL_S))
        for group, stations in active.items():
            validator = self.topo.address(next(v.name for v in self.topo.validators if v.group == group))
            for station in self.topo.group(group):
                if station.name in stations:
                    senders.append(self.processes.start(station.name, "qos-send", [
                        sys.executable, "-S", "-c", SEND, validator, str(SINK_PORT), f"{self.window_s + 0.2:g}"]))
                lines = OutputLines(self.processes.log_path(station.name, "qos-ping"))
                ping = self.processes.start(station.name, "qos-ping", [
                    "ping", "-n", "-i", f"{PING_INTERVAL_S:g}", "-c", str(count), "-w",
                    str(math.ceil(self.window_s) + 2), validator])
                pings[station.name] = (ping, lines)
        for process in senders + [p for p, _ in pings.values()]:
            wait_until(lambda process=process: not process.alive, self.window_s + 20,
                       f"{process.name} on {process.host}", interval_s=0.05)
            allowed = (0,) if process.name == "qos-send" else (0, 1)  # ping exits 1 when no reply came back
            if process.popen.returncode not in allowed:
                raise RuntimeError(f"{process.name} on {process.host} failed: {process.log_tail(2)}")
        received = self._received(active)
        rows = []
        for group, stations in active.items():
            for station in self.topo.group(group):
                rtts = [float(m) for line in pings[station.name][1].read() for m in RTT.findall(line)]
                counted, seconds = received.get(self.topo.address(station.name), (0, 0.0))
                if station.name in stations and not counted:
                    raise RuntimeError(f"{station.name} sent for {self.window_s:g} s and its validator received "
                                       "nothing")
                goodput = counted * 8 / seconds / 1e6 if counted else 0.0
                rows.append(Measurement(group - 1, station.name, number, len(stations), goodput,
                                        statistics.median(rtts) if rtts else None))
        self._drain(active)
        return rows

    def _received(self, active: dict[int, frozenset[str]]) -> dict[str, tuple[int, float]]:
        """Bytes each active station's connection delivered in the window and over how many seconds, as its
        validator's receiver says."""
        result: dict[str, tuple[int, float]] = {}
        expected = {self.topo.address(s) for stations in active.values() for s in stations}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not expected <= result.keys():
            for group in active:
                for line in self.sinks[group].read():
                    try:
                        peer, counted, seconds = line.split()
                        result[peer] = (int(counted), float(seconds))
                    except ValueError:
                        raise RuntimeError(f"cannot read the QoS receiver's line {line!r}") from None
            time.sleep(0.02)
        missing = expected - result.keys()
        if missing:
            raise RuntimeError(f"the validators' receivers did not report the transfers from {sorted(missing)}")
        return result

    def _drain(self, active: dict[int, frozenset[str]], timeout_s: float = 10.0) -> None:
        """Wait until the cells' queues are empty, so a window does not start behind the last one's backlog."""
        ports = [i.name for ap in self.topo.by_role("access_point") if ap.group in active
                 for i in self.network.host(ap.name).intfList() if i.name != "lo"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = subprocess.run(["tc", "-s", "qdisc", "show"], capture_output=True, text=True).stdout
            queued = {m.group(1) for m in re.finditer(r"qdisc \S+ \S+ dev (\S+)[^\n]*\n[^\n]*\n backlog (\d+)b",
                                                        done) if m.group(2) != "0"}
            if not queued.intersection(ports):
                return
            time.sleep(0.05)


def measure(network: EmulatedNetwork, schedule: dict[int, list[frozenset[str]]], window_s: float,
            progress=print) -> list[dict]:
    """Run the windows of `schedule` ({group: active stations per window}) on a built network; the CSV's rows."""
    probe = QosProbe(network, window_s)
    probe.start_sinks()
    windows = len(next(iter(schedule.values())))
    rows = []
    for number in range(windows):
        links = network.radio_links(number * window_s)  # also reshapes a mobile station to where it is now
        shaped = {link.a.node: link.mbps for link in network.topo.links if link.kind == "radio"}
        measured = probe.window({g: active[number] for g, active in schedule.items()}, number)
        for group in schedule:
            progress(describe_window(group - 1, number, windows, [m for m in measured if m.cell == group - 1]))
        for m in measured:
            radio = links.get(m.station, {})
            rows.append({"cell": m.cell, "station": m.station, "distance_m": radio.get("distance_m", ""),
                         "rssi_dbm": radio.get("rssi_dbm", ""), "link_mbps": round(shaped[m.station], 4),
                         "active_stations": m.active_stations, "window": m.window,
                         "goodput_mbps": round(m.goodput_mbps, 3),
                         "rtt_ms": "" if m.rtt_ms is None else round(m.rtt_ms, 2)})
    return rows


def describe_window(cell: int, number: int, windows: int, measured: list[Measurement]) -> str:
    """'cell 1, window 7/40: 3 stations active, goodput 2.1–6.3 Mbit/s, RTT 12–48 ms' (1-based for people)."""
    active = [m.goodput_mbps for m in measured if m.goodput_mbps > 0]
    rtts = [m.rtt_ms for m in measured if m.rtt_ms is not None]
    load = (f"{len(active)} station{'s' * (len(active) != 1)} active, goodput {min(active):.1f}–{max(active):.1f}"
            " Mbit/s" if active else "no station active")
    rtt = f"RTT {min(rtts):.1f}–{max(rtts):.1f} ms" if rtts else "no ping answered"
    return f"cell {cell + 1}, window {number + 1}/{windows}: {load}, {rtt}"


def write_csv(rows: list[dict], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(options: TopologyOptions) -> int:
    """`fedrollup topology --measure-qos OUT.csv`: build the network, measure, write the CSV, tear down."""
    check_options(options.measure_qos, options.windows, options.window_s)
    topo = topology_from(options)
    try:
        choice = choose_emulator(want_wired=options.wired)
    except EmulatorUnavailable as err:
        raise ConfigError(str(err)) from None
    out = (options.out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-qos").resolve()
    print(choice.describe())
    schedule = {v.group: load_schedule([s.name for s in topo.group(v.group)], options.windows, options.seed,
                                       v.group - 1) for v in topo.validators}
    print(f"measuring QoS: {len(topo.stations)} stations in {len(topo.validators)} cells, {options.windows} "
          f"windows of {options.window_s:g} s, load schedule seed {options.seed}; run folder {out}")
    try:
        with EmulatedNetwork(topo, choice, out, verbose=options.verbose) as network:
            print(f"network built in {network.build_s:.1f} s")
            started = time.monotonic()
            rows = measure(network, schedule, options.window_s)
            seconds = time.monotonic() - started
        print(f"network torn down in {network.stop_s:.1f} s; left behind: {leftovers(network.run_id).describe()}")
    except RuntimeError as err:
        print(f"QoS measurement failed: {err}", file=sys.stderr)
        return 1
    path = write_csv(rows, options.measure_qos)
    print(f"{len(rows)} rows ({len(topo.stations)} stations x {options.windows} windows) measured in {seconds:.0f} s "
          f"on {choice.name} written to {path}")
    return 0
