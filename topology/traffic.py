"""The stations' radio-link byte counters: readings and the bytes moved between two readings."""
from __future__ import annotations


def station_bytes(network) -> dict[str, dict[str, int]]:
    """Bytes each station has received and sent on its radio interface so far."""
    result = {}
    for station in network.topo.stations:
        rx, tx = next(iter(network.interface_bytes(station.name).values()), (0, 0))
        result[station.name] = {"rx_bytes": rx, "tx_bytes": tx}
    return result


def bytes_since(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, int]:
    """Bytes each station moved (received + sent) between two `station_bytes` readings."""
    return {s: after[s]["rx_bytes"] + after[s]["tx_bytes"] - before[s]["rx_bytes"] - before[s]["tx_bytes"]
            for s in after}
