"""The emulated edge network: the paper's topology as data, built on Mininet-WiFi or wired Mininet, with real
processes (chain host, Flower SuperLinks and SuperNodes over TLS) on its hosts."""
