"""The QoS task's data: each station's own measurement windows, labelled by whether its SLA breaks in the NEXT one.

Where each quantity comes from (docs/researchers.md, "The QoS task", has the citations and every parameter):

* **Link rate, signal, distance** of every station: drawn (with the run seed) from the stations of the emulated
  sample `qos_sample/emulated.csv`, measured on our own topology's wired fallback (`topology/`: Mininet-WiFi's
  propagation model, the 802.11 rate table, TCLink rate limits). LTE and 5G cells scale that link rate so their
  median station gets the published median (`TECHNOLOGIES`).
* **Goodput and RTT under load**: each window draws one measured sending window of the emulated sample at the
  station's link rate and its cell's load (`EmulatedTable`: the nearest measured load when its own was not), so
  the emulator's own spread and the tie between goodput and RTT are kept; an LTE or 5G link f times faster has
  f times the goodput and 1/f of the queueing RTT.
* **What the kernel cannot emulate** (netem): the path's base delay, the access hop's latency, jitter and loss,
  and their time dynamics, per technology from published measurements where we could check a figure, otherwise
  stated assumptions. Loss and delay spikes follow a two-state (Gilbert-Elliott) Markov chain per station, whose
  bad state is likelier under load and at weak signal: the persistence a model can learn to predict.
* **Load over time**: per cell, a diurnal busy hour plus AR(1) noise sets how many stations send at once on its
  access point in each 10-minute window, within the range the sample measured.

Every station sees only its own cell (technology, load, its own link): non-IID by construction. Trainer i is
station i of cell `group_of(i)`; each validator's private set is the windows of `VALIDATOR_STATIONS` other
stations of its cell (its monitoring data); the manager's test set is `TEST_STATIONS` further stations per cell,
shuffled. Features are uint8 by a fixed per-feature scale (`FEATURE_SCALES`); the model's input is u8 / 255.
Generation is deterministic from the run seed, needs no download, and takes well under a second.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from dapp.qmodel import QOS_INPUTS
from flower_sim.splits import PUBLIC_TEST_SIZE, Dataset, Splits, SplitSpec

SAMPLE_PATH = Path(__file__).parent / "qos_sample" / "emulated.csv"
SAMPLE_COLUMNS = ("cell", "station", "distance_m", "rssi_dbm", "link_mbps", "active_stations", "window",
                  "goodput_mbps", "rtt_ms")
WINDOW_MINUTES = 10
WINDOWS = 144            # labelled windows per station: one day of 10-minute windows
VALIDATOR_STATIONS = 4   # stations per cell whose windows are the cell validator's private set
TEST_STATIONS = 4        # stations per cell whose windows go to the manager's test set


@dataclass(frozen=True)
class Scale:
    """A feature's fixed map to uint8: [low, high] (log10 when `log`) onto 0..255, values outside clipped."""

    low: float
    high: float
    log: bool = False

    def encode(self, values: np.ndarray) -> np.ndarray:
        f = np.log10 if self.log else (lambda v: v)
        v = np.clip(np.asarray(values, dtype=np.float64), self.low, self.high)
        unit = (f(v) - f(self.low)) / (f(self.high) - f(self.low))
        return np.rint(unit * 255.0).astype(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The value a code stands for (for people and tests; the model sees codes / 255)."""
        unit = np.asarray(codes, dtype=np.float64) / 255.0
        if self.log:
            return 10 ** (math.log10(self.low) + unit * (math.log10(self.high) - math.log10(self.low)))
        return self.low + unit * (self.high - self.low)


FEATURE_SCALES: dict[str, Scale] = {
    "throughput_mbps": Scale(0.1, 2000.0, log=True),      # goodput of the window's transfer
    "rtt_ms": Scale(1.0, 2000.0, log=True),               # mean round-trip time in the window
    "jitter_ms": Scale(0.1, 500.0, log=True),             # spread of the window's RTT samples
    "loss_pct": Scale(0.01, 50.0, log=True),              # packet loss (below 0.01 % encodes as 0)
    "rssi_dbm": Scale(-100.0, -20.0),                     # received signal
    "link_mbps": Scale(0.1, 2000.0, log=True),            # the station's radio link rate
    "active_stations": Scale(0.0, 32.0),                  # stations of the cell transferring in the window
    "throughput_prev_mbps": Scale(0.1, 2000.0, log=True),  # the previous window's, same scales
    "rtt_prev_ms": Scale(1.0, 2000.0, log=True),
    "loss_prev_pct": Scale(0.01, 50.0, log=True),
    "hour_of_day": Scale(0.0, 24.0),                      # the window's start, local time
    "technology": Scale(0.0, 2.0),                        # 0 WiFi, 1 LTE, 2 5G (codes 0, 128, 255)
}
QOS_FEATURES = tuple(FEATURE_SCALES)
assert len(QOS_FEATURES) == QOS_INPUTS, "the features must match dapp.qmodel's QoS architecture"


@dataclass(frozen=True)
class Technology:
    """What sets a cell's delay and loss (netem's part) and how its link rates scale from the emulated ones."""

    name: str
    code: int
    median_link_mbps: float | None  # the median station's link rate; None: the emulated rates as measured
    path_rtt_ms: float              # the wired path beyond the access hop (assumption)
    access_median_ms: float         # the access hop's latency: lognormal median ...
    access_p90_ms: float            # ... and 90th percentile
    loss_good_pct: float            # loss in the good state (assumption)
    loss_bad_pct: float             # loss in the bad state (assumption)
    bad_extra_ms: float             # extra delay in the bad state: retransmissions, blockage (assumption)


TECHNOLOGIES = (
    # WiFi: the emulated 802.11 link as is; access hop median 3 ms, p90 20 ms (Sui et al., MobiSys 2016)
    Technology("wifi", 0, None, 10.0, 3.0, 20.0, 0.1, 5.0, 120.0),
    # LTE: median downlink 13 Mbit/s (Huang et al., MobiSys 2012); delays are assumptions
    Technology("lte", 1, 13.0, 30.0, 15.0, 40.0, 0.05, 3.0, 80.0),
    # 5G (mmWave, NSA): ~10x LTE throughput, latency close to LTE's (Narayanan et al., WWW 2020, as summarised)
    Technology("5g", 2, 130.0, 25.0, 10.0, 30.0, 0.05, 4.0, 100.0),
)
P_BAD = 0.01          # per-window chance a station's channel turns bad, idle cell, strong signal (assumption)
LOAD_PEAK = (0.6, 1.0)  # a cell's busy-hour load, share of the most stations the sample had sending at once
P_RECOVER = 0.25      # per-window chance a bad channel recovers: bad spells last ~4 windows, 40 min (assumption)


@dataclass(frozen=True)
class EmulatedTable:
    """The emulated sample's sending windows by (link rate, active stations): a generated window at a measured link
    rate and load draws one measured (goodput, RTT) pair of that rate and load, of the nearest measured load when
    its own was not measured. The pairs keep the emulator's own spread and the tie between goodput and RTT."""

    links: np.ndarray                              # the measured link rates, ascending
    max_active: int                                # the most stations the sample had sending at once
    pairs: dict[tuple[int, int], np.ndarray]       # (link index, active) -> (k, 2): goodput Mbit/s, RTT ms
    nearest: np.ndarray                            # (links, max_active + 1): the measured load nearest each load
    stations: np.ndarray                           # (n, 3): distance_m, rssi_dbm, link_mbps of each station
    measurements: int
    source: str

    def draw(self, rng: np.random.Generator, link_index: np.ndarray, active: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
        """Goodput and RTT for windows at `links[link_index]` with `active` stations sending (same shapes)."""
        load = self.nearest[link_index, np.clip(active, 1, self.max_active).astype(np.int64)]
        u = rng.random(link_index.shape)
        goodput, rtt = np.empty(link_index.shape), np.empty(link_index.shape)
        for (li, a), pairs in self.pairs.items():
            here = (link_index == li) & (load == a)
            picked = pairs[np.minimum((u[here] * len(pairs)).astype(np.int64), len(pairs) - 1)]
            goodput[here], rtt[here] = picked[:, 0], picked[:, 1]
        return goodput, rtt


def read_emulated(path: Path) -> dict[str, np.ndarray]:
    """The emulated sample's columns (`SAMPLE_COLUMNS`); ValueError when the file lacks one or has no rows. An idle
    station's goodput is 0 and an RTT no ping came back for is empty (NaN here), as `topology/qos_measure.py`
    writes them."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in SAMPLE_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(f"{path} lacks the columns {', '.join(missing)}")
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path} has no measurements")
    numeric = [c for c in SAMPLE_COLUMNS if c != "station"]
    columns = {c: np.array([float(r[c]) if r[c] != "" else math.nan for r in rows]) for c in numeric}
    columns["station"] = np.array([f"{r['cell']}/{r['station']}" for r in rows])
    return columns


@lru_cache(maxsize=2)
def emulated_table(path: Path = SAMPLE_PATH) -> EmulatedTable:
    """The emulated sample's table (read once per process) of the windows in which the station itself sent (goodput
    > 0) and an RTT came back: what a station measures while it transfers, as every generated window does."""
    c = read_emulated(path)
    ok = (c["goodput_mbps"] > 0) & (c["link_mbps"] > 0) & (c["active_stations"] >= 1) & (c["rtt_ms"] > 0)
    if not ok.any():
        raise ValueError(f"{path} has no window with a transfer and an RTT")
    links = np.unique(c["link_mbps"][ok])
    link_index = np.searchsorted(links, c["link_mbps"][ok])
    active = c["active_stations"][ok].astype(np.int64)
    measured = np.column_stack([c["goodput_mbps"][ok], c["rtt_ms"][ok]])
    pairs = {(int(li), int(a)): measured[(link_index == li) & (active == a)]
             for li, a in sorted(set(zip(link_index.tolist(), active.tolist())))}
    max_active = int(active.max())
    nearest = np.zeros((len(links), max_active + 1), dtype=np.int64)
    for li in range(len(links)):
        loads = np.array([a for (i, a) in pairs if i == li])
        nearest[li] = [loads[np.argmin(np.abs(loads - a) * 2 + (loads > a))] for a in range(max_active + 1)]
    sending = c["link_mbps"] > 0
    _, first = np.unique(c["station"][sending], return_index=True)
    stations = np.column_stack([c["distance_m"], c["rssi_dbm"], c["link_mbps"]])[sending][np.sort(first)]
    stations = stations[np.isin(stations[:, 2], links)]  # stations whose link rate was measured sending
    return EmulatedTable(links, max_active, pairs, nearest, stations, int(ok.sum()), path.name)


@dataclass(frozen=True)
class Windows:
    """Every station's labelled windows: features (uint8), labels, and whose and which cell's they are."""

    features: np.ndarray   # (stations * WINDOWS, QOS_INPUTS) uint8
    labels: np.ndarray     # int64: 1 = the SLA is violated in the next window
    station: np.ndarray    # station of each row
    cell: np.ndarray       # cell of each row


def violated(throughput: np.ndarray, rtt: np.ndarray, loss: np.ndarray, spec: SplitSpec) -> np.ndarray:
    """Whether each window breaks the SLA: throughput under, RTT or loss over their bounds."""
    return (throughput < spec.sla_mbps) | (rtt > spec.sla_rtt_ms) | (loss > spec.sla_loss_pct)


def _lognormal(rng: np.random.Generator, median: float, p90: float, size: tuple[int, ...]) -> np.ndarray:
    """Lognormal draws with the given median and 90th percentile."""
    sigma = math.log(p90 / median) / 1.2815515655446004  # z of the 90th percentile
    return median * np.exp(sigma * rng.standard_normal(size))


def cell_load(rng: np.random.Generator, max_active: int, windows: int) -> np.ndarray:
    """Stations sending at once on a cell's access point in each window, 1..`max_active` (the emulated range): a
    busy hour (its own peak share and time) plus AR(1) noise."""
    hours = (np.arange(windows) * WINDOW_MINUTES / 60.0) % 24
    busy_hour, peak, quiet = rng.uniform(9, 21), rng.uniform(LOAD_PEAK[0], LOAD_PEAK[1]), rng.uniform(0.05, 0.3)
    distance = np.minimum(np.abs(hours - busy_hour), 24 - np.abs(hours - busy_hour))
    share = quiet + (peak - quiet) * np.exp(-(distance / 3.0) ** 2)
    noise = np.zeros(windows)
    for t in range(1, windows):
        noise[t] = 0.8 * noise[t - 1] + rng.normal(0.0, 0.06)
    return np.clip(np.rint((share + noise) * max_active), 1, max_active)


def cell_technologies(cells: int) -> list[str]:
    """The technology of each cell: WiFi, LTE, 5G, then again."""
    return [TECHNOLOGIES[c % len(TECHNOLOGIES)].name for c in range(cells)]


def generate(spec: SplitSpec, stations_per_cell: list[int], table: EmulatedTable) -> Windows:
    """`WINDOWS` labelled windows for every station; cell c has `stations_per_cell[c]` stations, in order."""
    rng = np.random.default_rng([spec.seed, 0x905])
    steps = WINDOWS + 2  # one window before the first labelled one (its "previous"), one after the last (its label)
    hours = (np.arange(steps) * WINDOW_MINUTES / 60.0) % 24
    emulated_median = float(np.median(table.stations[:, 2]))
    columns: list[dict[str, np.ndarray]] = []
    labels, cells = [], []
    for cell, n in enumerate(stations_per_cell):
        tech = TECHNOLOGIES[cell % len(TECHNOLOGIES)]
        picked = table.stations[rng.integers(0, len(table.stations), size=n)]
        rssi = picked[:, 1]
        scale = (tech.median_link_mbps / emulated_median) if tech.median_link_mbps else 1.0
        link = picked[:, 2] * scale
        active = cell_load(rng, table.max_active, steps)[None, :].repeat(n, axis=0)          # (n, steps)
        load_share = active / table.max_active
        weak = np.clip((-60.0 - rssi) / 20.0, 0.0, 1.0)[:, None]              # 0 at -60 dBm, 1 at -80 dBm
        p_bad = P_BAD * (1 + 3 * load_share) * (1 + 2 * weak)
        bad = np.zeros((n, steps), dtype=bool)
        bad[:, 0] = rng.random(n) < P_BAD
        for t in range(1, steps):
            stay = rng.random(n) > P_RECOVER
            enter = rng.random(n) < p_bad[:, t]
            bad[:, t] = np.where(bad[:, t - 1], stay, enter)
        shape = (n, steps)
        link_index = np.searchsorted(table.links, picked[:, 2])[:, None].repeat(steps, axis=1)
        goodput, queueing = table.draw(rng, link_index, active)
        goodput, queueing = goodput * scale, queueing / scale  # a link `scale` times faster drains its queue sooner
        loss = np.where(bad, tech.loss_bad_pct, tech.loss_good_pct) * np.exp(0.5 * rng.standard_normal(shape))
        throughput = goodput * np.clip(1 - loss / 10.0, 0.05, 1.0)
        access = _lognormal(rng, tech.access_median_ms, tech.access_p90_ms, shape)
        rtt = tech.path_rtt_ms + access + queueing + bad * tech.bad_extra_ms * rng.uniform(0.5, 1.5, shape)
        jitter = ((0.3 * access + 0.2 * queueing + bad * 0.3 * tech.bad_extra_ms)
                  * np.exp(0.3 * rng.standard_normal(shape)))
        broken = violated(throughput, rtt, loss, spec)
        now = slice(1, steps - 1)
        prev = slice(0, steps - 2)
        columns.append({
            "throughput_mbps": throughput[:, now], "rtt_ms": rtt[:, now], "jitter_ms": jitter[:, now],
            "loss_pct": loss[:, now], "rssi_dbm": rssi[:, None].repeat(WINDOWS, axis=1),
            "link_mbps": link[:, None].repeat(WINDOWS, axis=1), "active_stations": active[:, now],
            "throughput_prev_mbps": throughput[:, prev], "rtt_prev_ms": rtt[:, prev], "loss_prev_pct": loss[:, prev],
            "hour_of_day": np.broadcast_to(hours[now], (n, WINDOWS)),
            "technology": np.full((n, WINDOWS), float(tech.code))})
        labels.append(broken[:, 2:].astype(np.int64))
        cells.append(np.full(n * WINDOWS, cell, dtype=np.int64))
    features = np.column_stack([
        np.concatenate([FEATURE_SCALES[name].encode(c[name]).reshape(-1) for c in columns])
        for name in QOS_FEATURES])
    total = sum(stations_per_cell)
    return Windows(features=features, labels=np.concatenate([y.reshape(-1) for y in labels]),
                   station=np.repeat(np.arange(total), WINDOWS), cell=np.concatenate(cells))


def station_layout(spec: SplitSpec) -> tuple[list[int], list[list[int]], list[list[int]], list[list[int]]]:
    """Stations per cell and, per cell, the station ids of its trainers, its validator's and the test set's.

    Station ids run cell by cell; trainer i (`SimulationConfig.group_of`: contiguous blocks) is station i's
    position among its cell's trainers, so trainer ids map to stations in order."""
    trainers_of = [[t for t in range(spec.trainers) if t * spec.validators // spec.trainers == c]
                   for c in range(spec.validators)]
    sizes, trainer_ids, validator_ids, test_ids = [], [], [], []
    first = 0
    for members in trainers_of:
        k = len(members)
        sizes.append(k + VALIDATOR_STATIONS + TEST_STATIONS)
        trainer_ids.append(list(range(first, first + k)))
        validator_ids.append(list(range(first + k, first + k + VALIDATOR_STATIONS)))
        test_ids.append(list(range(first + k + VALIDATOR_STATIONS, first + sizes[-1])))
        first += sizes[-1]
    return sizes, trainer_ids, validator_ids, test_ids


def _rows(windows: Windows, stations: list[int]) -> np.ndarray:
    return np.flatnonzero(np.isin(windows.station, stations))


def _dataset(windows: Windows, rows: np.ndarray) -> Dataset:
    return Dataset(windows.features[rows].astype(np.float32) / np.float32(255.0), windows.labels[rows])


def make_qos_splits(spec: SplitSpec, sample: Path = SAMPLE_PATH) -> Splits:
    """The QoS task's split for `spec` (`flower_sim.data.make_splits` dispatches here and caches it)."""
    table = emulated_table(sample)
    sizes, trainer_ids, validator_ids, test_ids = station_layout(spec)
    windows = generate(spec, sizes, table)
    trainer_index = tuple(_rows(windows, [s]) for ids in trainer_ids for s in ids)
    validator_index = tuple(_rows(windows, ids) for ids in validator_ids)
    test_rows = _rows(windows, [s for ids in test_ids for s in ids])
    test_rows = test_rows[np.random.default_rng([spec.seed, 0x7E57]).permutation(len(test_rows))]
    return Splits(
        test=_dataset(windows, test_rows),
        validators=tuple(_dataset(windows, i) for i in validator_index),
        trainers=tuple(_dataset(windows, i) for i in trainer_index),
        validator_index=validator_index, trainer_index=trainer_index,
        source=f"QoS windows of {sum(sizes)} stations in {len(sizes)} cells "
               f"({', '.join(cell_technologies(len(sizes)))}), "
               f"{WINDOWS} windows each; goodput and RTT drawn from {table.source} ({table.measurements} sending "
               f"windows)",
        test_groups=windows.cell[test_rows])


def public_test_set(test: Dataset, groups: np.ndarray, size: int = PUBLIC_TEST_SIZE) -> bytes:
    """The first `size` test rows as the rollup's QoS test set: ``labels u8[N] | groups u8[N] | features u8[N *
    12]``, the features being the generator's own bytes (x = u8 / 255 exactly)."""
    n = min(size, len(test))
    features = np.rint(np.asarray(test.x[:n], dtype=np.float64) * 255.0).astype(np.uint8)
    return (test.y[:n].astype(np.uint8).tobytes() + np.asarray(groups[:n]).astype(np.uint8).tobytes()
            + features.reshape(n, QOS_INPUTS).tobytes())
