#!/usr/bin/env python
"""The paper's edge network (seed 003, §5) as a Mininet-WiFi script: edit it, then run it as root with

    sudo .venv/bin/fedrollup topology --script topology/scripts/paper_network.py [--rounds 3 --no-cli ...]

Two access points, one per validator group, ten trainer stations around each (20 m away, inside the AP's
50 m range), each validator wired to its AP, both validators to the manager, the chain host behind the manager.
Where Mininet-WiFi runs (mn_wifi and mac80211_hwsim), these are its stations and access points; elsewhere the
wired fallback gives each station the rate its distance to its AP allows under the propagation model below
(`topology/radio.py`): move a station away and its rate drops (see each round's `radio_per_station` in
metrics.json). Copy this file to make your own network; the variants next to it show more stations, a mobile
station and a weak cell.
"""
from topology.script import Mininet_wifi


def network():
    "Create the network."
    net = Mininet_wifi(radio_mbps=20, ap_mbps=100, backbone_mbps=100)

    # *** Creating nodes
    ap1 = net.addAccessPoint('ap1', ssid='group1', mode='g', channel='1', position='100,50,0', range=50)
    ap2 = net.addAccessPoint('ap2', ssid='group2', mode='g', channel='6', position='200,50,0', range=50)
    val1 = net.addHost('val1', role='validator', position='100,60,0')
    val2 = net.addHost('val2', role='validator', position='200,60,0')
    mgr = net.addHost('mgr', role='manager', position='150,150,0')
    chain = net.addHost('chain', role='chain', position='150,200,0')
    # the trainers of group 1 (around ap1) and of group 2 (around ap2), in trainer order
    group1 = ['120,50,0', '116.18,61.76,0', '106.18,69.02,0', '93.82,69.02,0', '83.82,61.76,0',
              '80,50,0', '83.82,38.24,0', '93.82,30.98,0', '106.18,30.98,0', '116.18,38.24,0']
    group2 = ['220,50,0', '216.18,61.76,0', '206.18,69.02,0', '193.82,69.02,0', '183.82,61.76,0',
              '180,50,0', '183.82,38.24,0', '193.82,30.98,0', '206.18,30.98,0', '216.18,38.24,0']
    stations1 = [net.addStation(f'sta{k}', position=p, range=50) for k, p in enumerate(group1, start=1)]
    stations2 = [net.addStation(f'sta{k}', position=p, range=50) for k, p in enumerate(group2, start=11)]

    # *** Configuring propagation model
    net.setPropagationModel(model='logDistance', exp=3)

    # *** Configuring nodes
    net.configureNodes()

    # *** Associating and creating links
    for sta in stations1:
        net.addLink(sta, ap1)
    for sta in stations2:
        net.addLink(sta, ap2)
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
