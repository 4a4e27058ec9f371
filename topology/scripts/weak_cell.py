#!/usr/bin/env python
"""A weak cell: group 2's access point sits behind walls (path loss exponent 4) with one station far out.

    sudo .venv/bin/fedrollup topology --script topology/scripts/weak_cell.py --model logreg --no-chain --no-cli

One propagation model holds for the whole network, so the weak cell is made by distance: ap2's stations sit
40 and 55 m away (ap2's range is 60 m), where the signal is -80 and -85 dBm: 9 Mb/s and the 1 Mb/s DSSS floor,
against 54 Mb/s for group 1's stations 10 m from ap1. On the wired fallback sta4's link runs at 1/54 of the
top rate; its validator's round waits for it (compare `network_s` and each station's `radio_per_station`
with paper_network.py).
"""
from topology.script import Mininet_wifi


def network():
    "Create the network."
    net = Mininet_wifi(radio_mbps=20)

    # *** Creating nodes
    ap1 = net.addAccessPoint('ap1', ssid='group1', mode='g', channel='1', position='50,50,0', range=60)
    ap2 = net.addAccessPoint('ap2', ssid='group2', mode='g', channel='11', position='250,50,0', range=60)
    val1 = net.addHost('val1', role='validator', position='50,60,0')
    val2 = net.addHost('val2', role='validator', position='250,60,0')
    mgr = net.addHost('mgr', role='manager', position='150,150,0')
    chain = net.addHost('chain', role='chain', position='150,200,0')
    sta1 = net.addStation('sta1', position='60,50,0', range=60)
    sta2 = net.addStation('sta2', position='40,50,0', range=60)
    sta3 = net.addStation('sta3', position='290,50,0', range=60)
    sta4 = net.addStation('sta4', position='250,105,0', range=60)

    # *** Configuring propagation model
    net.setPropagationModel(model='logDistance', exp=4)

    # *** Configuring nodes
    net.configureNodes()

    # *** Associating and creating links
    net.addLink(sta1, ap1)
    net.addLink(sta2, ap1)
    net.addLink(sta3, ap2)
    net.addLink(sta4, ap2)
    net.addLink(ap1, val1)
    net.addLink(ap2, val2)
    net.addLink(val1, mgr)
    net.addLink(val2, mgr)
    net.addLink(mgr, chain)
    return net


if __name__ == '__main__':
    import sys

    from fedrollup.cli import main
    sys.exit(main(['topology', '--script', __file__, *sys.argv[1:]]))
