"""rollups_client: what the FL roles, the emulated manager host and the auditors' console use to talk to the
rollup: the node's JSON-RPC reader and inspect (`node`), the L1 contracts (`l1`) and typed outputs (`outputs`).

Inside a process everything is bytes and ints; ``0x`` hex exists only on the JSON-RPC wire."""
