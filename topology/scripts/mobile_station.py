#!/usr/bin/env python
"""Mobile stations: in one cell, sta2 walks away from the access point while sta3 walks in from the edge.

    sudo .venv/bin/fedrollup topology --script topology/scripts/mobile_station.py --rounds 3 --no-chain --no-cli

Between seconds 0 and 90 (Mininet-WiFi's `mobility(sta, 'start'/'stop')`), sta2 goes from 5 m to 55 m of ap1
(the edge of its 60 m range) and sta3 the other way. Indoors (path loss exponent 4) that takes sta2's signal
from -43 dBm (54 Mb/s) to -85 dBm (1 Mb/s), and sta3's back up. Where Mininet-WiFi runs, it moves the
stations and wmediumd follows; on the wired fallback a mobile station's link rate is set again before every
federated round from where its track puts it then (seconds since the rounds began), so within a round its
rate is constant. Each round's `radio_per_station` in metrics.json says where each station was and its rate.
"""
from topology.script import Mininet_wifi


def network():
    "Create the network."
    net = Mininet_wifi(radio_mbps=20)

    # *** Creating nodes
    ap1 = net.addAccessPoint('ap1', ssid='cell', mode='g', channel='6', position='100,100,0', range=60)
    val1 = net.addHost('val1', role='validator', position='100,110,0')
    mgr = net.addHost('mgr', role='manager', position='100,200,0')
    chain = net.addHost('chain', role='chain', position='100,250,0')
    sta1 = net.addStation('sta1', position='100,90,0', range=60)
    sta2 = net.addStation('sta2', position='105,100,0', range=60)
    sta3 = net.addStation('sta3', position='45,100,0', range=60)

    # *** Configuring propagation model
    net.setPropagationModel(model='logDistance', exp=4)

    # *** Configuring nodes
    net.configureNodes()

    # *** Associating and creating links
    for sta in (sta1, sta2, sta3):
        net.addLink(sta, ap1)
    net.addLink(ap1, val1)
    net.addLink(val1, mgr)
    net.addLink(mgr, chain)

    # *** Mobility: sta2 walks out to 55 m, sta3 in to 5 m, in 90 s
    net.startMobility(time=0)
    net.mobility(sta2, 'start', time=0, position='105,100,0')
    net.mobility(sta3, 'start', time=0, position='45,100,0')
    net.mobility(sta2, 'stop', time=90, position='155,100,0')
    net.mobility(sta3, 'stop', time=90, position='95,100,0')
    net.stopMobility(time=90)
    return net


if __name__ == '__main__':
    import sys

    from fedrollup.cli import main
    sys.exit(main(['topology', '--script', __file__, *sys.argv[1:]]))
