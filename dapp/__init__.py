"""The fedrollup Cartesi rollup backend: message schema, pure state machine, rollup HTTP loop (`python -m dapp`)."""
