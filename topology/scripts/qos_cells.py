#!/usr/bin/env python
"""Two cells for QoS measurements: five stations each, 10 to 65 m from their access point, on a shared backhaul.

    sudo .venv/bin/fedrollup topology --script topology/scripts/qos_cells.py --measure-qos qos.csv --windows 40

Path loss exponent 3.5 (indoors): cell 1's stations at 10, 30, 40, 50 and 60 m get 54, 36, 24, 18 and 12 Mb/s
(-51 to -78 dBm), so 20, 13.3, 8.9, 6.7 and 4.4 Mbit/s on the wired fallback; cell 2's sit at 15, 35, 45, 55
and 65 m, the same rates one step farther out. Each access point's link to its validator carries 30 Mbit/s
(cell 1) and 20 Mbit/s (cell 2), less than its stations' sum: when several stations send at once they queue
there, the one place the wired fallback lets the stations of a cell share something (it has no air time).
"""
from topology.script import Mininet_wifi

CELLS = ((1, 50, (10, 30, 40, 50, 60), 30), (2, 250, (15, 35, 45, 55, 65), 20))


def network():
    "Create the network."
    net = Mininet_wifi(radio_mbps=20)
    mgr = net.addHost('mgr', role='manager', position='150,150,0')
    chain = net.addHost('chain', role='chain', position='150,200,0')

    # *** Creating nodes: per cell, an access point, its validator and five stations east of the AP
    cells = []
    for g, x, distances, backhaul in CELLS:
        ap = net.addAccessPoint(f'ap{g}', ssid=f'group{g}', mode='g', position=f'{x},50,0', range=70)
        val = net.addHost(f'val{g}', role='validator', position=f'{x},60,0')
        stations = [net.addStation(f'sta{5 * (g - 1) + k + 1}', position=f'{x + d},50,0', range=70)
                    for k, d in enumerate(distances)]
        cells.append((ap, val, stations, backhaul))

    # *** Configuring propagation model
    net.setPropagationModel(model='logDistance', exp=3.5)

    # *** Configuring nodes
    net.configureNodes()

    # *** Associating and creating links
    for ap, val, stations, backhaul in cells:
        for sta in stations:
            net.addLink(sta, ap)
        net.addLink(ap, val, bw=backhaul)
        net.addLink(val, mgr)
    net.addLink(mgr, chain)
    return net


if __name__ == '__main__':
    import sys

    from fedrollup.cli import main
    sys.exit(main(['topology', '--script', __file__, *sys.argv[1:]]))
