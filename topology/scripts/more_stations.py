#!/usr/bin/env python
"""More stations: three cells of eight trainers (24 stations, 3 validators) on a line of access points.

    sudo .venv/bin/fedrollup topology --script topology/scripts/more_stations.py --rounds 3 --no-cli

Each cell's stations sit on two rings, 10 m and 30 m from their AP: 54 and 36 Mb/s at path loss exponent
3.5 (-51 and -67 dBm).
Memory: about 0.6 GiB per station on top of the other hosts (docs/benchmarks.md), so 24 stations need about
16 GiB. Add a cell by copying an access point, its validator, its stations and their links.
"""
import math

from topology.script import Mininet_wifi


def ring(center, radius, count, start=0.0):
    "Positions of `count` stations evenly on a circle around `center`."
    x, y = center
    return [f'{x + radius * math.cos(start + 2 * math.pi * k / count):.2f},'
            f'{y + radius * math.sin(start + 2 * math.pi * k / count):.2f},0' for k in range(count)]


def network():
    "Create the network."
    net = Mininet_wifi(radio_mbps=20)
    mgr = net.addHost('mgr', role='manager', position='200,150,0')
    chain = net.addHost('chain', role='chain', position='200,200,0')

    # *** Creating nodes and links: per cell, an access point, its validator, eight stations
    number = 0
    cells = []
    for g, x in enumerate((100, 200, 300), start=1):
        ap = net.addAccessPoint(f'ap{g}', ssid=f'group{g}', mode='g', position=f'{x},50,0', range=45)
        val = net.addHost(f'val{g}', role='validator', position=f'{x},60,0')
        stations = []
        for position in ring((x, 50), 10, 4) + ring((x, 50), 30, 4, start=math.pi / 4):
            number += 1
            stations.append(net.addStation(f'sta{number}', position=position, range=45))
        cells.append((ap, val, stations))

    # *** Configuring propagation model
    net.setPropagationModel(model='logDistance', exp=3.5)

    # *** Configuring nodes
    net.configureNodes()

    # *** Associating and creating links
    for ap, val, stations in cells:
        for sta in stations:
            net.addLink(sta, ap)
        net.addLink(ap, val)
        net.addLink(val, mgr)
    net.addLink(mgr, chain)
    return net


if __name__ == '__main__':
    import sys

    from fedrollup.cli import main
    sys.exit(main(['topology', '--script', __file__, *sys.argv[1:]]))
