#!/usr/bin/env python
"""The smallest network: one access point, its validator, two stations; the quickest way to try an edit.

    sudo .venv/bin/fedrollup topology --script topology/scripts/one_cell.py --model logreg --no-chain --no-cli

Both stations sit 5 m from ap1: 54 Mb/s. Move sta2 to '105,50,0' (55 m, the edge of the 60 m range; -85 dBm
indoors) and the wired fallback gives it 1 Mb/s, 1/54 of the rate: its round's network time grows, while
the bytes it moves per round stay those of the model (metrics.json: `radio_per_station`, `timings.network_s`,
`bytes_per_station` of each round). tests/test_topology_script_run.py makes exactly that edit.
"""
from topology.script import Mininet_wifi


def network():
    "Create the network."
    net = Mininet_wifi(radio_mbps=20)

    # *** Creating nodes
    ap1 = net.addAccessPoint('ap1', ssid='group1', mode='g', channel='1', position='50,50,0', range=60)
    val1 = net.addHost('val1', role='validator', position='50,60,0')
    mgr = net.addHost('mgr', role='manager', position='50,150,0')
    chain = net.addHost('chain', role='chain', position='50,200,0')
    sta1 = net.addStation('sta1', position='55,50,0', range=60)
    sta2 = net.addStation('sta2', position='45,50,0', range=60)

    # *** Configuring propagation model
    net.setPropagationModel(model='logDistance', exp=4)

    # *** Configuring nodes
    net.configureNodes()

    # *** Associating and creating links
    net.addLink(sta1, ap1)
    net.addLink(sta2, ap1)
    net.addLink(ap1, val1)
    net.addLink(val1, mgr)
    net.addLink(mgr, chain)
    return net


if __name__ == '__main__':
    import sys

    from fedrollup.cli import main
    sys.exit(main(['topology', '--script', __file__, *sys.argv[1:]]))
