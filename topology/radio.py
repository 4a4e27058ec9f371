"""A station's radio link from its position: Mininet-WiFi's propagation model, then an 802.11 rate table.

Where Mininet-WiFi runs, wmediumd and mac80211_hwsim turn the signal into a rate. On the wired fallback this
module does it, so the same positions, ranges and propagation model still set each station's link:

1. **Received signal** (dBm), Mininet-WiFi's `logDistance` model as published in `mn_wifi/propagationModels.py`
   (`PropagationModel.logDistance`, intrig-unicamp/mininet-wifi):

       RSSI = Pt + Gt + Gr - ( int(PL(1 m)) + int(10 * exp * log10(d / 1 m)) ),
       PL(1 m) = 10 * log10( (4 * pi * 1 m)^2 * L / lambda^2 )       (Friis free-space loss at 1 m, L = 1)

   with Mininet-WiFi's defaults: the AP transmits Pt = 14 dBm, both antennas have 5 dBi, channel c of the
   2.4 GHz band is at 2.407 + 0.005 c GHz, d is never below 0.1 m, and `int()` truncates as Mininet-WiFi's
   does, so an RSSI here is the one Mininet-WiFi reports. `friis` (exp = 2) is the same formula.
2. **Association**: as in Mininet-WiFi (`configureWirelessLink`), a station associates when its distance to
   the AP is within the AP's `range`; a signal under the noise floor (-91 dBm, Mininet-WiFi's `noise_th`)
   carries nothing either.
3. **PHY rate**: the fastest rate whose receiver minimum input sensitivity the signal meets, from IEEE
   802.11-2016 Table 17-18 (OFDM, 20 MHz: 54 Mb/s at -65 dBm ... 6 Mb/s at -82 dBm; 802.11a and the ERP-OFDM
   rates of 802.11g) and its HR/DSSS clause for 802.11b (11 Mb/s at -76 dBm). Below the last sensitivity but
   above the noise floor, only the 1 Mb/s DSSS rate every 2.4 GHz station keeps is left (real receivers
   decode it down to about -94 dBm).
4. **Link rate** (TCLink bandwidth): the PHY rate scaled by `radio_mbps / top rate`: `radio_mbps` (default 20
   Mbit/s, 802.11g's TCP goodput) is what a station next to its AP gets, and a station whose signal only
   carries 6 Mb/s gets 6/54 of it. What this cannot be: the cell's shared air time, retries, rate control's
   probing; delay and loss only where the kernel has netem (none is derived from distance here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from common.errors import ConfigError

SPEED_OF_LIGHT = 299792458.0
AP_TXPOWER_DBM = 14.0       # Mininet-WiFi's access point default
ANTENNA_GAIN_DBI = 5.0      # Mininet-WiFi's default for every wireless interface
NOISE_FLOOR_DBM = -91.0     # Mininet-WiFi's noise_th
DSSS_FLOOR_MBPS = 1.0       # the 1 Mb/s DSSS rate kept below the last OFDM sensitivity
MODELS = ("logDistance", "friis")

# (minimum RSSI in dBm, PHY rate in Mbit/s), fastest first: IEEE 802.11-2016 receiver minimum input sensitivity
OFDM_RATES = ((-65, 54.0), (-66, 48.0), (-70, 36.0), (-74, 24.0), (-77, 18.0), (-79, 12.0), (-81, 9.0),
              (-82, 6.0))
RATE_TABLES = {"g": OFDM_RATES, "a": OFDM_RATES, "b": ((-76, 11.0),)}


def channel_ghz(channel: int, mode: str = "g") -> float:
    """Centre frequency of a channel: 2.4 GHz band for b/g, 5 GHz (5.000 + 0.005 c) for a."""
    if mode == "a":
        return 5.0 + 0.005 * channel
    if not 1 <= channel <= 14:
        raise ConfigError(f"2.4 GHz channels are 1..14, got {channel}")
    return 2.484 if channel == 14 else 2.407 + 0.005 * channel


def reference_loss_db(freq_ghz: float) -> float:
    """Free-space (Friis) path loss at the 1 m reference distance, system loss 1."""
    wavelength = SPEED_OF_LIGHT / (freq_ghz * 1e9)
    return 10 * math.log10((4 * math.pi * 1.0) ** 2 / wavelength ** 2)


def rssi_dbm(distance_m: float, propagation: dict, freq_ghz: float = 2.412, txpower_dbm: float = AP_TXPOWER_DBM,
             gain_dbi: float = ANTENNA_GAIN_DBI) -> int:
    """The signal a station receives from its AP `distance_m` away, as Mininet-WiFi's logDistance computes it."""
    model = propagation.get("model", "logDistance")
    if model not in MODELS:
        raise ConfigError(f"the wired fallback computes rates for the propagation models {', '.join(MODELS)}, "
                          f"not {model!r}")
    exp = 2.0 if model == "friis" else float(propagation.get("exp", 3))
    if exp <= 0:
        raise ConfigError(f"the path loss exponent must be > 0, got {exp:g}")
    d = max(distance_m, 0.1)
    return int(txpower_dbm + 2 * gain_dbi - (int(reference_loss_db(freq_ghz)) + int(10 * exp * math.log10(d))))


def phy_rate_mbps(rssi: float, mode: str = "g") -> float | None:
    """The fastest 802.11 rate the signal supports; None under the noise floor (no link)."""
    if mode not in RATE_TABLES:
        raise ConfigError(f"the wired fallback knows 802.11 modes {', '.join(RATE_TABLES)}, not {mode!r}")
    if rssi < NOISE_FLOOR_DBM:
        return None
    return next((rate for floor, rate in RATE_TABLES[mode] if rssi >= floor), DSSS_FLOOR_MBPS)


@dataclass(frozen=True)
class RadioLink:
    """A station's radio link as the fallback shapes it, and what metrics.json records of it."""

    station: str
    access_point: str
    position: tuple[float, float, float]
    distance_m: float
    rssi_dbm: int
    phy_mbps: float
    mbps: float

    def as_dict(self) -> dict:
        return {"access_point": self.access_point, "position": list(self.position),
                "distance_m": round(self.distance_m, 2), "rssi_dbm": self.rssi_dbm, "phy_mbps": self.phy_mbps,
                "mbps": round(self.mbps, 4)}


def distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.dist(a, b)


def radio_link(station: str, position: tuple[float, float, float], ap_name: str,
               ap_position: tuple[float, float, float], ap_range_m: float, channel: int, propagation: dict,
               mode: str, radio_mbps: float) -> RadioLink:
    """The link of a station at `position` to its AP; ConfigError when it is out of range or under the noise."""
    d = distance(position, ap_position)
    if d > ap_range_m:
        raise ConfigError(f"{station} at {_xyz(position)} is {d:.1f} m from {ap_name}, outside its range "
                          f"({ap_range_m:g} m): it would not associate")
    rssi = rssi_dbm(d, propagation, channel_ghz(channel, mode))
    phy = phy_rate_mbps(rssi, mode)
    if phy is None:
        raise ConfigError(f"{station} at {_xyz(position)} receives {rssi} dBm from {ap_name} ({d:.1f} m), under "
                          f"the noise floor ({NOISE_FLOOR_DBM:g} dBm): no link")
    top = RATE_TABLES[mode][0][1]
    return RadioLink(station, ap_name, tuple(position), d, rssi, phy, radio_mbps * phy / top)


def _xyz(position: tuple[float, ...]) -> str:
    return ",".join(f"{c:g}" for c in position)


def position_at(track: list[list[float]], seconds: float) -> tuple[float, float, float]:
    """Where a mobile station is `seconds` after mobility started: Mininet-WiFi's `mobility(sta, 'start',
    time=t0, position=p0)` ... `mobility(sta, 'stop', time=t1, position=p1)` is a straight line at constant
    speed from p0 at t0 to p1 at t1; before t0 it is at p0, after t1 at p1. `track` is [[t0, *p0], [t1, *p1]]."""
    (t0, *p0), (t1, *p1) = track
    if seconds <= t0 or t1 <= t0:
        return tuple(p0) if seconds <= t0 else tuple(p1)
    share = min(1.0, (seconds - t0) / (t1 - t0))
    return tuple(round(a + (b - a) * share, 2) for a, b in zip(p0, p1))


def station_links(topo, seconds: float | None = None) -> dict[str, RadioLink]:
    """Every station's radio link in `topo` (an `EdgeTopology`) from its position, or, for a mobile station
    and `seconds` given, from where its track puts it then. The rate is the model's (`radio_link`)."""
    mode = topo.wifi.get("mode", "g")
    channels = topo.wifi.get("channels") or [1]
    ap_of = {link.a.node: link.b.node for link in topo.links if link.kind == "radio"}
    result = {}
    for station in topo.stations:
        ap = topo.node(ap_of[station.name])
        track = topo.mobility.get(station.name)
        position = position_at(track, seconds) if track and seconds is not None else station.position
        result[station.name] = radio_link(station.name, position, ap.name, ap.position, ap.range_m,
                                          int(channels[(ap.group - 1) % len(channels)]), topo.propagation, mode,
                                          topo.rates.radio_mbps)
    return result


def describe_rates(topo) -> str:
    """The stations' radio links in a few lines: the propagation model, then each distinct rate and who has it."""
    try:
        links = station_links(topo)
    except ConfigError as err:
        return f"radio links: as the topology file gives them ({err})"
    shaped = {link.a.node: link.mbps for link in topo.links if link.kind == "radio"}
    by_rate: dict[tuple, list[str]] = {}
    for name, radio in links.items():
        by_rate.setdefault((shaped[name], radio.phy_mbps), []).append(f"{name} ({radio.distance_m:.0f} m, "
                                                                      f"{radio.rssi_dbm} dBm)")
    model = topo.propagation
    lines = [f"radio links from positions ({model.get('model', 'logDistance')}, exp {model.get('exp', 3):g}, "
             f"802.11{topo.wifi.get('mode', 'g')}; the top PHY rate runs at {topo.rates.radio_mbps:g} Mbit/s):"]
    for (mbps, phy), names in sorted(by_rate.items(), reverse=True):
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        lines.append(f"  {mbps:.4g} Mbit/s ({phy:g} Mb/s PHY): {shown}")
    lines += [f"  {name} moves from {','.join(f'{c:g}' for c in a[1:])} at {a[0]:g} s to "
              f"{','.join(f'{c:g}' for c in b[1:])} at {b[0]:g} s (its rate is set again every round)"
              for name, (a, b) in topo.mobility.items()]
    return "\n".join(lines)
