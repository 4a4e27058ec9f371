"""rollups_node: a host-mode Cartesi Rollups node v2 (EVM reader, advancer, claimer, JSON-RPC and inspect)."""
